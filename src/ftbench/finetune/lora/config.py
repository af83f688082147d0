"""The LoRA run configuration, parsed as trl's own ``sft.py`` parses its arguments: ``trl.TrlParser`` over trl's
``SFTConfig`` (training), trl's ``ModelConfig`` (base model and adapter) and :class:`TaskArguments` (what only
ftbench knows: task, splits, limits, loss, price), from ``--config file.yaml`` plus ``--key value`` overrides::

    python training/lora_sft.py --config training/configs/codellama34b_spider.yaml --max_steps 100

Every key of a config file is a field of one of the three (``--help`` lists them). ftbench's defaults are the
study's recipe (:data:`STUDY_DEFAULTS`), in place of trl's; the file and the command line override them. Unknown keys
and bad values are an :class:`~ftbench.errors.InputError` before any data or model is touched.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ftbench.errors import InputError
from ftbench.finetune._config_file import read_config_mapping
from ftbench.finetune.lora.checks import cuda_available
from ftbench.pricing import A40_PRICE_PER_HOUR

if TYPE_CHECKING:
    from trl.scripts.utils import TrlParser
    from trl.trainer.model_config import ModelConfig
    from trl.trainer.sft_config import SFTConfig

TASKS = ("spider_sql", "viggo")
#: The split each task trains on, and the one its eval loss is measured on during training.
DEFAULT_SPLITS = {"spider_sql": ("train", "val"), "viggo": ("train", "validation")}
LOSSES = ("full", "completion")
DTYPES = ("float32", "float16", "bfloat16")
REPORTERS = ("tensorboard", "wandb")
#: Keys of configs written before ftbench parsed them with trl, and what they are called now.
RENAMED = {"base_model": "model_name_or_path", "torch_dtype": "dtype", "lr_scheduler": "lr_scheduler_type",
           "train_sampling": "train_sampling_strategy",
           "mixed_precision": "fp16: true or bf16: true", "progress_bar": "disable_tqdm (its opposite)"}
#: The study's recipe (CodeLlama-34B, int8 aside), in place of trl's defaults; config files override it.
STUDY_DEFAULTS: dict[str, Any] = {
    # trl's ModelConfig: the base model's numerics and the adapter.
    "dtype": "float16", "attn_implementation": "sdpa", "use_peft": True, "lora_r": 8, "lora_alpha": 16,
    "lora_dropout": 0.05, "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
    # trl's SFTConfig: optimisation, batching, evaluation, checkpoints.
    "learning_rate": 3e-4, "lr_scheduler_type": "linear", "warmup_steps": 100, "max_steps": 400,
    "optim": "adamw_torch", "weight_decay": 0.0, "seed": 42, "fp16": True, "bf16": False,
    "activation_checkpointing": True,
    "per_device_train_batch_size": 8, "gradient_accumulation_steps": 16, "per_device_eval_batch_size": 8,
    "max_length": 512, "packing": False, "padding_free": False, "train_sampling_strategy": "group_by_length",
    "eval_strategy": "steps", "eval_steps": 20, "save_strategy": "steps", "save_steps": 20, "logging_steps": 10,
    "report_to": "none", "dataset_text_field": "text",
    # Under DDP every LoRA weight gets a gradient each step; searching for unused ones breaks with reentrant
    # gradient checkpointing (Trainer turns the search on for a PeftModel).
    "ddp_find_unused_parameters": False,
}
_REQUIRED = ("task", "model_name_or_path", "output_dir")
#: Keys whose value the script fixes (ftbench derives them, or the script's stages imply them): given with another
#: value, they would be silently overwritten or ignored.
DERIVED = {"include_num_input_tokens_seen": "ftbench counts the non-padding tokens for run.json's tokens_seen",
           "completion_only_loss": "it follows ftbench's loss key (loss: completion or loss: full)",
           # TrainingArguments leaves these to scripts; lora_sft.py always trains and never predicts.
           "do_train": "lora_sft.py always trains", "do_predict": "lora_sft.py never predicts (use lm-eval)"}
_QLORA = "4-bit QLoRA is not supported; use load_in_8bit: true (the study's int8) or no quantization"
#: Keys of trl's ``sft.py`` that lora_sft.py cannot honour, with the one value it accepts: any other is an error.
UNSUPPORTED: dict[str, tuple[Any, str]] = {
    "use_peft": (True, "lora_sft.py trains LoRA adapters only (full fine-tuning is not supported)"),
    "load_in_4bit": (False, _QLORA), "bnb_4bit_quant_type": ("nf4", _QLORA),
    "use_bnb_nested_quant": (False, _QLORA), "bnb_4bit_quant_storage": (None, _QLORA),
    "model_init_kwargs": (None, "ftbench loads the base model itself; use dtype, attn_implementation, "
                                "model_revision, trust_remote_code and load_in_8bit"),
    "dataset_text_field": ("text", "ftbench builds the datasets from the task (column text, or prompt and "
                                   "completion with loss: completion)"),
    "chat_template_path": (None, "lora_sft.py trains on the completion-form prompts of ftbench.prompts, which no "
                                 "chat template touches"),
    "assistant_only_loss": (False, "the datasets are not conversational; loss: completion trains on the answer "
                                   "only"),
}


@dataclass
class TaskArguments:
    """ftbench's part of a run config: what to train on, and how a run is priced and checked."""

    task: str = field(metadata={"help": f"one of {', '.join(TASKS)}"})
    train_split: str | None = field(default=None, metadata={"help": "default: the task's training split"})
    eval_split: str | None = field(default=None, metadata={"help": "default: the task's validation split"})
    train_file: str | None = field(default=None, metadata={"help": "a file in the split's format, instead"})
    eval_file: str | None = field(default=None, metadata={"help": "a file in the split's format, instead"})
    train_limit: int | None = field(default=None, metadata={"help": "train on the first N examples"})
    eval_limit: int | None = field(default=None, metadata={"help": "measure eval loss on the first N examples"})
    loss: str = field(default="full", metadata={"help": "full (the study) or completion (the answer only)"})
    price_per_gpu_hour: float = field(default=A40_PRICE_PER_HOUR, metadata={"help": "USD, for run.json's cost"})
    check_memory: bool = field(default=True, metadata={"help": "refuse a base model that will not fit"})


@dataclass(frozen=True)
class LoraRunConfig:
    """One LoRA run: ftbench's task arguments, trl's training arguments and trl's model arguments."""

    task: TaskArguments
    training: SFTConfig
    model: ModelConfig

    @property
    def base_model(self) -> str:
        return str(self.model.model_name_or_path)

    @property
    def output_dir(self) -> str:
        return str(self.training.output_dir)

    @property
    def hub_kwargs(self) -> dict[str, Any]:
        """How the base model's config, tokenizer and weights are fetched (``model_revision``,
        ``trust_remote_code``), as trl's ``sft.py`` passes them to ``from_pretrained``."""
        return {"revision": self.model.model_revision, "trust_remote_code": bool(self.training.trust_remote_code)}

    @property
    def dtype(self) -> str:
        return str(self.model.dtype)

    @property
    def max_length(self) -> int:
        return int(self.training.max_length or 0)

    @property
    def reporters(self) -> list[str]:
        return list(self.training.report_to or [])

    @property
    def splits(self) -> tuple[str, str]:
        """(train split, eval split), the task's defaults filled in."""
        train, evaluation = DEFAULT_SPLITS[self.task.task]
        return self.task.train_split or train, self.task.eval_split or evaluation

    @property
    def effective_batch_size(self) -> int:
        return int(self.training.per_device_train_batch_size * self.training.gradient_accumulation_steps)

    def to_dict(self) -> dict[str, Any]:
        """Every value of the run, flat (the keys of the three parts do not overlap), for ``run.json``."""
        training: dict[str, Any] = self.training.to_dict()  # type: ignore[no-untyped-call]
        return {**dataclasses.asdict(self.task), **dataclasses.asdict(self.model), **training}


def config_parser() -> TrlParser:
    """trl's parser over the three parts, with the study's defaults; a fresh one per parse (defaults are state)."""
    from trl.scripts.utils import TrlParser
    from trl.trainer.model_config import ModelConfig
    from trl.trainer.sft_config import SFTConfig

    class Parser(TrlParser):
        def error(self, message: str) -> NoReturn:  # argparse would print usage and exit
            raise InputError(message)

    parser = Parser([TaskArguments, SFTConfig, ModelConfig], prog="lora_sft.py",  # type: ignore[list-item]
                    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Without a GPU, say so: transformers refuses bf16 configs at parse time unless told the run is on CPU.
    parser.set_defaults_with_config(**STUDY_DEFAULTS, use_cpu=not cuda_available())
    return parser


def config_keys() -> tuple[str, ...]:
    """ftbench's own config keys (trl's SFTConfig and ModelConfig add theirs)."""
    return tuple(f.name for f in dataclasses.fields(TaskArguments))


def parse_config(argv: Sequence[str], parser: TrlParser | None = None) -> tuple[LoraRunConfig, argparse.Namespace]:
    """``--config FILE`` and ``--key value`` arguments -> the checked run config, and any arguments the caller
    added to ``parser`` (from :func:`config_parser`)."""
    parser = parser or config_parser()
    args = list(argv)
    known = {action.dest for action in parser._actions} | {"config"}
    options = {name: None for name in map(_option_name, args) if name is not None}
    _reject_unknown(options, "command line", known)
    file_values = _check_file(args, known)
    file_keys = set(file_values)
    given = file_keys | set(options)
    do_eval = _do_eval_given(args, file_values)
    if do_eval is False and "eval_strategy" not in given:
        args.extend(["--eval_strategy", "no"])  # what do_eval: false means; Trainer reads only eval_strategy
    missing = [key for key in _REQUIRED if key not in given]
    if missing and not {"-h", "--help"} & set(args):  # --help prints the keys and exits
        raise InputError(f"missing required key(s) {', '.join(missing)}")
    try:
        task, training, model, *rest = parser.parse_args_and_config(args)
    except ValueError as err:  # unknown arguments, or a combination SFTConfig refuses
        raise InputError(str(err)) from err
    config = LoraRunConfig(task, training, model)
    if do_eval is False and training.eval_strategy != "no":
        raise InputError(f"do_eval=false and eval_strategy={training.eval_strategy.value!r} disagree (transformers "
                         "evaluates whenever eval_strategy is not no); give eval_strategy: no alone")
    _check_values(config)
    _check_honoured(config, given)
    _derive(config, given)
    if _trains_by_epochs(file_keys, set(options)):
        config.training.max_steps = -1  # Trainer counts epochs only without max_steps (ftbench's default: 400)
    return config, rest[0] if rest else argparse.Namespace()


def load_config(path: Path | None, args: Sequence[str] = ()) -> LoraRunConfig:
    """The run in config file ``path`` (None: arguments only) with ``--key value`` overrides."""
    return parse_config([*(["--config", str(path)] if path is not None else []), *args])[0]


def _check_file(args: list[str], known: set[str]) -> dict[str, Any]:
    """The values of the ``--config`` file, after checking it is a readable mapping of known keys."""
    if "--config" not in args:
        return {}
    position = args.index("--config") + 1
    if position >= len(args):
        raise InputError("--config needs a YAML file")
    path = Path(args[position])
    values = read_config_mapping(path)
    _reject_unknown(values, str(path), (known - {"config"}) | {"env"})
    return values


def _option_name(arg: str) -> str | None:
    """The config key a command-line argument names (``--do-eval=false`` -> ``do_eval``), None for a value."""
    return arg[2:].split("=")[0].replace("-", "_") if arg.startswith("--") else None


def _do_eval_given(args: Sequence[str], file_values: dict[str, Any]) -> bool | None:
    """The ``do_eval`` the user wrote, the command line's over the file's (``--do_eval`` alone is true, as for
    every flag of trl's parser); None when not given, or unreadable (the parser reports that). TrainingArguments
    turns ``do_eval`` back on whenever ``eval_strategy`` is not ``no`` (ftbench's default: ``steps``), so a false
    one must be read before it parses."""
    from transformers.hf_argparser import string_to_bool

    value = file_values.get("do_eval")
    for position, arg in enumerate(args):
        if _option_name(arg) != "do_eval":
            continue
        _, equals, inline = arg.partition("=")
        following = args[position + 1] if position + 1 < len(args) else "--"
        value = inline if equals else (following if not following.startswith("--") else True)
    if isinstance(value, str):
        try:
            value = string_to_bool(value)  # type: ignore[no-untyped-call]
        except argparse.ArgumentTypeError:
            return None
    return value if isinstance(value, bool) else None


def _reject_unknown(values: dict[str, Any], source: str, known: set[str]) -> None:
    unknown = sorted(set(values) - known)
    if not unknown:
        return
    hints = [f"{key} (now {RENAMED[key]})" if key in RENAMED
             else f"{key} (did you mean {', '.join(difflib.get_close_matches(key, known, 3)) or 'nothing close'}?)"
             for key in unknown]
    raise InputError(f"{source}: unknown config key(s) {'; '.join(hints)}. Valid keys: ftbench's "
                     f"{', '.join(config_keys())} and the fields of trl's SFTConfig and ModelConfig "
                     "(python training/lora_sft.py --help)")


def _derive(config: LoraRunConfig, given: set[str]) -> None:
    """Settings ftbench always wants or that follow from others: tokens seen (``run.json``) without padding (argparse
    reads this str-or-bool field as a bool), trl's dataset format from the loss, memory pinning only with a GPU
    (unless asked)."""
    config.training.include_num_input_tokens_seen = "non_padding"
    config.training.completion_only_loss = config.task.loss == "completion"
    modules = config.model.lora_target_modules
    if isinstance(modules, str) and modules.isidentifier():  # trl makes a one-item list a str, which peft would
        config.model.lora_target_modules = [modules]         # match against full module paths: q_proj -> nothing
    if "dataloader_pin_memory" not in given:
        config.training.dataloader_pin_memory = cuda_available()  # pinning without a GPU only warns


def _trains_by_epochs(file_keys: set[str], cli_keys: set[str]) -> bool:
    """``num_train_epochs`` given with no ``max_steps`` over it: on the command line (overriding the file's
    ``max_steps``), or in a file without ``max_steps``. Given together, ``max_steps`` wins, as in Trainer."""
    if "num_train_epochs" in cli_keys:
        return "max_steps" not in cli_keys
    return "num_train_epochs" in file_keys and not {"max_steps"} & (file_keys | cli_keys)


def _check_honoured(config: LoraRunConfig, given: set[str]) -> None:
    """Refuse a key trl's parser accepts but this run would ignore or overwrite, rather than drop it silently."""
    for key, (accepted, why) in UNSUPPORTED.items():
        value = getattr(config.model, key, getattr(config.training, key, accepted))
        if value != accepted:
            raise InputError(f"{key}={value!r} is not supported by lora_sft.py: {why}")
    derived = {"include_num_input_tokens_seen": "non_padding", "completion_only_loss": config.task.loss == "completion",
               "do_train": True, "do_predict": False}
    for key, why in DERIVED.items():
        value = getattr(config.training, key)
        if key in given and value != derived[key]:
            raise InputError(f"{key}={value!r} cannot be set here: {why}")


def _check_values(config: LoraRunConfig) -> None:
    task, training, model = config.task, config.training, config.model
    _check_choice("task", task.task, TASKS)
    _check_choice("loss", task.loss, LOSSES)
    _check_choice("dtype", config.dtype, DTYPES)
    for reporter in config.reporters:
        _check_choice("report_to", reporter, REPORTERS)
    for key in ("max_length", "per_device_train_batch_size", "gradient_accumulation_steps",
                "per_device_eval_batch_size", "max_steps", "eval_steps", "save_steps", "logging_steps"):
        _check_positive(key, getattr(training, key))
    if training.num_train_epochs <= 0:
        raise InputError(f"num_train_epochs={training.num_train_epochs} must be > 0")
    _check_positive("lora_r", model.lora_r)
    _check_ranges(config)


def _check_ranges(config: LoraRunConfig) -> None:
    task, training, model = config.task, config.training, config.model
    if not 0.0 <= model.lora_dropout < 1.0:
        raise InputError(f"lora_dropout={model.lora_dropout} must be in [0, 1)")
    if training.learning_rate <= 0 or task.price_per_gpu_hour < 0 or training.warmup_steps < 0:
        raise InputError("learning_rate must be > 0, price_per_gpu_hour and warmup_steps >= 0")
    if not model.lora_target_modules:
        raise InputError("lora_target_modules must name at least one module (e.g. q_proj)")
    if model.load_in_8bit and model.dtype == "float32":
        raise InputError("load_in_8bit=true needs dtype float16 or bfloat16 for the non-quantized layers")
    for key, value in (("train_limit", task.train_limit), ("eval_limit", task.eval_limit),
                       ("save_total_limit", training.save_total_limit)):
        if value is not None and value < 1:
            raise InputError(f"{key}={value} must be at least 1 (or null for no limit)")


def _check_choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InputError(f"{key}={value!r} is not one of {', '.join(allowed)}")


def _check_positive(key: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"{key}={value!r} must be a whole number of at least 1")

"""LoRA fine-tuning with peft + trl: pre-flight checks, data, model, ``SFTTrainer``, adapter, ``run.json``.

``training/lora_sft.py`` is the script; this module holds the logic so that tests and the CLI share it::

    config = load_config(Path("training/configs/codellama34b_spider.yaml"), ["--max_steps", "100"])
    result = train(config, resume=True)          # -> <output_dir>/adapter/ and <output_dir>/run.json
    merge_adapter(result.adapter_dir, Path("merged/"))

Output layout: ``<output_dir>/checkpoint-N/`` every ``save_steps`` (resumable), ``<output_dir>/adapter/`` (the
final LoRA adapter: peft, lm-eval ``hf`` ``peft=`` and vLLM ``lora_local_path=`` all load it) and
``<output_dir>/run.json`` beside it.

Several GPUs: launch the same code with ``accelerate launch`` (one rank per GPU, DDP; configs in
``training/configs/accelerate/``). Every rank loads its own copy of the model onto its own device and sees its own
shard of each batch; only rank 0 writes the adapter, the checkpoints' wall clock and ``run.json``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftbench._paths import where
from ftbench.errors import InputError
from ftbench.finetune.lora.checks import (
    check_base_model,
    check_device_support,
    check_launch,
    check_memory,
)
from ftbench.finetune.lora.config import LoraRunConfig
from ftbench.finetune.lora.data import TrainingExample, check_fits, task_examples, to_dataset
from ftbench.finetune.lora.run import WallClock, build_record, local_rank
from ftbench.finetune.record import RUN_JSON, LoraRunRecord, check_run_dir_writable, write_run_json

if TYPE_CHECKING:
    from datasets import Dataset

ADAPTER_DIR = "adapter"


@dataclass(frozen=True)
class PreparedData:
    """The checked inputs of a run: its examples, ready for trl, the base model's config and tokenizer."""

    train_examples: list[TrainingExample]
    eval_examples: list[TrainingExample]
    model_config: Any
    tokenizer: Any

    def datasets(self, loss: str) -> tuple[Dataset, Dataset]:
        return to_dataset(self.train_examples, loss), to_dataset(self.eval_examples, loss)


@dataclass(frozen=True)
class TrainResult:
    adapter_dir: Path
    run_json: Path
    record: LoraRunRecord
    main_process: bool = True  # False on ranks other than 0, which wrote nothing


def prepare(config: LoraRunConfig) -> PreparedData:
    """Every check that can fail fast, in order: launch, output folder, base model, device support, data, lengths,
    memory."""
    check_launch(config)
    check_run_dir_writable(Path(config.output_dir))
    model_config = check_base_model(config.base_model, **config.hub_kwargs)
    check_device_support(config)
    train_split, eval_split = config.splits
    task = config.task
    train_examples = task_examples(task.task, train_split, task.train_file, task.train_limit)
    eval_examples = task_examples(task.task, eval_split, task.eval_file, task.eval_limit)
    tokenizer = load_tokenizer(config.base_model, **config.hub_kwargs)
    if _unpacked_padding_free(config):
        check_fits([e.text for e in train_examples + eval_examples], tokenizer, config.max_length)
    if task.check_memory:
        check_memory(config, model_config)
    return PreparedData(train_examples, eval_examples, model_config, tokenizer)


def train(config: LoraRunConfig, resume: bool | str = False, callbacks: Sequence[Any] = ()) -> TrainResult:
    """Run (or resume) one LoRA fine-tune and write the adapter and ``run.json``: the stages of lora_sft.py."""
    checkpoint = checkpoint_to_resume(config, resume)
    clock = WallClock.resuming(checkpoint)
    data = prepare(config)
    trainer = build_trainer(config, load_model(config), data.tokenizer, *data.datasets(config.task.loss), clock=clock,
                            callbacks=callbacks)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    return save_run(config, trainer, clock, checkpoint)


def save_run(config: LoraRunConfig, trainer: Any, clock: WallClock, checkpoint: Path | None) -> TrainResult:
    """Save the final adapter to ``<output_dir>/adapter`` and ``run.json`` beside it. Every rank calls this
    (``save_model`` gathers sharded weights); only rank 0 writes."""
    adapter_dir = Path(config.output_dir) / ADAPTER_DIR
    trainer.save_model(str(adapter_dir))
    record = build_record(config.to_dict(), adapter_dir, trainer.state, clock.elapsed_s(), checkpoint,
                          config.task.price_per_gpu_hour, world_size=int(trainer.args.world_size))
    run_json = Path(config.output_dir) / RUN_JSON
    main = bool(trainer.is_world_process_zero())
    if main:
        write_run_json(Path(config.output_dir), record)
    return TrainResult(adapter_dir, run_json, record, main_process=main)


def checkpoint_to_resume(config: LoraRunConfig, resume: bool | str = False) -> Path | None:
    """The checkpoint the run continues from: ``resume`` (lora_sft.py's ``--resume [CHECKPOINT]``) or trl's
    ``resume_from_checkpoint`` key, read as trl's ``sft.py`` passes it to ``Trainer.train`` (a path, or ``true`` in a
    YAML file for the last checkpoint in ``output_dir``). Both given must agree."""
    trl_value = config.training.resume_from_checkpoint
    wanted: bool | str = trl_value if trl_value not in (None, False, "") else False
    if resume and wanted and resume != wanted:
        given = f"--resume {resume}" if isinstance(resume, str) else "--resume"
        raise InputError(f"{given} and resume_from_checkpoint={wanted!r} disagree; give one of them")
    checkpoint = resume_checkpoint(Path(config.output_dir), resume or wanted)
    if checkpoint is not None and (Path(config.output_dir) / RUN_JSON).is_file():
        _check_steps_left(checkpoint, config.training.max_steps)
    if checkpoint is not None:
        _check_same_adapter(checkpoint, config)
    return checkpoint


def _check_same_adapter(checkpoint: Path, config: LoraRunConfig) -> None:
    """A run resumes the adapter its checkpoint holds: another rank or other target modules would fail inside
    Trainer with a traceback of tensor sizes, another alpha would silently rescale what was learned."""
    try:
        saved = json.loads((checkpoint / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # not an adapter checkpoint this check can read: Trainer reports what it cannot load
    if not isinstance(saved, dict):
        return
    model = config.model
    wanted: dict[str, Any] = {"lora_r": (saved.get("r"), model.lora_r),
                              "lora_alpha": (saved.get("lora_alpha"), model.lora_alpha)}
    if isinstance(model.lora_target_modules, list) and isinstance(saved.get("target_modules"), list):
        wanted["lora_target_modules"] = (sorted(saved["target_modules"]), sorted(model.lora_target_modules))
    differ = [f"{key}: {given!r} here, {kept!r} in the checkpoint" for key, (kept, given) in wanted.items()
              if kept is not None and kept != given]
    if differ:
        raise InputError(f"{checkpoint} holds another adapter than this run's ({'; '.join(differ)}); "
                         "resume with the checkpoint's values, or start a new run in another output_dir")


def _check_steps_left(checkpoint: Path, max_steps: int) -> None:
    """Resuming a finished run at its last step would train nothing and only rewrite its adapter and run.json."""
    try:
        step = int(json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # Trainer reports an unreadable state itself
    if 0 < max_steps <= step:
        raise InputError(f"{checkpoint} is at step {step} and the run already finished (max_steps={max_steps}); "
                         "raise max_steps to train it further")


def resume_checkpoint(output_dir: Path, resume: bool | str) -> Path | None:
    """The checkpoint to resume from; refuses to start afresh over another run's checkpoints."""
    last = last_checkpoint(output_dir)
    if isinstance(resume, str):
        chosen = Path(resume)
        if not (chosen / "trainer_state.json").is_file():
            raise InputError(f"{where(resume)}: not a checkpoint directory to resume from (no trainer_state.json); "
                             "--resume without a value continues from the last checkpoint-N in output_dir")
        return chosen
    if resume and last is None:
        raise InputError(f"--resume: no checkpoint-N directory in {output_dir} to resume from")
    if not resume and (output_dir / RUN_JSON).is_file():
        raise InputError(f"{output_dir} already holds a finished run ({RUN_JSON}, {ADAPTER_DIR}/); choose another "
                         "output_dir, or raise max_steps and pass --resume to train it further")
    if not resume and last is not None:
        raise InputError(f"{output_dir} already holds {last.name}; pass --resume to continue that run "
                         "or choose another output_dir")
    return last


def last_checkpoint(output_dir: Path) -> Path | None:
    """The ``checkpoint-N`` directory with the highest N that holds a trainer state, if any."""
    found = [p for p in output_dir.glob("checkpoint-*") if p.name.split("-", 1)[1].isdigit()
             and (p / "trainer_state.json").is_file()] if output_dir.is_dir() else []
    return max(found, key=lambda p: int(p.name.split("-", 1)[1]), default=None)


def load_tokenizer(base_model: str, **hub_kwargs: Any) -> Any:
    """The base model's tokenizer; without a pad token it pads with ``<unk>`` (as the study: pad id 0), else EOS."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model, **hub_kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return tokenizer


def load_model(config: LoraRunConfig) -> Any:
    """The base model in ``dtype``, or int8 through bitsandbytes (then prepared for k-bit training).

    int8 weights are placed on this rank's GPU (``LOCAL_RANK``) when loaded: the distributed state does not exist
    yet, so ``torch.cuda.current_device()`` would put every rank's copy on GPU 0."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import get_quantization_config

    kwargs: dict[str, Any] = {"dtype": getattr(torch, config.dtype),
                              "attn_implementation": config.model.attn_implementation, **config.hub_kwargs}
    if config.model.load_in_8bit:
        kwargs["quantization_config"] = get_quantization_config(config.model)
        kwargs["device_map"] = {"": local_rank()}
    model = AutoModelForCausalLM.from_pretrained(config.base_model, **kwargs)
    if config.model.load_in_8bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(  # type: ignore[no-untyped-call]
            model, use_gradient_checkpointing=bool(config.training.activation_checkpointing))
    return model


def training_args(config: LoraRunConfig, **overrides: Any) -> Any:
    """The run's ``SFTConfig`` as the trainer gets it (``overrides``: benchmarks only). trl truncates only padded or
    packed batches, so unpacked padding-free ones get no ``max_length`` (:func:`prepare` checked that they fit)."""
    if _unpacked_padding_free(config):
        overrides = {"max_length": None, **overrides}
    return dataclasses.replace(config.training, **overrides) if overrides else config.training


def build_trainer(config: LoraRunConfig, model: Any, tokenizer: Any, train_dataset: Dataset,
                  eval_dataset: Dataset | None, clock: WallClock | None = None, callbacks: Sequence[Any] = (),
                  args_overrides: dict[str, Any] | None = None) -> Any:
    """trl's ``SFTTrainer`` with the peft ``LoraConfig`` trl builds from the model arguments; trl wraps the model and
    tokenizes the datasets. With a ``clock``, every checkpoint records the wall time so far (read back on resume)."""
    from trl.trainer.sft_trainer import SFTTrainer
    from trl.trainer.utils import get_peft_config

    extra = [_wall_clock_callback(clock)] if clock else []
    trainer = SFTTrainer(model=model, args=training_args(config, **(args_overrides or {})),
                         train_dataset=train_dataset, eval_dataset=eval_dataset, processing_class=tokenizer,
                         peft_config=get_peft_config(config.model),
                         callbacks=[*callbacks, *extra])
    if is_quantized(model):
        upcast_trainable_parameters(trainer.model)
    return trainer


def is_quantized(model: Any) -> bool:
    """trl's own test for a k-bit base model (``sft_trainer.py``: the ``is_loaded_in_{4,8}bit`` attributes)."""
    return bool(getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False))


def upcast_trainable_parameters(model: Any) -> int:
    """Make every trainable parameter fp32; returns how many were cast.

    For a quantized base model trl 1.16 casts the LoRA weights to bf16 (QLoRA's recipe). With
    ``fp16: true`` accelerate's GradScaler then fails at the first optimizer step ("not implemented for
    'BFloat16'"), and the study trained fp32 adapters anyway. The optimizer does not exist yet when this runs, so it
    is built on the fp32 weights; autocast still computes in fp16/bf16."""
    import torch

    cast = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.to(torch.float32)
            cast += 1
    return cast


def _unpacked_padding_free(config: LoraRunConfig) -> bool:
    """trl truncates only padded or packed batches; unpacked padding-free ones must already fit ``max_length``."""
    return bool(config.training.padding_free and not config.training.packing)


def _wall_clock_callback(clock: WallClock) -> Any:
    """A ``TrainerCallback`` that stores the wall time so far in every checkpoint (read back on resume)."""
    from transformers import TrainerCallback

    class _SaveWallClock(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if state.is_world_process_zero and checkpoint.is_dir():
                clock.save(checkpoint)

    return _SaveWallClock()


def merge_adapter(adapter_dir: Path, out_dir: Path, base_model: str | None = None) -> Path:
    """Fold a LoRA adapter into its base model and save a plain model (+ tokenizer) for engines without LoRA."""
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (adapter_dir / "adapter_config.json").is_file():
        raise InputError(f"{adapter_dir}: not a LoRA adapter directory (no adapter_config.json)")
    base = base_model or PeftConfig.from_pretrained(str(adapter_dir)).base_model_name_or_path
    check_base_model(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype="auto")
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out_dir))
    AutoTokenizer.from_pretrained(base).save_pretrained(str(out_dir))
    return out_dir

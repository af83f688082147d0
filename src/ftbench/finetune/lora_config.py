"""The LoRA run configuration: one dataclass, read from a YAML file plus ``key=value`` overrides, checked on load.

Every key a YAML file may hold is a field of :class:`LoraRunConfig`; anything else is an error that lists the
valid keys. Values are checked (types, choices, ranges) before any data or model is touched.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ftbench.errors import InputError
from ftbench.finetune.lora_cost import A40_PRICE_PER_HOUR

TASKS = ("spider_sql", "viggo")
#: The split each task trains on, and the one its eval loss is measured on during training.
DEFAULT_SPLITS = {"spider_sql": ("train", "val"), "viggo": ("train", "validation")}
LOSSES = ("full", "completion")
DTYPES = ("float32", "float16", "bfloat16")
MIXED_PRECISIONS = ("fp32", "fp16", "bf16")
SAMPLINGS = ("random", "sequential", "group_by_length")
REPORTERS = ("tensorboard", "wandb")


@dataclass
class LoraRunConfig:
    """Everything one LoRA run needs; the defaults are the study's recipe (CodeLlama-34B, int8 aside)."""

    # What to train and where to write it.
    base_model: str
    task: str
    output_dir: str
    # Data: the task's default splits from ftbench.data, or files in the same format.
    train_split: str | None = None
    eval_split: str | None = None
    train_file: str | None = None
    eval_file: str | None = None
    train_limit: int | None = None
    eval_limit: int | None = None
    loss: str = "full"
    max_length: int = 512
    # Model loading and numerics.
    load_in_8bit: bool = False
    torch_dtype: str = "float16"
    mixed_precision: str = "fp16"
    attn_implementation: str = "sdpa"
    gradient_checkpointing: bool = True
    # Batching.
    packing: bool = False
    padding_free: bool = False
    train_sampling: str = "group_by_length"
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 16
    per_device_eval_batch_size: int = 8
    # LoRA.
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    # Optimisation.
    learning_rate: float = 3e-4
    lr_scheduler: str = "linear"
    warmup_steps: int = 100
    max_steps: int = 400
    optim: str = "adamw_torch"
    weight_decay: float = 0.0
    seed: int = 42
    # Evaluation, checkpoints, logging.
    eval_steps: int = 20
    save_steps: int = 20
    save_total_limit: int | None = None
    logging_steps: int = 10
    report_to: list[str] = field(default_factory=list)
    progress_bar: bool = True
    # Cost accounting and pre-flight checks.
    price_per_gpu_hour: float = A40_PRICE_PER_HOUR
    check_memory: bool = True

    def __post_init__(self) -> None:
        _check_values(self)

    @property
    def splits(self) -> tuple[str, str]:
        """(train split, eval split), the task's defaults filled in."""
        train, evaluation = DEFAULT_SPLITS[self.task]
        return self.train_split or train, self.eval_split or evaluation

    @property
    def effective_batch_size(self) -> int:
        return self.per_device_train_batch_size * self.gradient_accumulation_steps

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_keys() -> tuple[str, ...]:
    """Every key a config file may hold, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(LoraRunConfig))


def load_config(path: Path | None, overrides: Iterable[str] = ()) -> LoraRunConfig:
    """Read ``path`` (YAML mapping), apply ``key=value`` overrides, check everything."""
    values = _read_yaml(path) if path is not None else {}
    values.update(parse_overrides(overrides))
    return config_from_mapping(values, source=str(path) if path else "overrides")


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["lora_r=16", "report_to=[tensorboard]"]`` -> ``{"lora_r": 16, "report_to": ["tensorboard"]}``."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"override {item!r} is not key=value (e.g. max_steps=30)")
        parsed[key.strip()] = _yaml_value(raw, item)
    return parsed


def config_from_mapping(values: Mapping[str, Any], source: str = "config") -> LoraRunConfig:
    """Build a config from plain values, coercing YAML scalars and naming every unknown or missing key."""
    _reject_unknown(values, source)
    hints = typing.get_type_hints(LoraRunConfig)
    coerced = {key: _coerce(value, hints[key], key, source) for key, value in values.items()}
    missing = [f.name for f in dataclasses.fields(LoraRunConfig)
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               and f.name not in coerced]
    if missing:
        raise InputError(f"{source}: missing required key(s) {', '.join(missing)}")
    try:
        return LoraRunConfig(**coerced)
    except InputError as err:
        raise InputError(f"{source}: {err}") from err


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise InputError(f"{path}: config file not found") from err
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise InputError(f"{path}: cannot read as a YAML config ({err})") from err
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise InputError(f"{path}: expected a YAML mapping of config keys, got {type(loaded).__name__}")
    return {str(key): value for key, value in loaded.items()}


def _yaml_value(raw: str, item: str) -> Any:
    try:
        return yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise InputError(f"override {item!r}: value is not valid YAML ({err})") from err


def _reject_unknown(values: Mapping[str, Any], source: str) -> None:
    unknown = sorted(set(values) - set(config_keys()))
    if unknown:
        raise InputError(f"{source}: unknown config key(s) {', '.join(unknown)}; "
                         f"valid keys: {', '.join(config_keys())}")


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """Check one value against its field type; numbers written as text (PyYAML reads ``3e-4`` so) are converted."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise InputError(f"{source}: {key} must not be empty")
    target = next(t for t in options if t is not type(None))
    converted = _convert(value, target)
    if converted is _INVALID:
        raise InputError(f"{source}: {key}={value!r} is not a valid {_type_name(target)}")
    return converted


_INVALID = object()


def _convert(value: Any, target: Any) -> Any:
    if typing.get_origin(target) is list:
        items = [value] if isinstance(value, str) else value
        ok = isinstance(items, list) and all(isinstance(v, str) for v in items)
        return list(items) if ok else _INVALID
    if target is bool:
        return value if isinstance(value, bool) else _INVALID
    if target in (int, float):
        return _number(value, target)
    return value if isinstance(value, str) else _INVALID


def _number(value: Any, target: type) -> Any:
    if isinstance(value, bool):
        return _INVALID
    try:
        number = float(value) if isinstance(value, str) else value
    except ValueError:
        return _INVALID
    if not isinstance(number, int | float):
        return _INVALID
    if target is int:
        return int(number) if float(number).is_integer() else _INVALID
    return float(number)


def _type_name(target: Any) -> str:
    return "list of strings" if typing.get_origin(target) is list else getattr(target, "__name__", str(target))


def _check_values(config: LoraRunConfig) -> None:
    _check_choice("task", config.task, TASKS)
    _check_choice("loss", config.loss, LOSSES)
    _check_choice("torch_dtype", config.torch_dtype, DTYPES)
    _check_choice("mixed_precision", config.mixed_precision, MIXED_PRECISIONS)
    _check_choice("train_sampling", config.train_sampling, SAMPLINGS)
    for reporter in config.report_to:
        _check_choice("report_to", reporter, REPORTERS)
    for key in ("max_length", "per_device_train_batch_size", "gradient_accumulation_steps",
                "per_device_eval_batch_size", "lora_r", "max_steps", "eval_steps", "save_steps", "logging_steps"):
        _check_positive(key, getattr(config, key))
    _check_ranges(config)


def _check_ranges(config: LoraRunConfig) -> None:
    if not 0.0 <= config.lora_dropout < 1.0:
        raise InputError(f"lora_dropout={config.lora_dropout} must be in [0, 1)")
    if config.learning_rate <= 0 or config.price_per_gpu_hour < 0 or config.warmup_steps < 0:
        raise InputError("learning_rate must be > 0, price_per_gpu_hour and warmup_steps >= 0")
    if not config.lora_target_modules:
        raise InputError("lora_target_modules must name at least one module (e.g. q_proj)")
    if config.load_in_8bit and config.torch_dtype == "float32":
        raise InputError("load_in_8bit=true needs torch_dtype float16 or bfloat16 for the non-quantized layers")
    for key in ("train_limit", "eval_limit", "save_total_limit"):
        value = getattr(config, key)
        if value is not None and value < 1:
            raise InputError(f"{key}={value} must be at least 1 (or null for no limit)")


def _check_choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InputError(f"{key}={value!r} is not one of {', '.join(allowed)}")


def _check_positive(key: str, value: int) -> None:
    if value < 1:
        raise InputError(f"{key}={value} must be at least 1")

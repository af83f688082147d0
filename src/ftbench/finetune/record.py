"""``run.json``, the one record every training run leaves: written atomically, read back typed.

Two kinds share the file name and the top-level cost fields the leaderboard reads (``config``, ``steps``,
``tokens_seen``, ``wall_time_s``, ``gpu_name``, ``gpu_count``, ``gpu_hours``, ``cost_usd``):

- ``kind: lora`` — :class:`LoraRunRecord`, written once by rank 0 of a LoRA run (and by the demo's trainer);
- ``kind: openai`` — :class:`OpenAIRunRecord`, rewritten at every status change of an OpenAI fine-tuning job,
  plus ``job_id``, ``status``, ``fine_tuned_model`` and ``trained_tokens``.

``record_version`` is :data:`RECORD_VERSION` in new records. Records written before it existed (no
``record_version``, a LoRA record without ``kind``) still read: they come back with ``record_version=0``, and a
record without ``kind`` is an OpenAI one when it names a ``job_id`` or ``fine_tuned_model``, else a LoRA one.
Unknown keys are ignored; missing or mistyped ones are an :class:`~ftbench.errors.InputError` naming the file.
"""

from __future__ import annotations

import json
import os
import tempfile
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

from ftbench.errors import InputError, OutputError
from ftbench.openai_client import redact_known
from ftbench.pricing import GpuCost, gpu_cost

RUN_JSON = "run.json"
#: 1: ``kind`` and ``record_version`` in every record (before: LoRA records had neither).
RECORD_VERSION = 1
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(kw_only=True)
class LoraRunRecord:
    """A LoRA (or the demo's from-scratch) run; the cost fields are the only ones an old record must hold."""

    kind: Literal["lora"] = "lora"
    record_version: int = RECORD_VERSION
    config: dict[str, Any] = field(default_factory=dict)
    git_hash: str | None = None
    adapter_dir: str | None = None
    steps: int | None = None
    max_steps: int | None = None
    tokens_seen: int | None = None
    wall_time_s: float
    gpu_name: str
    gpu_count: int  # devices held: one GPU per rank (= world_size), or CPU cores x ranks
    world_size: int = 1
    per_device_train_batch_size: int | None = None  # None: token-budget batches, examples per step vary
    global_batch_size: int | None = None  # examples per optimizer step: per-rank batch × accumulation × world size
    gpu_hours: float
    price_per_gpu_hour: float
    cost_usd: float
    resumed_from: str | None = None
    train_loss_curve: list[dict[str, float]] = field(default_factory=list)
    eval_loss_curve: list[dict[str, float]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class OpenAIRunRecord:
    """Everything known about one OpenAI fine-tuning job; ``None`` until known."""

    kind: Literal["openai"] = "openai"
    record_version: int = RECORD_VERSION
    job_id: str
    status: str
    config: dict[str, Any]
    task: str | None = None
    training_file_id: str | None = None
    validation_file_id: str | None = None
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    tokens_seen: int | None = None
    steps: int | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    created_at: str | None = None
    finished_at: str | None = None
    wall_time_s: float | None = None  # job creation to finish by OpenAI's clock, queueing included
    gpu_name: str | None = None  # OpenAI does not disclose its hardware
    gpu_count: int | None = None
    gpu_hours: float | None = None
    cost_usd: float | None = None  # top level, as in a LoRA record, for the leaderboard
    cost: dict[str, Any] | None = None  # the amount with its basis and the dated price used
    error: dict[str, Any] | None = None
    ftbench_version: str = field(default_factory=lambda: _version())

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


RunRecord = LoraRunRecord | OpenAIRunRecord
_KINDS: dict[str, type[LoraRunRecord] | type[OpenAIRunRecord]] = {"lora": LoraRunRecord, "openai": OpenAIRunRecord}


def _version() -> str:
    try:
        return version("ftbench")
    except PackageNotFoundError:  # running from a checkout without installing
        return "unknown"


def check_run_dir_writable(directory: Path) -> None:
    """Fail now, not after hours of training or once a paid job runs, when ``directory`` cannot hold the run
    (a file in the way, no permission, a read-only disk); creates it, as the run would."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".ftbench-write-check-"):
            pass
    except OSError as err:
        raise OutputError(f"{directory}: cannot write the run there ({err.strerror or err})") from err


def write_run_json(directory: Path, record: RunRecord) -> Path:
    """Write ``directory/run.json`` atomically: a reader sees the old record or the whole new one, never a part.
    Anything shaped like an API key is masked first (an OpenAI job's error text may quote one)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / RUN_JSON
    partial = directory / f".{RUN_JSON}.{os.getpid()}.tmp"
    partial.write_text(redact_known(json.dumps(asdict(record), indent=2, ensure_ascii=False)) + "\n",
                       encoding="utf-8")
    os.replace(partial, path)
    return path


def read_run_json(path: Path) -> RunRecord:
    """The record in ``path`` (a ``run.json``), typed by its ``kind``; a clear error naming the file otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise InputError(f"{path}: no such run.json") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: cannot read run.json ({err})") from err
    if not isinstance(data, dict):
        raise InputError(f"{path}: run.json must hold a JSON object, not {type(data).__name__}")
    return record_from_dict(data, path)


def record_from_dict(data: dict[str, Any], path: Path) -> RunRecord:
    """A record from already-parsed JSON (``path`` names it in errors)."""
    kind = data.get("kind", _old_kind(data))
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InputError(f"{path}: run.json kind {kind!r} is not one of {', '.join(_KINDS)}")
    values = {key: value for key, value in data.items() if key in {f.name for f in fields(cls)}}
    values.setdefault("record_version", 0)
    _check(cls, values, path)
    return cls(**values)


def cost_from_run_json(path: Path, price_per_gpu_hour: float | None = None) -> GpuCost:
    """The cost recorded in a LoRA ``run.json``, re-priced at ``price_per_gpu_hour`` when given."""
    record = read_run_json(path)
    if not isinstance(record, LoraRunRecord):
        raise InputError(f"{path}: the run.json of an OpenAI fine-tune has no GPU-hours to price")
    return record_cost(record, price_per_gpu_hour)


def record_cost(record: LoraRunRecord, price_per_gpu_hour: float | None = None) -> GpuCost:
    """The cost in a LoRA record, re-priced at ``price_per_gpu_hour`` when given."""
    price = record.price_per_gpu_hour if price_per_gpu_hour is None else price_per_gpu_hour
    return gpu_cost(record.wall_time_s, record.gpu_count, price, record.gpu_name)


def _old_kind(data: dict[str, Any]) -> str:
    """Records without ``kind``: OpenAI ones always named their job; LoRA ones never did."""
    return "openai" if "job_id" in data or "fine_tuned_model" in data else "lora"


def _check(cls: type[Any], values: dict[str, Any], path: Path) -> None:
    required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
    missing = [name for name in required if name not in values]
    if missing:
        raise InputError(f"{path}: run.json lacks {', '.join(missing)}; is it a training run record?")
    hints = typing.get_type_hints(cls)
    wrong = [f"{key}={value!r}" for key, value in values.items() if not _fits(value, hints[key])]
    if wrong:
        raise InputError(f"{path}: run.json has values of the wrong type: {', '.join(wrong)}")
    if values["record_version"] > RECORD_VERSION:
        raise InputError(f"{path}: run.json record_version {values['record_version']} is newer than this ftbench "
                         f"reads ({RECORD_VERSION}); upgrade ftbench")


def _fits(value: Any, hint: Any) -> bool:
    """A shallow check of a JSON value against a field's type (containers: the outer type only)."""
    if hint is Any:
        return True
    if isinstance(hint, types.UnionType):
        return any(_fits(value, option) for option in typing.get_args(hint))
    if typing.get_origin(hint) is Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    origin = typing.get_origin(hint) or hint
    if origin is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, origin)

"""``run.json`` of an OpenAI fine-tune: the fields a LoRA run writes (``config``, ``steps``, ``tokens_seen``,
``wall_time_s``, ``gpu_*``, ``cost_usd``), plus ``fine_tuned_model``, ``trained_tokens`` and the job's details.

It is (re)written atomically at every status change, so a killed client leaves a file that ``resume`` can
pick up. It never contains the API key: nothing here is ever given the key.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ftbench.errors import InputError
from ftbench.finetune.cost import Cost, TokenPrice
from ftbench.finetune.openai_client import redact_known

RUN_FILE = "run.json"
EVENTS_FILE = "events.jsonl"
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


@dataclass
class OpenAIRun:
    """Everything known about one fine-tuning job; ``None`` until known."""

    job_id: str
    status: str
    config: dict[str, Any]
    kind: str = "openai"
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
    cost_usd: float | None = None  # top level, as in a LoRA run.json, for the leaderboard
    cost: dict[str, Any] | None = None  # the amount with its basis and the dated price used
    error: dict[str, Any] | None = None
    ftbench_version: str = field(default_factory=lambda: _version())

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


def _version() -> str:
    try:
        return version("ftbench")
    except PackageNotFoundError:  # running from a checkout without installing
        return "unknown"


def iso(timestamp: int | float | None) -> str | None:
    """An epoch timestamp (as OpenAI sends them) as an ISO 8601 UTC string."""
    return None if timestamp is None else datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat()


def cost_record(cost: Cost, price: TokenPrice) -> dict[str, Any]:
    return {"usd": cost.usd, "basis": cost.basis, "price": asdict(price)}


def save_run(run: OpenAIRun, run_dir: Path) -> Path:
    """Write ``run_dir/run.json`` atomically (a reader never sees half a file)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / RUN_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(redact_known(json.dumps(asdict(run), indent=2, ensure_ascii=False)) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_run(run_dir: Path) -> OpenAIRun | None:
    """The run recorded in ``run_dir``, or ``None`` when there is none."""
    path = run_dir / RUN_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not a readable run.json ({err})") from err
    known = {f.name for f in fields(OpenAIRun)}
    if not isinstance(data, dict) or not isinstance(data.get("job_id"), str) or data.get("kind") != "openai":
        raise InputError(f"{path}: not the run.json of an OpenAI fine-tune")
    return OpenAIRun(**{key: value for key, value in data.items() if key in known})


def append_events(run_dir: Path, events: list[dict[str, Any]]) -> None:
    """Append job events to ``events.jsonl`` (the caller passes only events not written before)."""
    if not events:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / EVENTS_FILE).open("a", encoding="utf-8") as out:
        out.writelines(redact_known(json.dumps(event, ensure_ascii=False)) + "\n" for event in events)


def recorded_event_ids(run_dir: Path) -> set[str]:
    path = run_dir / EVENTS_FILE
    if not path.is_file():
        return set()
    ids = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            ids.add(str(json.loads(line)["id"]))
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut short by a kill; the event is fetched again
    return ids

"""Training curves of the runs behind the leaderboard: loss per step from each model's training record.

- LoRA (and the demo's scratch) ``run.json``: ``train_loss_curve`` (``step``, ``loss``) and ``eval_loss_curve``
  (``step``, ``eval_loss``);
- OpenAI fine-tunes: the job's ``metrics`` events in ``events.jsonl`` beside ``run.json`` (``data.step``,
  ``data.train_loss``, ``data.valid_loss``).

A record that cannot be read gives no curve (the cost columns already report unreadable records).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftbench.errors import InputError
from ftbench.finetune.openai.run import EVENTS_FILE
from ftbench.finetune.record import OpenAIRunRecord, read_run_json


@dataclass(frozen=True)
class Curve:
    """One model's training and evaluation loss by step."""

    name: str
    train: tuple[tuple[int, float], ...]
    eval: tuple[tuple[int, float], ...]


def read_curve(name: str, run_json: Path) -> Curve | None:
    """The curves in ``run_json`` (or in the OpenAI events beside it); None when there are none."""
    try:
        record = read_run_json(run_json)
    except InputError:
        return None
    if isinstance(record, OpenAIRunRecord):
        return _openai_curve(name, run_json.parent / EVENTS_FILE)
    curve = Curve(name, _points(record.train_loss_curve, "loss"), _points(record.eval_loss_curve, "eval_loss"))
    return curve if curve.train or curve.eval else None


def _points(rows: Any, key: str) -> tuple[tuple[int, float], ...]:
    if not isinstance(rows, list):
        return ()
    found = [(row["step"], row[key]) for row in rows if isinstance(row, dict)
             and isinstance(row.get("step"), (int, float)) and isinstance(row.get(key), (int, float))]
    return tuple(sorted((int(step), float(value)) for step, value in found))


def _openai_curve(name: str, events: Path) -> Curve | None:
    if not events.is_file():
        return None
    data = []
    for line in events.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and isinstance(event.get("data"), dict):
            data.append(event["data"])
    curve = Curve(name, _points(data, "train_loss"), _points(data, "valid_loss"))
    return curve if curve.train or curve.eval else None

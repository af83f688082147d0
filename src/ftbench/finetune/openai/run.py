"""``run.json`` of an OpenAI fine-tune (:class:`~ftbench.finetune.record.OpenAIRunRecord`) and ``events.jsonl``.

It is (re)written atomically at every status change, so a killed client leaves a file that ``resume`` can
pick up. It never contains the API key: nothing here is ever given the key.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ftbench.errors import InputError
from ftbench.finetune.record import RUN_JSON, OpenAIRunRecord, read_run_json
from ftbench.openai_client import redact_known
from ftbench.pricing import Cost, TokenPrice

EVENTS_FILE = "events.jsonl"


def iso(timestamp: int | float | None) -> str | None:
    """An epoch timestamp (as OpenAI sends them) as an ISO 8601 UTC string."""
    return None if timestamp is None else datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat()


def cost_record(cost: Cost, price: TokenPrice) -> dict[str, Any]:
    return {"usd": cost.usd, "basis": cost.basis, "price": asdict(price)}


def load_run(run_dir: Path) -> OpenAIRunRecord | None:
    """The run recorded in ``run_dir``, or ``None`` when there is none."""
    path = run_dir / RUN_JSON
    if not path.is_file():
        return None
    record = read_run_json(path)
    if not isinstance(record, OpenAIRunRecord):
        raise InputError(f"{path}: not the run.json of an OpenAI fine-tune (kind {record.kind!r})")
    return record


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

"""run.json: one typed record for LoRA and OpenAI runs, written atomically, read back with clear errors."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from ftbench.errors import InputError
from ftbench.finetune.record import (
    RECORD_VERSION,
    LoraRunRecord,
    OpenAIRunRecord,
    cost_from_run_json,
    read_run_json,
    write_run_json,
)
from ftbench.pricing import gpu_cost

LORA = LoraRunRecord(config={"task": "spider_sql"}, steps=400, max_steps=400, tokens_seen=1000, wall_time_s=7200.0,
                     gpu_name="NVIDIA A40", gpu_count=1, gpu_hours=2.0, price_per_gpu_hour=0.475, cost_usd=0.95,
                     train_loss_curve=[{"step": 10, "loss": 1.5}])
OPENAI = OpenAIRunRecord(job_id="ftjob-1", status="succeeded", config={"model": "gpt-4.1-mini-2025-04-14"},
                         fine_tuned_model="ft:gpt-4.1-mini-2025-04-14:org::abc", trained_tokens=1_498_750,
                         cost_usd=11.99)


@pytest.mark.parametrize("record", [LORA, OPENAI], ids=["lora", "openai"])
def test_a_record_reads_back_as_the_same_typed_record(record: LoraRunRecord | OpenAIRunRecord,
                                                      tmp_path: Path) -> None:
    path = write_run_json(tmp_path / "new-dir", record)
    assert read_run_json(path) == record
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert (stored["kind"], stored["record_version"]) == (record.kind, RECORD_VERSION)
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.json"], "no partial file left behind"


def test_an_old_lora_record_without_kind_or_version_still_reads(tmp_path: Path) -> None:
    old = {key: value for key, value in asdict(LORA).items() if key not in ("kind", "record_version")}
    (tmp_path / "run.json").write_text(json.dumps(old), encoding="utf-8")
    record = read_run_json(tmp_path / "run.json")
    assert isinstance(record, LoraRunRecord)
    assert (record.record_version, record.cost_usd, record.steps) == (0, 0.95, 400)


def test_an_old_openai_record_without_kind_is_told_by_its_job(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"job_id": "ftjob-1", "status": "running", "config": {},
                                                   "fine_tuned_model": None, "some_future_key": 1}),
                                       encoding="utf-8")
    record = read_run_json(tmp_path / "run.json")
    assert isinstance(record, OpenAIRunRecord) and record.status == "running" and not record.is_terminal


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", r"cannot read run\.json"),
    ("[1, 2]", r"must hold a JSON object, not list"),
    ('{"kind": "qlora"}', r"kind 'qlora' is not one of lora, openai"),
    ("{}", r"lacks wall_time_s, gpu_name, gpu_count, gpu_hours, price_per_gpu_hour, cost_usd"),
    ('{"kind": "openai", "job_id": 7, "status": "ok", "config": {}}', r"wrong type: job_id=7"),
    (json.dumps({**asdict(LORA), "record_version": RECORD_VERSION + 1}), r"newer than this ftbench reads"),
])
def test_bad_records_are_refused_naming_the_file(content: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message) as caught:
        read_run_json(path)
    assert str(path) in str(caught.value)


def test_a_mistyped_cost_is_an_input_error_not_a_crash(tmp_path: Path) -> None:
    """Before one reader, ``float("seven")`` escaped as a bare ValueError from the leaderboard's cost column."""
    path = tmp_path / "run.json"
    path.write_text(json.dumps({**gpu_cost(3600, 1, 1.0, "NVIDIA H200").to_dict(), "wall_time_s": "seven"}),
                    encoding="utf-8")
    with pytest.raises(InputError, match=r"wall_time_s='seven'"):
        cost_from_run_json(path)


def test_an_openai_record_has_no_gpu_cost(tmp_path: Path) -> None:
    path = write_run_json(tmp_path, OPENAI)
    with pytest.raises(InputError, match="OpenAI fine-tune has no GPU-hours"):
        cost_from_run_json(path)

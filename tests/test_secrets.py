"""Secrets never land in files ftbench or lm-eval write: no key in model_args, events redacted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftbench.errors import InputError
from ftbench.finetune.openai.run import EVENTS_FILE, append_events, load_run
from ftbench.finetune.record import OpenAIRunRecord, write_run_json
from ftbench.lmeval.openai_chat import ChatCompletions, OpenAIChat

KEY = "sk-proj-SECRETkey0123456789abcdef"
URL = "http://127.0.0.1:9/v1/chat/completions"


@pytest.mark.parametrize("name", ["api_key", "API_KEY", "openai_api_key"])
@pytest.mark.parametrize("model_class", [ChatCompletions, OpenAIChat])
def test_model_classes_refuse_a_key_in_model_args(model_class: type[ChatCompletions], name: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with pytest.raises(InputError, match="OPENAI_API_KEY") as refused:
        model_class(model="m", base_url=URL, **{name: KEY})
    assert KEY not in str(refused.value)


@pytest.mark.parametrize("key", [KEY, "plain-project-token-0123456789"])
def test_job_events_that_echo_the_key_are_redacted(key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", key)
    event = {"id": "ev1", "message": f"Invalid key {key} for file-abc", "level": "error"}
    append_events(tmp_path, [event])
    text = (tmp_path / EVENTS_FILE).read_text(encoding="utf-8")
    assert key not in text
    assert json.loads(text)["id"] == "ev1"  # still one JSON object per line


def test_run_records_are_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    run = OpenAIRunRecord(job_id="ftjob-1", status="failed", config={}, error={"message": f"rejected {KEY}"})
    write_run_json(tmp_path, run)
    assert KEY not in (tmp_path / "run.json").read_text(encoding="utf-8")
    loaded = load_run(tmp_path)
    assert loaded is not None and loaded.error is not None and "rejected" in loaded.error["message"]


def test_job_progress_and_failure_messages_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from ftbench.finetune.openai.jobs import Event, Job, Printer, describe_failure

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    event = Event(id="ev1", created_at=0, level="error", message=f"bad key {KEY}")
    shown = io.StringIO()
    Printer(stream=shown).on_event(event)
    job = Job(id="ftjob-1", status="failed", model="m", fine_tuned_model=None, trained_tokens=None, created_at=None,
              finished_at=None, hyperparameters={}, training_file=None, validation_file=None,
              error={"message": f"key {KEY} revoked"})
    failure = describe_failure(job, [event])
    assert "bad key" in shown.getvalue() and "revoked" in failure
    assert KEY not in shown.getvalue() and KEY not in failure

"""OpenAI fine-tuning end to end against a local fake of the API, with the real `openai` client.

prepare -> validate -> estimate -> submit -> run.json; resume after the client is killed mid-poll;
failed jobs, rejected files, 429 storms and bad keys; the key never leaves the environment.
"""

from __future__ import annotations

import importlib.util
import json
import math
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from ftbench import prompts
from ftbench._jsonl import JsonlLine
from ftbench.data import load_spider_sql, load_viggo
from ftbench.errors import ApiKeyError, InputError, OpenAIApiError
from ftbench.finetune.openai import cli
from ftbench.finetune.openai.config import config_keys, load_config
from ftbench.finetune.openai.data import chat_examples
from ftbench.finetune.openai.tokens import (
    CHARS_PER_TOKEN,
    default_epochs,
    token_counter,
)
from ftbench.finetune.openai.validate import validate_lines
from ftbench.openai_client import OpenAIApi, RetryPolicy, make_api, redact
from ftbench.pricing import (
    OPENAI_PRICES,
    PriceOverride,
    base_model,
    price_for,
    training_cost,
    usage_cost,
)

from .conftest import REPO_ROOT
from .fake_openai import FakeOpenAI

SCRIPT = REPO_ROOT / "training" / "openai_finetune.py"
CONN = ["--backoff-base", "0.01"]
FAST = ["--poll-interval", "0.01", "--max-poll-interval", "0.05", *CONN]


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("openai_finetune", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = _load_script()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """A running fake API, with OPENAI_API_KEY and OPENAI_BASE_URL pointing at it."""
    with FakeOpenAI() as server:
        monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        yield server


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = script.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def small_file(tmp_path: Path, n: int = 12) -> Path:
    path = tmp_path / "train.jsonl"
    lines = [json.dumps({"messages": m}) for m in chat_examples("spider_sql", "train")[:n]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def no_key_anywhere(key: str, *texts: str, folder: Path | None = None) -> None:
    files = [p.read_text(encoding="utf-8") for p in folder.rglob("*") if p.is_file()] if folder else []
    for text in [*texts, *files]:
        assert key not in text


# --- prepare / validate / estimate ------------------------------------------------------------------------

@pytest.mark.parametrize(("task", "split"), [("spider_sql", "train"), ("viggo", "validation")])
def test_prepare_writes_the_prompt_modules_messages_line_for_line(
        task: str, split: str, data_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "f.jsonl"
    code, stdout, _ = run(["prepare", "--task", task, "--split", split, "--output", str(out)], capsys)
    assert code == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    if task == "spider_sql":
        expected = [prompts.sql_chat_messages(e.question, e.context, e.answer) for e in load_spider_sql(split)]
    else:
        expected = [prompts.viggo_chat_messages(e.target, e.meaning_representation) for e in load_viggo(split)]
    assert [line["messages"] for line in lines] == expected
    assert all(set(line) == {"messages"} for line in lines)
    assert f"{len(expected)} examples" in stdout


def test_validate_reports_each_problem_with_its_line_numbers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                         {"role": "assistant", "content": "a"}]}
    rows: list[str] = [json.dumps(good)] * 10
    rows[1] = "{not json"
    rows[3] = json.dumps({"messages": good["messages"][:2]})  # no assistant turn
    rows[4] = json.dumps({"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "a"}]})
    rows[6] = json.dumps({**good, "extra": 1})
    rows[7] = json.dumps({"messages": [{"role": "user"}, {"role": "assistant", "content": "a", "colour": "red"}]})
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(rows) + "\n")
    code, stdout, stderr = run(["validate", str(path), "--tokenizer", "estimate"], capsys)
    assert code == InputError.exit_code
    problems = {line.split(":")[1].strip(): line for line in stdout.splitlines() if "error:" in line}
    assert "(lines 2)" in problems["invalid_json"]
    assert "(lines 4)" in problems["example_missing_assistant_message"]
    assert "(lines 5)" in problems["unrecognized_role"]
    assert "(lines 7)" in problems["unknown_key"]
    assert "(lines 8)" in problems["message_missing_key"] and "(lines 8)" in problems["message_unrecognized_key"]
    assert "(lines 8)" in problems["missing_content"]
    assert "INVALID" in stdout and "fix the errors" in stderr


def test_validate_flags_too_few_examples_and_overlong_ones_as_a_warning() -> None:
    long_text = "x" * (CHARS_PER_TOKEN * 5000)
    lines = [JsonlLine(1, {"messages": [{"role": "user", "content": long_text},
                                        {"role": "assistant", "content": "a"}]})]
    report = validate_lines(lines, token_counter("gpt-3.5-turbo-0613", "estimate"), token_limit=4096)
    assert report.warnings == {"too_many_tokens": [1]}
    assert report.errors == {"too_few_examples": [0]}


def test_prepared_files_pass_validation_and_estimate_names_the_dated_price(
        data_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = small_file(tmp_path, n=20)
    assert run(["validate", str(path), "--tokenizer", "estimate"], capsys)[0] == 0
    code, stdout, _ = run(["estimate", str(path), "--tokenizer", "estimate", "--model", "gpt-3.5-turbo-0613"], capsys)
    assert code == 0
    counter = token_counter("gpt-3.5-turbo-0613", "estimate")
    per_epoch = sum(counter.count_messages(m) for m in chat_examples("spider_sql", "train")[:20])
    epochs = 100 // 20  # OpenAI's heuristic for 20 examples: 20 × 3 < 100, so 100 // 20
    assert f"epochs: {epochs} (chosen by OpenAI's default heuristic)" in stdout
    assert f"billed tokens: ~{per_epoch * epochs:,}" in stdout
    assert f"${round(per_epoch * epochs * 0.008 / 1000, 2):,.2f}" in stdout
    assert "gpt-3.5-turbo-0613, price of 2023-08-22" in stdout


def test_estimate_prices_are_overridable_on_the_command_line(
        data_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = small_file(tmp_path)
    argv = ["estimate", str(path), "--tokenizer", "estimate", "--model", "my-model", "--n-epochs", "2"]
    code, _, stderr = run(argv, capsys)
    assert code == InputError.exit_code and "--training-price" in stderr
    code, stdout, _ = run([*argv, "--training-price", "0.5"], capsys)
    assert code == 0
    assert "epochs: 2 (chosen by you)" in stdout and "× $0.5/1K (my-model, price given on the command line)" in stdout


# --- tokens, epochs, cost -------------------------------------------------------------------------------

def test_offline_tiktoken_falls_back_to_the_documented_estimate_and_says_so() -> None:
    def offline(name: str) -> Any:
        raise ConnectionError(f"could not download {name}")

    counter = token_counter("gpt-3.5-turbo-0613", "auto", loader=offline)
    messages = [{"role": "system", "content": "abcdefghi"}, {"role": "user", "content": "hello"}]
    assert not counter.exact
    assert counter.warning is not None
    assert "ESTIMATES" in counter.warning and "4 characters per token" in counter.warning
    # 3 priming + per message: 3 framing + ceil(len/4) for role and content
    expected = 3 + sum(3 + math.ceil(len(m["role"]) / 4) + math.ceil(len(m["content"]) / 4) for m in messages)
    assert counter.count_messages(messages) == expected
    with pytest.raises(InputError, match="could not load"):
        token_counter("gpt-3.5-turbo-0613", "tiktoken", loader=offline)


def test_loaded_encodings_give_exact_counts() -> None:
    class Words:
        def encode(self, text: str, disallowed_special: Any = ()) -> list[int]:
            return [0] * len(text.split())

    counter = token_counter("gpt-4o-mini-2024-07-18", "auto", loader=lambda name: Words())
    assert counter.exact and counter.warning is None and counter.encoding == "o200k_base"
    assert counter.count_messages([{"role": "user", "content": "one two three"}]) == 3 + 3 + 1 + 3


@pytest.mark.parametrize(("n_examples", "epochs"), [
    (1, 25), (5, 20), (20, 5), (30, 3), (34, 3), (3961, 3), (5103, 3), (8333, 3), (8334, 2), (30000, 1)])
def test_default_epochs_follow_openais_heuristic(n_examples: int, epochs: int) -> None:
    assert default_epochs(n_examples) == epochs


@pytest.mark.parametrize(("trained_tokens", "paid"), [(1_498_750, 11.99), (3_256_250, 26.05)])
def test_cost_from_trained_tokens_reproduces_what_the_study_paid(trained_tokens: int, paid: float) -> None:
    cost = training_cost(trained_tokens, price_for("gpt-3.5-turbo-0613"))
    assert cost.usd == paid
    assert f"{trained_tokens:,} trained tokens" in cost.basis and "2023-08-22" in cost.basis


def test_price_table_names_model_date_and_source_and_resolves_ft_ids() -> None:
    for name, price in OPENAI_PRICES.items():
        assert price.model == name and len(price.effective) == 10 and price.source.startswith("https://")
    ft = "ft:gpt-3.5-turbo-0613:acme::abc123"
    assert base_model(ft) == "gpt-3.5-turbo-0613"
    usage = usage_cost(1_000_000, 100_000, price_for(ft))
    assert usage.usd == 12.0 + 1.6
    assert price_for(ft, PriceOverride(training_per_1k=0.01)).training_per_1k == 0.01


@pytest.mark.parametrize(("name", "dated"), [
    ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"), ("gpt-4o", "gpt-4o-2024-08-06"), ("gpt-4.1", "gpt-4.1-2025-04-14"),
    ("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14"), ("gpt-3.5-turbo", "gpt-3.5-turbo-0125"),
    ("ft:gpt-4o-mini-2024-07-18:acme::x", "gpt-4o-mini-2024-07-18"),
    ("gpt-3.5-turbo-0613", "gpt-3.5-turbo-0613"),
])
def test_undated_aliases_resolve_to_the_newest_dated_price(name: str, dated: str) -> None:
    assert price_for(name).model == dated


def test_new_runs_default_to_a_model_openai_fine_tunes_today() -> None:
    assert cli.DEFAULT_MODEL == "gpt-4.1-mini-2025-04-14"
    assert price_for(cli.DEFAULT_MODEL).effective == "2025-04-14"
    assert price_for("gpt-3.5-turbo-0613").effective == "2023-08-22", "the study's price stays for its costs"


# --- the client: retries, keys --------------------------------------------------------------------------

def test_429_storm_is_retried_with_growing_backoff_and_retry_after(fake: FakeOpenAI) -> None:
    delays: list[float] = []
    api = make_api(retry=RetryPolicy(max_attempts=6, base_s=0.01, jitter=0.0))
    api = OpenAIApi(api.client, api.secret, api.retry, sleep=delays.append)
    fake.fail_next(3, 429)
    fake.fail_next(1, 503, code=None, message="The server is overloaded")
    fake.fail_next(1, 429, headers={"retry-after-ms": "300"})
    result = api.call("listing", lambda: api.client.files.create(file=("a.jsonl", b"{}\n"), purpose="fine-tune"))
    assert result.id.startswith("file-")
    assert delays[:4] == [0.01, 0.02, 0.04, 0.08]
    assert delays[4] == pytest.approx(0.3)  # the server's Retry-After wins over a shorter backoff
    assert len(fake.calls("POST", "/v1/files")) == 6


def test_endless_429s_give_up_with_the_last_reason(fake: FakeOpenAI) -> None:
    base = make_api()
    api = OpenAIApi(base.client, base.secret, RetryPolicy(max_attempts=3, base_s=0.001), sleep=lambda s: None)
    fake.fail_next(10, 429, message="Rate limit reached for fine-tuning jobs")
    with pytest.raises(OpenAIApiError, match=r"gave up after 3 attempts.*Rate limit reached"):
        api.call("creating the job", lambda: api.client.fine_tuning.jobs.retrieve("ftjob-x"))


def test_insufficient_quota_is_not_retried(fake: FakeOpenAI) -> None:
    base = make_api()
    api = OpenAIApi(base.client, base.secret, RetryPolicy(base_s=0.001), sleep=lambda s: None)
    fake.fail_next(5, 429, code="insufficient_quota", message="You exceeded your current quota")
    with pytest.raises(OpenAIApiError, match="no quota left"):
        api.call("uploading", lambda: api.client.files.create(file=("a.jsonl", b"{}\n"), purpose="fine-tune"))
    assert len(fake.requests) == 1


def test_missing_key_is_a_clear_error_before_any_request(
        fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    code, _, stderr = run(["status", "ftjob-000001"], capsys)
    assert code == ApiKeyError.exit_code
    assert "OPENAI_API_KEY is not set" in stderr
    assert fake.requests == []


def test_rejected_key_is_a_clear_error_that_never_shows_the_key(
        fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = "sk-proj-WRONGkey9876543210abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    code, stdout, stderr = run(["status", "ftjob-000001", *CONN], capsys)
    assert code == ApiKeyError.exit_code
    assert "rejected the key in OPENAI_API_KEY" in stderr and "Incorrect API key provided" in stderr
    assert len(fake.requests) == 1  # a 401 is not retried
    no_key_anywhere(wrong, stdout, stderr)
    assert wrong in fake.requests[0].headers["authorization"]  # the server did echo it; we scrubbed it


def test_redact_masks_the_key_and_key_shaped_text() -> None:
    text = redact("bad key sk-proj-ABCDEFGH12345678 and mine sk-live-secret", "sk-live-secret")
    assert "ABCDEFGH12345678" not in text and "sk-live-secret" not in text


# --- jobs -----------------------------------------------------------------------------------------------

def test_prepare_validate_submit_writes_a_succeeded_run_json(
        fake: FakeOpenAI, data_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train, out = tmp_path / "train.jsonl", tmp_path / "run"
    assert run(["prepare", "--task", "spider_sql", "--split", "train", "--output", str(train)], capsys)[0] == 0
    assert run(["validate", str(train), "--tokenizer", "estimate"], capsys)[0] == 0
    code, stdout, stderr = run(["submit", "--train", str(train), "--out", str(out), "--suffix", "spider",
                                "--seed", "7", "--n-epochs", "2", "--task", "spider_sql", *FAST], capsys)
    assert code == 0, stderr
    [create] = fake.calls("POST", "/v1/fine_tuning/jobs")
    params = create.json()
    assert params["model"] == "gpt-4.1-mini-2025-04-14" and params["suffix"] == "spider" and params["seed"] == 7
    assert params["method"] == {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}
    assert "hyperparameters" not in params, "the top-level hyperparameters are deprecated"
    first = [(r.method, r.path) for r in fake.requests[:2]]
    assert first == [("GET", "/v1/models/gpt-4.1-mini-2025-04-14"), ("POST", "/v1/files")], "model checked first"
    assert fake.files[params["training_file"]]["content"] == train.read_bytes()
    job = fake.jobs[next(iter(fake.jobs))]
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "succeeded" and record["job_id"] == job["id"]
    assert record["fine_tuned_model"] == job["fine_tuned_model"]
    assert record["trained_tokens"] == job["trained_tokens"] == record["tokens_seen"]
    assert record["cost_usd"] == record["cost"]["usd"] == round(job["trained_tokens"] * 0.005 / 1000, 2)
    assert record["cost"]["price"]["effective"] == "2025-04-14"
    assert record["wall_time_s"] == job["finished_at"] - job["created_at"]
    assert record["steps"] == fake.running_polls and record["config"]["training_file"] == str(train)
    assert f"fine_tuned_model: {job['fine_tuned_model']}" in stdout
    assert "Step 3/3" in stderr and "succeeded" in stderr  # the progress display
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["id"] for e in events] == [e["id"] for e in fake.events[job["id"]]]
    no_key_anywhere(fake.api_key, stdout, stderr, folder=out)


def test_a_second_submit_to_the_same_run_folder_is_refused(
        fake: FakeOpenAI, data_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["submit", "--train", str(small_file(tmp_path)), "--out", str(tmp_path / "run"), *FAST]
    assert run(argv, capsys)[0] == 0
    code, _, stderr = run(argv, capsys)
    assert code == InputError.exit_code and "already holds job" in stderr
    assert len(fake.jobs) == 1


def test_a_failed_job_shows_its_error_and_events(
        fake: FakeOpenAI, data_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake.outcome = "failed"
    fake.failure = {"code": "invalid_training_file", "param": "training_file",
                    "message": "The job failed due to an invalid training file: example 3 has no assistant message."}
    out = tmp_path / "run"
    code, _, stderr = run(["submit", "--train", str(small_file(tmp_path)), "--out", str(out), *FAST], capsys)
    assert code == 7
    assert "failed: The job failed due to an invalid training file" in stderr
    assert "[invalid_training_file]" in stderr and "last events:" in stderr and "Step 3/3" in stderr
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "failed" and record["error"]["code"] == "invalid_training_file"


def test_a_rejected_training_file_shows_openais_reason_and_creates_no_job(
        fake: FakeOpenAI, data_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake.reject_training_file = "Invalid file format. Line 4, key \"messages\": missing assistant message."
    code, _, stderr = run(["submit", "--train", str(small_file(tmp_path)), "--out", str(tmp_path / "r"), *FAST],
                          capsys)
    assert code == OpenAIApiError.exit_code
    assert "creating the fine-tuning job" in stderr and "Line 4, key" in stderr and "invalid_file_format" in stderr
    assert fake.jobs == {}


def test_the_studys_model_is_refused_before_anything_is_uploaded(
        fake: FakeOpenAI, data_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["submit", "--train", str(small_file(tmp_path)), "--out", str(tmp_path / "r"), *FAST]
    code, _, stderr = run([*argv, "--model", "gpt-3.5-turbo-0613"], capsys)
    assert code == InputError.exit_code
    assert "no longer fine-tunes gpt-3.5-turbo-0613; use --model gpt-4.1-mini-2025-04-14" in stderr
    assert "Nothing was uploaded" in stderr and fake.requests == []


def test_a_model_the_key_cannot_see_is_refused_before_uploading(
        fake: FakeOpenAI, data_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake.models.discard("gpt-4.1-2025-04-14")
    argv = ["submit", "--train", str(small_file(tmp_path)), "--out", str(tmp_path / "r"), *FAST]
    code, _, stderr = run([*argv, "--model", "gpt-4.1-2025-04-14"], capsys)
    assert code == OpenAIApiError.exit_code
    assert "checking that model gpt-4.1-2025-04-14 exists before uploading anything" in stderr
    assert "model_not_found" in stderr
    assert fake.calls("POST", "/v1/files") == [] and fake.jobs == {}


def test_an_undated_alias_is_fine_tuned_and_priced_as_its_dated_model(
        fake: FakeOpenAI, data_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r"
    code, _, stderr = run(["submit", "--train", str(small_file(tmp_path)), "--out", str(out), "--model",
                           "gpt-4o-mini", *FAST], capsys)
    assert code == 0, stderr
    record = json.loads((out / "run.json").read_text())
    assert record["cost"]["price"]["model"] == "gpt-4o-mini-2024-07-18"
    assert record["cost"]["usd"] == round(record["trained_tokens"] * 0.003 / 1000, 2)


def test_submit_validates_locally_before_uploading(
        fake: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "q"}]}) + "\n")
    code, _, stderr = run(["submit", "--train", str(path), "--out", str(tmp_path / "r"), *FAST], capsys)
    assert code == InputError.exit_code and "nothing was uploaded" in stderr
    assert fake.requests == []


def test_status_and_cancel_by_job_id(
        fake: FakeOpenAI, data_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake.hold = threading.Event()
    out = tmp_path / "run"
    submitter = threading.Thread(target=script.main, args=(
        ["submit", "--train", str(small_file(tmp_path)), "--out", str(out), *FAST],))
    submitter.start()
    job_id = _wait_for_running_job(fake, out)
    code, stdout, _ = run(["status", job_id, *CONN], capsys)
    assert code == 0 and f"job {job_id}: running" in stdout and "Fine-tuning job started" in stdout
    code, stdout, _ = run(["cancel", job_id, "--out", str(out), *CONN], capsys)
    submitter.join(timeout=20)
    assert code == 0 and f"job {job_id}: cancelled" in stdout
    assert json.loads((out / "run.json").read_text())["status"] == "cancelled"
    assert not submitter.is_alive()


def _wait_for_running_job(fake: FakeOpenAI, out: Path, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = [job_id for job_id, job in fake.jobs.items() if job["status"] == "running"]
        if running and (out / "run.json").is_file() and len(fake.calls("GET", r"/v1/fine_tuning/jobs/[^/]+")) >= 3:
            return running[0]
        time.sleep(0.02)
    raise AssertionError("the job never reached `running`")


def test_resume_after_the_client_is_killed_mid_poll_creates_no_second_job(
        fake: FakeOpenAI, data_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake.hold = threading.Event()
    out = tmp_path / "run"
    client = subprocess.Popen([sys.executable, str(SCRIPT), "submit", "--train", str(small_file(tmp_path)),
                               "--out", str(out), *FAST], cwd=REPO_ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        job_id = _wait_for_running_job(fake, out)
    finally:
        client.send_signal(signal.SIGKILL)
        client.wait(timeout=10)
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    fake.hold.set()
    code, stdout, stderr = run(["resume", job_id, "--out", str(out), *FAST], capsys)
    assert code == 0, stderr
    assert len(fake.calls("POST", "/v1/fine_tuning/jobs")) == 1 and len(fake.calls("POST", "/v1/files")) == 1
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "succeeded" and record["fine_tuned_model"] == fake.jobs[job_id]["fine_tuned_model"]
    assert f"fine_tuned_model: {record['fine_tuned_model']}" in stdout
    assert record["cost"]["usd"] == round(fake.jobs[job_id]["trained_tokens"] * 0.005 / 1000, 2)
    assert record["config"]["suffix"] is None and record["training_file_id"] in fake.files  # kept from submit
    ids = [json.loads(line)["id"] for line in (out / "events.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids))  # events seen before the kill are not written twice


def test_resume_needs_a_job_and_checks_it_matches_the_folder(
        fake: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, stderr = run(["resume", "--out", str(tmp_path / "empty"), *FAST], capsys)
    assert code == InputError.exit_code and "no job id given" in stderr


# --- configs and help -----------------------------------------------------------------------------------

@pytest.mark.parametrize("config", sorted((REPO_ROOT / "training" / "configs").glob("openai_*.yaml")),
                         ids=lambda p: p.name)
def test_every_openai_config_loads_and_names_known_things(config: Path, data_env: Path) -> None:
    values = load_config(config)
    assert set(yaml.safe_load(config.read_text())) == set(config_keys()), "each config sets every key"
    assert values.model is not None and price_for(values.model).model == values.model
    for split, path in ((values.train_split, values.train_file), (values.validation_split, values.validation_file)):
        if split:
            assert values.task is not None and chat_examples(values.task, split)
            assert str(path).endswith(".jsonl")
    assert "openai_finetune.py submit --config" in config.read_text()


def test_unknown_config_keys_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"task": "viggo", "n_epoch": 3}))
    with pytest.raises(InputError, match=r"unknown config key.*n_epoch"):
        load_config(path)


@pytest.mark.parametrize(("values", "message"), [
    ({"n_epochs": "three"}, r"n_epochs='three' is not a whole number"),
    ({"seed": True}, r"seed=True is not a whole number"),
    ({"task": "spider"}, r"task='spider' is not one of spider_sql, viggo"),
    ({"out": ["a", "b"]}, r"out=\['a', 'b'\] is not text"),
])
def test_config_values_of_the_wrong_type_are_an_error_naming_the_file(values: dict[str, Any], message: str,
                                                                      tmp_path: Path) -> None:
    """The untyped config dict handed such values on to the API (or to Path())."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(InputError, match=rf"{path}: {message}"):
        load_config(path)


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        script.main([command, "--help"])
    assert stop.value.code == 0
    assert len(capsys.readouterr().out.splitlines()) > 3

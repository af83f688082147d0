"""Hostile rows outside the sandbox: nothing in the calling process compiles model output, gold or
context; every such row is scored and classified; dead workers are replaced; the judge's own faults are
``internal``; caches are bounded in bytes; the worker gets no secrets."""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from ftbench.errors import SandboxError
from ftbench.lmeval.hooks import spider_sql_results
from ftbench.sql import JudgeConfig, SqlScorer, Verdict, is_valid_sql, judge
from ftbench.sql._isolation import KILL_GRACE_S
from ftbench.sql._types import JudgeJob

TIMEOUT = 0.5
CONFIG = JudgeConfig(timeout_s=TIMEOUT, n_databases=4)
CONTEXT = "CREATE TABLE singer (name VARCHAR, country VARCHAR, age INTEGER)"
GOLD = "SELECT name FROM singer WHERE age > 20"
# Each level joins the previous one with itself: compiling it costs x2 per level, time and memory.
CTE_BOMB = "WITH " + ",".join(["a0 AS (SELECT 1)"] + [f"a{i} AS (SELECT 1 FROM a{i - 1}, a{i - 1})"
                                                     for i in range(1, 20)]) + " SELECT * FROM a19"


@pytest.fixture(autouse=True)
def _warm_worker() -> None:
    """A started worker (an earlier test may have left it killed): start-up is not a row's time."""
    judge(GOLD, GOLD, CONTEXT, config=CONFIG)


def _heap_limits() -> tuple[int, int]:
    """This process's sqlite heap limits (hard, soft): process-wide state a PRAGMA can change."""
    connection = sqlite3.connect(":memory:")
    try:
        return (connection.execute("PRAGMA hard_heap_limit").fetchone()[0],
                connection.execute("PRAGMA soft_heap_limit").fetchone()[0])
    finally:
        connection.close()


def _row(prediction: str, gold: str = GOLD, context: str = CONTEXT) -> dict[str, str]:
    return {"context": context, "gold": gold, "prediction": prediction}


@pytest.mark.parametrize("prediction", ["PRAGMA hard_heap_limit=1", "PRAGMA hard_heap_limit=20000",
                                        "PRAGMA soft_heap_limit=12345", "PRAGMA temp_store_directory='/tmp'"])
def test_pragmas_in_predictions_change_nothing_in_the_calling_process(prediction: str) -> None:
    before = _heap_limits()
    scored = SqlScorer(CONFIG).score(_row(prediction))
    assert (scored["exec_match"], scored["error"], scored["valid_sql"]) == (False, "forbidden", True)
    assert is_valid_sql(prediction)  # it parses; deciding that ran it through the sandbox only
    assert _heap_limits() == before
    assert sqlite3.connect(":memory:").execute("SELECT length(randomblob(100000))").fetchone() == (100000,)


def test_a_compile_bomb_costs_the_caller_neither_time_nor_memory() -> None:
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    scored = SqlScorer(CONFIG).score(_row(CTE_BOMB))
    elapsed = time.monotonic() - started
    assert scored["exec_match"] is False and scored["error"] in ("timeout", "runtime")
    assert elapsed < TIMEOUT + 1.0, f"took {elapsed:.1f}s"
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mb < 100, f"the calling process grew by {grown_mb:.0f} MB"


@pytest.mark.parametrize(("row", "kind", "field"), [
    (_row("SELECT 1 FROM singer", gold="SELECT " + "1 + " * 6000 + "1"), "forbidden", "gold"),
    (_row("SELECT 1 FROM singer", context=CONTEXT + " " * 300_000), "forbidden", "context"),
    (_row("SELECT " + "1 + " * 2_000_000 + "1"), "forbidden", "prediction"),
    (_row("SELECT name FROM singer WHERE name = '\ud800'"), "syntax", "prediction"),
    (_row("SELECT 1", gold="SELECT name FROM singer WHERE name = '\udfff'"), "syntax", "gold"),
    (_row(GOLD, context=CONTEXT + " -- \ud800"), "syntax", "context"),
])
def test_oversized_or_unencodable_text_is_refused_before_anything_parses_it(row: dict[str, str], kind: str,
                                                                          field: str) -> None:
    verdict = judge(row["gold"], row["prediction"], row["context"], config=CONFIG)
    assert (verdict.exec_match, verdict.error) == (False, kind)
    assert verdict.detail is not None and verdict.detail.startswith(field)
    assert verdict.valid_sql is (field != "prediction")  # a valid prediction stays valid beside a bad gold


def test_a_gold_that_never_ends_costs_one_timeout_not_one_per_database() -> None:
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    started = time.monotonic()
    verdict = judge(endless, GOLD, CONTEXT, config=JudgeConfig(timeout_s=TIMEOUT, n_databases=8))
    elapsed = time.monotonic() - started
    assert (verdict.exec_match, verdict.error) == (False, "runtime")
    assert "time limit" in (verdict.detail or "")
    assert elapsed < TIMEOUT + 0.75, f"took {elapsed:.1f}s"


def test_the_whole_row_is_bounded_by_build_timeout() -> None:
    """Every query within its own timeout, but together past the row's bound: the worker is stopped."""
    slow = "SELECT count(*) FROM singer a, singer b, singer c, singer d, singer e, singer f WHERE a.age > 20"
    config = JudgeConfig(timeout_s=TIMEOUT, n_databases=64, build_timeout_s=1.0)
    started = time.monotonic()
    verdict = judge(slow, slow.replace("> 20", ">= 21"), CONTEXT, config=config)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 0.75, f"took {elapsed:.1f}s ({verdict})"
    assert judge(GOLD, GOLD, CONTEXT, config=CONFIG).exec_match  # a fresh worker took over


def test_a_sandbox_worker_killed_mid_row_is_replaced_and_the_row_retried() -> None:
    import threading

    from ftbench.sql._isolation import worker_for

    config = JudgeConfig(timeout_s=20, n_databases=2)
    slow = GOLD + (" AND (SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
                   " WHERE x < 2000000) SELECT x FROM c)) > 0")
    judge(GOLD, GOLD, CONTEXT, config=config)
    process = worker_for(config.memory_mb)._process
    assert process is not None
    killer = threading.Timer(0.3, os.kill, (process.pid, signal.SIGKILL))
    killer.start()
    verdict = judge(GOLD, slow, CONTEXT, config=config)
    killer.join()
    assert worker_for(config.memory_mb)._process is not process  # it really was killed during the row
    assert (verdict.exec_match, verdict.error) == (True, None), verdict


def test_a_worker_that_dies_on_every_try_gives_internal_not_wrong() -> None:
    """A job the worker dies on (here: unpickling it exits the process) is retried once, then reported."""
    from ftbench.sql._isolation import Lost, SandboxWorker

    class DiesInTheWorker:
        def __reduce__(self) -> tuple[object, tuple[int]]:
            return (os._exit, (9,))

    worker = SandboxWorker(CONFIG.memory_mb)
    try:
        reply = worker.ask(DiesInTheWorker())  # type: ignore[arg-type]
        assert isinstance(reply, Lost) and not reply.overran
        assert "died again on retry" in reply.detail
    finally:
        worker.close()


def test_jobs_sent_together_come_back_in_order_and_a_fatal_one_costs_only_itself() -> None:
    """Several jobs travel to the worker in one message: the one it dies on (twice) is ``Lost``, the
    ones before and after it still get their own answers from a new worker."""
    from ftbench.sql._isolation import Lost, SandboxWorker
    from ftbench.sql._types import JudgeJob, Verdict

    class DiesInTheWorker:
        def __reduce__(self) -> tuple[object, tuple[int]]:
            return (os._exit, (9,))

    right, typo = (JudgeJob(GOLD, prediction, CONTEXT, None, CONFIG) for prediction in (GOLD, "SELECT nme FROM singer"))
    worker = SandboxWorker(CONFIG.memory_mb)
    try:
        replies = worker.ask_many([right, DiesInTheWorker(), typo, right])  # type: ignore[list-item]
    finally:
        worker.close()
    assert isinstance(replies[0], Verdict) and replies[0].exec_match
    assert isinstance(replies[1], Lost) and "died again on retry" in replies[1].detail
    assert isinstance(replies[2], Verdict) and replies[2].error == "schema"
    assert isinstance(replies[3], Verdict) and replies[3].exec_match


def test_jobs_of_another_configuration_in_one_message_are_judged_with_their_own() -> None:
    """A message carries its first job's configuration once and the jobs refer to it; a job with a
    configuration of its own keeps it (here: how many databases it is judged on)."""
    from ftbench.sql._isolation import SandboxWorker
    from ftbench.sql._protocol import dump_jobs, load_job, load_jobs

    other = JudgeConfig(timeout_s=TIMEOUT, n_databases=2)
    jobs = [JudgeJob(GOLD, GOLD, CONTEXT, None, CONFIG), JudgeJob(GOLD, GOLD, CONTEXT, None, other)]
    shared, pickled = load_jobs(dump_jobs(jobs))
    assert shared == CONFIG and load_job(pickled[0], shared).config is shared
    assert load_job(pickled[1], shared).config == other
    worker = SandboxWorker(CONFIG.memory_mb)
    try:
        replies = worker.ask_many([*jobs, jobs[0]])
    finally:
        worker.close()
    assert [reply.databases for reply in replies if isinstance(reply, Verdict)] == [4, 2, 4]


def test_a_job_sent_again_gets_its_own_verdict_and_no_other_rows() -> None:
    """The worker keeps the verdicts of jobs it judged, for the same job sent again (several systems
    write the same prediction): never for the same texts with another context, database or config."""
    from ftbench.sql import SqlPair, judge_many

    gold, star = "SELECT name, age FROM singer", "SELECT * FROM singer"
    two, three = "CREATE TABLE singer (name VARCHAR, age INTEGER)", CONTEXT  # CONTEXT also has a country
    pairs = [SqlPair(gold, star, two), SqlPair(gold, star, three), SqlPair(gold, star, two),
             SqlPair(gold, star, three, "no_such_db")]
    verdicts = judge_many(pairs, config=CONFIG)
    assert [verdict.exec_match for verdict in verdicts] == [True, False, True, False]
    assert verdicts[0] == verdicts[2] == judge(gold, star, two, config=CONFIG)
    fewer = judge_many(pairs[:1], config=JudgeConfig(timeout_s=TIMEOUT, n_databases=2))
    assert fewer[0].exec_match and fewer[0].databases == 2 != verdicts[0].databases
    endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"
    slow = JudgeConfig(timeout_s=1.0, n_databases=2)
    judge(GOLD, GOLD, CONTEXT, config=slow)  # the worker's caches warm for this configuration
    started = time.monotonic()
    twice = judge_many([SqlPair(GOLD, endless, CONTEXT)] * 2, config=slow)
    assert [verdict.error for verdict in twice] == ["timeout", "timeout"] and twice[0] == twice[1]
    assert time.monotonic() - started < 1.8  # judged once: the second is the first one's verdict


def test_judging_together_gives_the_verdicts_of_judging_one_by_one() -> None:
    """``judge_many``: the same verdicts as ``judge`` row by row, in order, a timeout in the middle
    (the worker killed) and refusals before the sandbox included."""
    from ftbench.sql import SqlPair, judge_many

    endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"
    pairs = [SqlPair(GOLD, prediction, CONTEXT) for prediction in
             (GOLD, "SELECT name FROM singer WHERE age >= 20", endless, "x" * 30_000, "  ", CTE_BOMB,
              "DROP TABLE singer", "SELECT name FROM singer WHERE 20 < age")]
    together = judge_many(pairs, config=CONFIG)
    one_by_one = [judge(pair.gold, pair.prediction, pair.context, config=CONFIG) for pair in pairs]
    bomb = pairs.index(SqlPair(GOLD, CTE_BOMB, CONTEXT))  # the worker is killed on it: details may differ
    assert together[:bomb] + together[bomb + 1:] == one_by_one[:bomb] + one_by_one[bomb + 1:]
    assert [(verdict.exec_match, verdict.error) for verdict in together] == [
        (True, None), (False, None), (False, "timeout"), (False, "forbidden"), (False, "empty"),
        (False, together[bomb].error), (False, "forbidden"), (True, None)]
    assert together[bomb].error in ("timeout", "runtime")


@pytest.mark.parametrize("literal", ["'NaN'", "'inf'"])
def test_a_judge_fault_is_internal_counted_and_named(literal: str) -> None:
    """Today these literals crash database synthesis: that is the judge's fault, not the prediction's."""
    gold = f"SELECT name FROM singer WHERE age = {literal}"
    scorer = SqlScorer(CONFIG)
    row = {**_row(gold, gold=gold), "id": "nan-row"}
    scored = [{**row, **scorer.score(row)}]
    assert (scored[0]["exec_match"], scored[0]["error"]) == (False, "internal")
    assert scorer.summarize(scored)["errors"]["internal"] == 1
    assert "nan-row" in scorer.warnings(scored)[0]


def test_gold_results_are_cached_within_a_byte_budget() -> None:
    from ftbench.sql._engine import _gold_outcome

    cache = _gold_outcome.cache  # type: ignore[attr-defined]
    saved = cache.max_bytes
    cache.clear()
    cache.max_bytes = 2_000_000
    inline = JudgeConfig(sandbox="inline", n_databases=2, max_rows=100_000)
    try:
        for width in range(6):  # each gold returns ~1 MB: only the last one or two may stay
            big = (f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000) "
                   f"SELECT printf('%0{150 + width}d', x) FROM c")
            judge(big, big, CONTEXT, config=inline)
            assert cache.bytes <= cache.max_bytes
        assert cache.bytes > 0
    finally:
        cache.clear()
        cache.max_bytes = saved


def test_the_sandbox_worker_gets_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from ftbench.sql._isolation import SandboxWorker

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-never-inherited")
    worker = SandboxWorker(CONFIG.memory_mb)
    try:
        process = worker._started()
        environ = Path(f"/proc/{process.pid}/environ").read_bytes()
    finally:
        worker.close()
    assert b"OPENAI_API_KEY" not in environ and b"sk-test-secret" not in environ
    assert b"PYTHONPATH=" in environ


@pytest.mark.parametrize("answer", ["PRAGMA hard_heap_limit=1", "PRAGMA soft_heap_limit=99", CTE_BOMB,
                                    "SELECT '\ud800'", "SELECT " + "1 + " * 3_000_000 + "1", "```sql\n\ud800"])
def test_the_lm_eval_hook_scores_hostile_answers_and_never_raises(answer: str) -> None:
    before = _heap_limits()
    doc = {"answer": GOLD, "context": CONTEXT}
    started = time.monotonic()
    metrics = spider_sql_results(doc, [answer])
    elapsed = time.monotonic() - started
    assert metrics["exec_acc"] == 0.0 and set(metrics) == {"exec_acc", "exact_match", "valid_sql"}
    # The hook judges with the default configuration, on the worker the fixture started: one query
    # timeout at most (a compile bomb is killed at its deadline, or runs out of memory before it, and
    # is not compiled again), plus the kill's grace and 3 s for a loaded machine (CI runs at load 2-3,
    # where the worker's answer alone has taken 1.5 s past the timeout). That it is compiled once is
    # pinned exactly by the next test; this bound is about never hanging.
    assert elapsed < JudgeConfig().timeout_s + KILL_GRACE_S + 3.0, f"took {elapsed:.1f}s"
    assert _heap_limits() == before


def test_a_prediction_whose_compile_exhausts_memory_is_not_compiled_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deciding ``valid_sql`` compiled it once and ran out of memory: compiling it again on each database
    cost up to a query timeout more per database (a CTE bomb took 2 timeouts, past the hook's bound)."""
    from ftbench.sql import _engine
    from ftbench.sql._exec import Failure, Outcome

    compiled: list[str] = []
    real_run = _engine.run_query

    def run(connection: sqlite3.Connection, sql: str, config: JudgeConfig) -> Outcome:
        compiled.append(sql)
        return Failure("runtime", "MemoryError") if sql == CTE_BOMB else real_run(connection, sql, config)

    monkeypatch.setattr(_engine, "explain_validity", lambda sql, config: None if sql == CTE_BOMB else True)
    monkeypatch.setattr(_engine, "run_query", run)
    verdict = _engine.answer(JudgeJob(GOLD, CTE_BOMB, CONTEXT, None, CONFIG))
    assert CTE_BOMB not in compiled
    assert isinstance(verdict, Verdict)
    assert (verdict.exec_match, verdict.error, verdict.valid_sql) == (False, "runtime", False)
    assert "memory" in (verdict.detail or "")


def test_the_lm_eval_hook_survives_a_judge_that_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    import ftbench.sql

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("judge exploded")

    monkeypatch.setattr(ftbench.sql, "judge", broken)
    assert spider_sql_results({"answer": GOLD, "context": CONTEXT}, [GOLD]) == \
        {"exec_acc": 0.0, "exact_match": 0.0, "valid_sql": 0.0}


@pytest.mark.slow
def test_lm_eval_finishes_with_results_when_the_model_answers_hostile_sql(data_env: Path, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A served model whose answers attack the caller: lm-eval still writes its results, every one wrong."""
    from tests.fake_openai import FakeOpenAI
    from tests.lmeval_runs import read_outputs, run_cli

    hostile = ["PRAGMA hard_heap_limit=1", "PRAGMA soft_heap_limit=1", CTE_BOMB, "SELECT " + "1 + " * 30_000 + "1"]
    served: list[str] = []

    def reply(_body: dict[str, object]) -> str:
        served.append(hostile[len(served) % len(hostile)])
        return served[-1]

    with FakeOpenAI(chat_reply=reply) as fake:
        monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
        out = tmp_path / "eval"
        run_cli(["ftbench", "eval", "--model", "ftbench-chat-completions",
                 "--model_args", f"model=m,base_url={fake.url}/chat/completions", "--tasks", "spider_sql_chat",
                 "--apply_chat_template", "--limit", str(len(hostile)), "--log_samples", "--output_path", str(out)],
                cwd=tmp_path)
    results, samples = read_outputs(out)
    assert sorted(served) == sorted(hostile)
    scores = results["results"]["spider_sql_chat"]
    assert scores["exec_acc,none"] == 0.0 and scores["valid_sql,none"] == 0.5  # the PRAGMAs parse
    assert len(samples["spider_sql_chat"]) == len(hostile)


def test_an_interrupted_wait_never_hands_a_late_answer_to_the_next_job() -> None:
    import threading

    from ftbench.sql._isolation import worker_for

    slow = GOLD + (" AND (SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
                   " WHERE x < 1000000) SELECT x FROM c)) > 0")
    worker = worker_for(CONFIG.memory_mb)
    threading.Timer(0.2, signal.raise_signal, (signal.SIGINT,)).start()
    with pytest.raises(KeyboardInterrupt):
        judge(GOLD, slow, CONTEXT, config=JudgeConfig(timeout_s=20, n_databases=4))
    assert worker._process is None  # the busy worker was ended, not left with a reply in its pipe
    verdict = judge(GOLD, "SELECT name FROM singer", CONTEXT, config=CONFIG)
    assert (verdict.exec_match, verdict.error) == (False, None), verdict


def test_a_stream_of_answers_left_early_never_hands_a_late_answer_to_the_next_job() -> None:
    """A caller that stops reading answers as they come (its consumer was interrupted) ends the worker, which
    still had answers on their way; the next job gets its own answer. A stream read to its end keeps the worker."""
    from ftbench.sql._isolation import SandboxWorker
    from ftbench.sql._types import JudgeJob, Verdict

    right, wrong = (JudgeJob(GOLD, query, CONTEXT, None, CONFIG) for query in (GOLD, "SELECT name FROM singer"))
    worker = SandboxWorker(CONFIG.memory_mb)
    try:
        assert all(isinstance(reply, Verdict) and reply.exec_match for reply in worker.answers([right, right]))
        process = worker._process
        stream = worker.answers([right, right, right, right])
        first = next(stream)
        assert worker._process is process
        stream.close()
        assert worker._process is None
        (reply,) = worker.ask_many([wrong])
    finally:
        worker.close()
    assert isinstance(first, Verdict) and first.exec_match
    assert isinstance(reply, Verdict) and (reply.exec_match, reply.error) == (False, None), reply


def test_a_second_stream_in_the_same_thread_is_an_error_not_a_deadlock() -> None:
    from ftbench.sql._isolation import SandboxWorker
    from ftbench.sql._types import JudgeJob

    right = JudgeJob(GOLD, GOLD, CONTEXT, None, CONFIG)
    worker = SandboxWorker(CONFIG.memory_mb)
    try:
        stream = worker.answers([right, right])
        next(stream)
        with pytest.raises(SandboxError, match="unfinished stream"):
            worker.ask_many([right])
        assert len(list(stream)) == 1  # the first stream is unharmed
    finally:
        worker.close()


def test_a_warmed_sandbox_is_up_before_the_first_job_and_a_failed_start_is_left_to_that_job(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo starts the leaderboard's sandbox ahead of its error breakdown, on a free core."""
    import sys

    from ftbench.sql._isolation import SandboxWorker, start_worker, worker_for

    memory_mb = CONFIG.memory_mb + 1  # a worker of its own
    start_worker(memory_mb).join(timeout=60)
    worker = worker_for(memory_mb)
    try:
        process = worker._process
        assert process is not None and process.poll() is None, "running before any job was asked"
        reply = worker.ask(JudgeJob(GOLD, GOLD, CONTEXT, None, CONFIG))
        assert isinstance(reply, Verdict) and reply.exec_match
        assert worker._process is process, "the job went to the warmed worker"
    finally:
        worker.close()
    broken = SandboxWorker(memory_mb)
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    broken.warm()  # no error here: nothing asked for a judgement yet
    assert broken._process is None
    with pytest.raises(SandboxError, match="cannot start the SQL sandbox worker"):
        broken.ask(JudgeJob(GOLD, GOLD, CONTEXT, None, CONFIG))

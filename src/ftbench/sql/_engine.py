"""One judgement, start to finish: plan and draw the databases, run gold and prediction on each, compare.

This runs inside the sandbox worker (or inline); it caches per process what several predictions of
one example share: the plan, the databases, and the gold's results on them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from ftbench.sql._cache import bytes_cached
from ftbench.sql._compare import KeyedRows, ordered_within_ties, same_result
from ftbench.sql._exec import (
    Failure,
    Outcome,
    Rows,
    clean_statement,
    explain_validity,
    open_read_only,
    open_serialized,
    run_query,
    screen,
)
from ftbench.sql._facts import has_top_level_order, keyed_order_query
from ftbench.sql._synth import DataPlan, build_database, make_plan
from ftbench.sql._types import JudgeConfig, JudgeJob, ValidityJob, Verdict

#: Bytes of gold results a worker keeps (the gold is the same for every prediction of an example).
GOLD_CACHE_BYTES = 64_000_000


@dataclass(frozen=True)
class Target:
    """A database to run on: the ``index``-th synthesized one of ``plan``, or a real file."""

    label: str
    plan: DataPlan | None = None
    index: int = 0
    dense: bool = False
    path: Path | None = None


def answer(job: JudgeJob | ValidityJob) -> Verdict | bool | None:
    """What the sandbox worker (or inline mode) replies to a job; never raises."""
    if isinstance(job, ValidityJob):
        return explain_validity(job.sql, job.config)
    valid = explain_validity(job.prediction, job.config) is True
    refusal = screen(job.prediction)
    verdict = Verdict(False, refusal.kind, refusal.detail) if refusal is not None else evaluate(job)
    return replace(verdict, valid_sql=valid)


def evaluate(job: JudgeJob) -> Verdict:
    """The verdict for one prediction. What the inputs can cause (sqlite errors, exhausted recursion or
    memory) is a ``runtime`` verdict; any other exception is a fault of the judge: ``internal``."""
    try:
        return _evaluate(job)
    except (RecursionError, MemoryError, sqlite3.Error) as err:
        return Verdict(False, "runtime", f"judge failed: {type(err).__name__}: {str(err)[:200]}")
    except Exception as err:
        return Verdict(False, "internal", f"judge error: {type(err).__name__}: {str(err)[:200]}")



def _evaluate(job: JudgeJob) -> Verdict:
    config = job.config
    plan = make_plan(job.context, job.gold, job.prediction) if _uses_mock(job) else None
    targets = list(_real_targets(job)) if config.db_mode != "mock" else []
    if plan is not None:
        targets = _mock_targets(plan, job) + targets
    return _compare_on(targets, job, has_top_level_order(job.gold))


def _uses_mock(job: JudgeJob) -> bool:
    """Mock databases are used unless the mode is ``real`` and this row has real databases."""
    return job.config.db_mode != "real" or not any(_real_targets(job))


def _mock_targets(plan: DataPlan, job: JudgeJob) -> list[Target]:
    """The configured number of databases, plus as many again if the gold is empty on all of them
    (a gold with several rare conditions); still deterministic for the seed."""
    count = job.config.n_databases
    first = [Target(f"mock #{index}", plan, index) for index in range(count)]
    for target in first:
        outcome = _gold_outcome(target, job.gold, job.config)
        if _has_rows(outcome) or _timed_out(outcome):  # a gold that overruns once is not run again
            return first
    return first + [Target(f"mock #{index} (dense)", plan, index, dense=True) for index in range(count, 2 * count)]


def _real_targets(job: JudgeJob) -> Iterator[Target]:
    db_dir, db_id = job.config.db_dir, job.db_id
    if db_dir is None or not db_id or Path(db_id).name != db_id or db_id in (".", ".."):
        return  # no real database, or a db_id that tries to leave the folder
    for path in sorted((db_dir / db_id).glob("*.sqlite")):
        yield Target(f"real {path.name}", path=path)


def _compare_on(targets: list[Target], job: JudgeJob, ordered: bool) -> Verdict:
    compared, non_empty, gold_failure = 0, False, None
    same_text = clean_statement(job.gold) == clean_statement(job.prediction)
    for target in targets:
        gold = _gold_outcome(target, job.gold, job.config)
        if _timed_out(gold):
            return Verdict(False, "runtime", "the gold query ran past the time limit", compared)
        if isinstance(gold, Failure):
            gold_failure = gold
            continue
        predicted = gold if same_text else _run(target, job.prediction, job.config)
        if isinstance(predicted, Failure):
            return Verdict(False, predicted.kind, predicted.detail, compared)
        compared += 1
        if not _agree(target, job, gold, predicted, ordered):
            return Verdict(False, None, f"results differ on {target.label}", compared)
        non_empty = non_empty or bool(gold.rows)
    if compared == 0:
        detail = gold_failure.detail if gold_failure else "no database to run on"
        return Verdict(False, "runtime", f"the gold query failed: {detail}", 0)
    if not non_empty:
        return Verdict(False, "empty", "the gold returned no rows on any database", compared)
    return Verdict(True, None, None, compared)


def _agree(target: Target, job: JudgeJob, gold: Rows, predicted: Rows, ordered: bool) -> bool:
    if same_result(gold, predicted, ordered):
        return True
    if not ordered or len(gold.rows) != len(predicted.rows):
        return False
    # Ties in the sort keys may come in any order, and a LIMIT through a tie may keep any tied row.
    keyed = _keyed_gold(target, job.gold, job.config)
    return keyed is not None and ordered_within_ties(keyed, gold, predicted)


def _has_rows(outcome: Outcome) -> bool:
    return isinstance(outcome, Rows) and bool(outcome.rows)


def _timed_out(outcome: Outcome) -> bool:
    return isinstance(outcome, Failure) and outcome.kind == "timeout"


def _outcome_bytes(outcome: Outcome | KeyedRows | None) -> int:
    rows = outcome.rows if isinstance(outcome, Rows | KeyedRows) else ()
    return 200 + sum(64 + sum(_value_bytes(value) for value in row) for row in rows)


def _value_bytes(value: object) -> int:
    return 50 + len(value) if isinstance(value, str | bytes) else 32


@bytes_cached(GOLD_CACHE_BYTES, _outcome_bytes)
def _gold_outcome(target: Target, gold: str, config: JudgeConfig) -> Outcome:
    return _run(target, gold, config)


@bytes_cached(GOLD_CACHE_BYTES // 4, _outcome_bytes)
def _keyed_gold(target: Target, gold: str, config: JudgeConfig) -> KeyedRows | None:
    query = keyed_order_query(gold)
    outcome = _run(target, query, config) if query is not None else None
    return KeyedRows(outcome.rows, outcome.width) if isinstance(outcome, Rows) else None


def _run(target: Target, sql: str, config: JudgeConfig) -> Outcome:
    try:
        connection = _open(target, config)
    except sqlite3.Error as err:  # e.g. a file in the db folder that is not a database
        return Failure("runtime", f"cannot open {target.label}: {err}")
    try:
        return run_query(connection, sql, config)
    finally:
        connection.close()


def _open(target: Target, config: JudgeConfig) -> sqlite3.Connection:
    if target.path is not None:
        return open_read_only(target.path, config)
    if target.plan is None:
        raise ValueError(f"target {target.label} has neither a plan nor a path")
    return open_serialized(build_database(target.plan, config.seed, target.index, target.dense), config)

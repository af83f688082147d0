"""One judgement, start to finish: choose the databases of the judge mode, run gold and prediction on
each, compare.

This runs inside the sandbox worker (or inline); it caches per process what several predictions of
one example share: the plan, the databases, and the gold's results on them.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import chain
from pathlib import Path

from ftbench.sql._cache import bytes_cached
from ftbench.sql._compare import KeyedRows, normalized, ordered_within_ties, same_result
from ftbench.sql._exec import (
    Failure,
    Outcome,
    Rows,
    authorize,
    clean_statement,
    explain_validity,
    harden,
    open_read_only,
    open_serialized,
    run_query,
    screen,
)
from ftbench.sql._facts import keyed_order_query
from ftbench.sql._modes import effective_mode as mode_for
from ftbench.sql._modes import real_paths
from ftbench.sql._suite import SuitePlan, build_fuzzed, suite_plan
from ftbench.sql._synth import DataPlan, drawn_rows, empty_tables, load_rows, make_plan, table_statements
from ftbench.sql._text import has_top_level_limit, has_top_level_order
from ftbench.sql._types import RANKING_DETAIL, TIES_DETAIL, JudgeConfig, JudgeJob, JudgeMode, ValidityJob, Verdict

#: Synthesized databases on which the gold must return rows before the dense ones are left out.
MIN_WITNESSES = 2
#: Bytes of gold results a worker keeps (the gold is the same for every prediction of an example).
GOLD_CACHE_BYTES = 64_000_000
_EQUAL, _TIED, _OTHER_RANKING = "equal", "tied", "other ranking"


@dataclass(frozen=True)
class Target:
    """A database to run on: the ``index``-th synthesized one of ``plan`` (context mode), the
    ``index``-th fuzzed one of ``suite`` (test-suite mode), or a real file."""

    label: str
    plan: DataPlan | None = None
    index: int = 0
    dense: bool = False
    path: Path | None = None
    suite: SuitePlan | None = None


def answer(job: JudgeJob | ValidityJob) -> Verdict | bool | None:
    """What the sandbox worker (or inline mode) replies to a job; never raises."""
    if isinstance(job, ValidityJob):
        return explain_validity(job.sql, job.config)
    validity = explain_validity(job.prediction, job.config)
    refusal = screen(job.prediction)
    if refusal is None and validity is None:
        # Compiling it exhausted sqlite's memory (a compile bomb, which no progress handler can stop):
        # running it means compiling it again, on every database, each time up to the query timeout.
        refusal = Failure("runtime", "compiling the prediction exhausted sqlite's memory or size limits")
    if refusal is not None:
        return Verdict(False, refusal.kind, refusal.detail, valid_sql=validity is True, judge=effective_mode(job))
    return evaluate(job, valid_sql=validity is True)


def evaluate(job: JudgeJob, valid_sql: bool = False) -> Verdict:
    """The verdict for one prediction, the mode that judged it and ``valid_sql``. What the inputs can
    cause (sqlite errors, exhausted recursion or memory) is a ``runtime`` verdict; any other exception
    is a fault of the judge: ``internal``."""
    mode = effective_mode(job)
    try:
        verdict = _evaluate(job, mode)
    except (RecursionError, MemoryError, sqlite3.Error) as err:
        verdict = Verdict(False, "runtime", f"judge failed: {type(err).__name__}: {str(err)[:200]}")
    except Exception as err:
        verdict = Verdict(False, "internal", f"judge error: {type(err).__name__}: {str(err)[:200]}")
    return replace(verdict, judge=mode, valid_sql=valid_sql)


def effective_mode(job: JudgeJob) -> JudgeMode:
    return mode_for(job.config, job.db_id)


def _evaluate(job: JudgeJob, mode: JudgeMode) -> Verdict:
    ordered = has_top_level_order(job.gold)
    if mode == "context":
        plan = make_plan(job.context, job.gold, job.prediction)
        return _compare_on(_mock_targets(plan, job), job, ordered, need_rows=True)
    real = [Target(f"real {path.name}", path=path) for path in _real_paths(job)]
    if mode == "real-db":
        return _compare_on(real, job, ordered, need_rows=False)
    suite = suite_plan(real[0].path or Path(), job.gold, job.prediction)
    fuzzed = [Target(f"fuzzed #{index}", index=index, suite=suite) for index in range(job.config.n_fuzzed)]
    return _compare_on(real + fuzzed, job, ordered, need_rows=False)


def _mock_targets(plan: DataPlan, job: JudgeJob) -> Iterator[Target]:
    """The configured number of databases, then as many dense ones again (literal-heavy, so filters keep
    rows) if the gold returned rows on fewer than :data:`MIN_WITNESSES` of them (a gold with several rare
    conditions: one database's rows are too little to judge by); still deterministic for the seed. Lazy:
    the dense ones are decided, and built, only for a prediction that agreed on all the others."""
    count = job.config.n_databases
    first = [Target(f"mock #{index}", plan, index) for index in range(count)]
    yield from first
    witnesses = sum(_has_rows(_gold_outcome(target, job.gold, job.config)) for target in first)  # cached
    if witnesses < MIN_WITNESSES:
        yield from (Target(f"mock #{index} (dense)", plan, index, dense=True) for index in range(count, 2 * count))


def _real_paths(job: JudgeJob) -> tuple[Path, ...]:
    return real_paths(job.config, job.db_id)


def _compare_on(targets: Iterable[Target], job: JudgeJob, ordered: bool, need_rows: bool) -> Verdict:
    """Correct when the results agree on every target. With ``need_rows`` (synthesized databases
    only), the gold must also return rows on one of them, or no database witnessed anything; an
    exact copy of the gold is correct regardless."""
    compared, non_empty, gold_failure, tied = 0, False, None, False
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
        agreement = _agree(target, job, gold, predicted, ordered)
        if agreement == _OTHER_RANKING:
            return Verdict(False, None, f"{RANKING_DETAIL} on {target.label}", compared)
        if not agreement:
            return Verdict(False, None, f"results differ on {target.label}", compared)
        non_empty, tied = non_empty or bool(gold.rows), tied or agreement == _TIED
    if compared == 0:
        detail = gold_failure.detail if gold_failure else "no database to run on"
        return Verdict(False, "runtime", f"the gold query failed: {detail}", 0)
    if need_rows and not non_empty and not same_text:
        return Verdict(False, "empty", "the gold returned no rows on any database", compared)
    return Verdict(True, None, TIES_DETAIL if tied else None, compared)


def _agree(target: Target, job: JudgeJob, gold: Rows, predicted: Rows, ordered: bool) -> str:
    """``_EQUAL``, ``_TIED`` (equal only up to ties in the gold's sort keys), ``_OTHER_RANKING`` (the
    same rows, or rows of one tie, picked by other sort values), or "" (different)."""
    if same_result(gold, predicted, ordered):
        # A gold that keeps its top rows (ORDER BY ... LIMIT): a few small synthesized databases seldom
        # tell two rankings apart by their top rows, so in context mode the prediction must also pick them
        # by the gold's sort values. The real and fuzzed databases are compared by results alone, as
        # test-suite-sql-eval compares them.
        picks = target.plan is not None and ordered and bool(gold.rows) and has_top_level_limit(job.gold)
        return _OTHER_RANKING if picks and not _ranks_by_gold_values(target, job, gold, predicted) else _EQUAL
    if not ordered or len(gold.rows) != len(predicted.rows):
        return ""
    if not has_top_level_limit(job.gold) and not same_result(gold, predicted, ordered=False):
        return ""  # without a LIMIT, ties only reorder rows: a different bag of rows is wrong
    # Ties in the sort keys may come in any order, and a LIMIT through a tie may keep any tied row; but
    # only ties of the gold's own sort values: a prediction that ranks by other values and lands in the
    # gold's tie group by chance is not breaking a tie.
    keyed = _keyed_gold(target, job.gold, job.config)
    if keyed is None or not ordered_within_ties(keyed, gold, predicted):
        return ""
    return _TIED if _ranks_by_gold_values(target, job, gold, predicted) else _OTHER_RANKING


def _ranks_by_gold_values(target: Target, job: JudgeJob, gold: Rows, predicted: Rows) -> bool:
    """Do the prediction's rows carry the gold's sort values, in order? Both queries run again with their
    ORDER BY terms as extra columns and no LIMIT: the first rows of each carry the sort values of the rows
    it returned. Compared on the terms both have (a prediction may add tie-breakers). True when either
    cannot be rewritten so (no ORDER BY at the top, DISTINCT, a set operation): nothing to compare."""
    keyed, own = _keyed_gold(target, job.gold, job.config), _keyed(target, job.prediction, job.config)
    if keyed is None or own is None:
        return True
    count, terms = len(gold.rows), min(keyed.width - gold.width, own.width - predicted.width)
    return normalized([row[gold.width:gold.width + terms] for row in keyed.rows[:count]]) == \
        normalized([row[predicted.width:predicted.width + terms] for row in own.rows[:count]])


def _has_rows(outcome: Outcome) -> bool:
    return isinstance(outcome, Rows) and bool(outcome.rows)


def _timed_out(outcome: Outcome) -> bool:
    return isinstance(outcome, Failure) and outcome.kind == "timeout"


def _outcome_bytes(outcome: Outcome | KeyedRows | None) -> int:
    """About the memory a result holds: 200 bytes, 64 a row, 32 a value, 50 and its length a text or blob
    (counted without a Python call per value: it runs on every result the caches keep)."""
    rows = outcome.rows if isinstance(outcome, Rows | KeyedRows) else ()
    values = list(chain.from_iterable(rows))
    texts = [value for value in values if isinstance(value, str | bytes)]
    return 200 + 64 * len(rows) + 32 * len(values) + 18 * len(texts) + sum(map(len, texts))


@bytes_cached(GOLD_CACHE_BYTES, _outcome_bytes)
def _gold_outcome(target: Target, gold: str, config: JudgeConfig) -> Outcome:
    return _run(target, gold, config)


@bytes_cached(GOLD_CACHE_BYTES // 4, _outcome_bytes)
def _keyed_gold(target: Target, gold: str, config: JudgeConfig) -> KeyedRows | None:
    return _keyed(target, gold, config)


def _keyed(target: Target, sql: str, config: JudgeConfig) -> KeyedRows | None:
    """``sql``'s result without its LIMIT, each row followed by its sort values (see :func:`keyed_order_query`)."""
    query = keyed_order_query(sql)
    outcome = _run(target, query, config) if query is not None else None
    return KeyedRows(outcome.rows, outcome.width) if isinstance(outcome, Rows) else None


def _run(target: Target, sql: str, config: JudgeConfig) -> Outcome:
    try:
        connection = _open_cached(target, config) if target.plan is None else _loaded(target, config)
    except sqlite3.Error as err:  # e.g. a file in the db folder that is not a database
        return Failure("runtime", f"cannot open {target.label}: {err}")
    return run_query(connection, sql, config)


class _Slot:
    """One connection for the synthesized databases of one set of tables, which take turns in it: their
    rows are replaced, the tables stay, and so do the statements sqlite prepared on them (preparing a
    Spider query costs several times running it on these few rows, and a new connection reads its tables'
    definitions again). The authorizer lets only reads through, but for the rows this class writes."""

    def __init__(self, empty: bytes, config: JudgeConfig) -> None:
        self.writing = False
        self.loaded: tuple[DataPlan, int, int, bool] | None = None
        connection = sqlite3.connect(":memory:")
        connection.deserialize(empty)
        self.connection = harden(connection, config)
        self.connection.set_authorizer(self._authorize)

    def _authorize(self, action: int, *names: str | None) -> int:
        return sqlite3.SQLITE_OK if self.writing else authorize(action, *names)

    def load(self, target: Target, config: JudgeConfig) -> sqlite3.Connection:
        assert target.plan is not None
        key = (target.plan, config.seed, target.index, target.dense)
        if self.loaded != key:
            self.loaded, self.writing = None, True
            try:
                load_rows(self.connection, target.plan, drawn_rows(*key))
            except BaseException:
                self.connection.rollback()
                raise
            finally:
                self.writing = False
            self.loaded = key
        return self.connection


#: Connections kept for synthesized databases, one per set of tables (the plans of recent examples).
_SLOTS: OrderedDict[tuple[tuple[str, ...], JudgeConfig], _Slot] = OrderedDict()
_MAX_SLOTS = 16


def _loaded(target: Target, config: JudgeConfig) -> sqlite3.Connection:
    """A connection holding ``target``'s synthesized database (and nothing a prediction could have changed)."""
    assert target.plan is not None
    statements = table_statements(target.plan)
    slot = _SLOTS.get((statements, config))
    if slot is None:
        slot = _SLOTS[(statements, config)] = _Slot(empty_tables(statements), config)
        while len(_SLOTS) > _MAX_SLOTS:
            _SLOTS.popitem(last=False)
    else:
        _SLOTS.move_to_end((statements, config))
    return slot.load(target, config)


@lru_cache(maxsize=64)
def _open_cached(target: Target, config: JudgeConfig) -> sqlite3.Connection:
    """Real and fuzzed databases' connections stay open for the next query on the same database: opening
    costs more than most Spider queries. Reuse is safe because nothing can change them: real files are
    immutable and read-only, and the authorizer lets only reads through (no writes, no TEMP tables, no
    PRAGMA)."""
    return _open(target, config)


def _open(target: Target, config: JudgeConfig) -> sqlite3.Connection:
    if target.path is not None:
        return open_read_only(target.path, config)
    if target.suite is not None:
        return open_serialized(build_fuzzed(target.suite, config.seed, target.index), config)
    raise ValueError(f"target {target.label} has neither a path nor a suite (synthesized ones: _loaded)")

"""The judge's public value types: its configuration and its verdict."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

#: Why a prediction was judged wrong without a comparison of results.
#: ``syntax``: not one parseable statement; ``schema``: unknown table, column or function;
#: ``timeout``: ran past ``timeout_s``; ``forbidden``: refused by the sandbox (writes, ATTACH, PRAGMA,
#: extensions, several statements, oversized text); ``runtime``: failed while running (a cap was hit,
#: a type error), or the gold itself failed everywhere; ``empty``: nothing to compare (a blank
#: prediction, or the gold returned no rows on any database, so no database could witness a match);
#: ``internal``: the judge itself failed on this row (its worker died twice, or its code raised), so the
#: verdict says nothing about the prediction; counted and named apart, never silently "wrong".
ErrorKind = Literal["syntax", "schema", "timeout", "forbidden", "runtime", "empty", "internal"]
ERROR_KINDS: tuple[ErrorKind, ...] = ("syntax", "schema", "timeout", "forbidden", "runtime", "empty", "internal")

#: Which databases decide a verdict. ``context``: databases synthesized from the ``CREATE TABLE``
#: context, with keys and references inferred as a reader of the context would; ``test-suite``: the
#: row's real database plus fuzzed databases that keep its schema (types, keys, UNIQUE, NOT NULL,
#: foreign keys), the official Spider metric; ``real-db``: the real database alone, the single-database
#: convention most papers report. Rows without a real database are judged in ``context`` mode.
JudgeMode = Literal["context", "test-suite", "real-db"]
JUDGE_MODES: tuple[JudgeMode, ...] = ("context", "test-suite", "real-db")
SandboxMode = Literal["process", "inline"]


@dataclass(frozen=True)
class JudgeConfig:
    """How databases are made and how hard the sandbox is. Every field has a usable default."""

    #: Synthesized databases per example (more rarely ever changes a verdict, and costs linear time).
    n_databases: int = 8
    #: Seed of the synthesized databases: same seed, same databases, same verdicts.
    seed: int = 0
    #: Wall-clock limit of one query, enforced inside sqlite and, failing that, by killing the worker.
    timeout_s: float = 2.0
    #: Spider-layout folder ``<db_dir>/<db_id>/*.sqlite`` for the ``test-suite`` and ``real-db`` modes.
    db_dir: Path | None = None
    #: Which databases decide (see :data:`JudgeMode`).
    judge: JudgeMode = "context"
    #: Fuzzed databases per real database in ``test-suite`` mode.
    n_fuzzed: int = 24
    #: Result rows a query may return before it counts as a runtime error.
    max_rows: int = 10_000
    #: Longest string or blob a query may build (sqlite's SQLITE_LIMIT_LENGTH), in bytes.
    max_value_bytes: int = 1_000_000
    #: Approximate size of a whole result held in memory, in bytes.
    max_result_bytes: int = 32_000_000
    #: Heap the sandbox worker's sqlite may use (``PRAGMA hard_heap_limit``), in MiB.
    memory_mb: int = 512
    #: Longest prediction or gold accepted, in characters; longer ones are refused without parsing.
    max_sql_chars: int = 20_000
    #: Longest ``CREATE TABLE`` context accepted, in characters; longer ones are refused without parsing.
    max_context_chars: int = 200_000
    #: Time allowed for one whole judgement (parsing, database synthesis and every query) before the
    #: worker is killed; the per-row time bound.
    build_timeout_s: float = 20.0
    #: ``process``: run in a persistent worker that is killed when it overruns; ``inline``: in this
    #: process (progress-handler timeouts only; for debugging and profiling).
    sandbox: SandboxMode = "process"

    def __post_init__(self) -> None:
        # Resolved once, against the caller's working directory: the worker runs in another folder.
        if self.db_dir is not None and not self.db_dir.is_absolute():
            object.__setattr__(self, "db_dir", self.db_dir.resolve())


#: The detail of a verdict that holds only because rows tied on the gold's sort keys may come in any order.
TIES_DETAIL = "equal up to ties in the gold's ORDER BY"
#: The detail of a verdict refused because the prediction keeps its top rows by other sort values than the gold's.
RANKING_DETAIL = "the prediction ranks rows by other values than the gold"


@dataclass(frozen=True)
class Verdict:
    """The judge's answer for one prediction."""

    #: True when the prediction gives the gold's result on every database and the gold is non-empty on one.
    exec_match: bool
    #: Why the prediction is wrong without a result comparison (None when compared, right or wrong).
    error: ErrorKind | None = None
    #: Human-readable detail: the sqlite message, or which database told the results apart.
    detail: str | None = None
    #: Databases both queries ran on (synthesized plus real).
    databases: int = 0
    #: Whether the prediction parses as one SQLite statement (decided in the sandbox, like the rest).
    valid_sql: bool = False
    #: The mode that judged this row (``context`` when the row has no real database).
    judge: JudgeMode = "context"


@dataclass(frozen=True)
class JudgeJob:
    """Everything one judgement needs; travels to the sandbox worker."""

    gold: str
    prediction: str
    context: str
    db_id: str | None
    config: JudgeConfig


@dataclass(frozen=True)
class ValidityJob:
    """Does ``sql`` parse as one statement? Travels to the sandbox worker, like a judgement."""

    sql: str
    config: JudgeConfig

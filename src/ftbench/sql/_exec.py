"""Running one query on one database, sandboxed: read-only, no ATTACH, no extensions, no PRAGMA,
a timeout that interrupts sqlite itself, and caps on rows, value length and result size.

Every failure comes back as a :class:`Failure` with its kind; nothing raises.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from pathlib import Path

from ftbench.sql._types import ErrorKind, JudgeConfig

Row = tuple[object, ...]

# Authorizer actions a SELECT needs; everything else (writes, ATTACH, PRAGMA, transactions, VACUUM INTO,
# which sqlite authorizes as an ATTACH) is denied.
_ALLOWED_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
_DENIED_FUNCTIONS = {"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit", "zipfile"}
_STATEMENT_STARTS = {"SELECT", "WITH", "VALUES"}
_OTHER_STATEMENTS = {"ALTER", "ANALYZE", "ATTACH", "BEGIN", "COMMIT", "CREATE", "DELETE", "DETACH", "DROP", "END",
                     "EXPLAIN", "INSERT", "PRAGMA", "REINDEX", "RELEASE", "REPLACE", "ROLLBACK", "SAVEPOINT",
                     "UPDATE", "UPSERT", "VACUUM"}
_LEADING_NOISE = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*", re.DOTALL)
_SCHEMA_ERRORS = ("no such table", "no such column", "no such function", "ambiguous column", "no such collation",
                  "no such module", "unknown database", "no tables specified")
_SYNTAX_ERRORS = ("syntax error", "incomplete input", "unrecognized token", "near \"")
_FORBIDDEN_ERRORS = ("not authorized", "too many attached", "one statement at a time", "readonly")
_PROGRESS_STEPS = 1000
_FETCH_BATCH = 256


@dataclass(frozen=True)
class Rows:
    """A query's result: its rows and its number of columns."""

    rows: tuple[Row, ...]
    width: int


@dataclass(frozen=True)
class Failure:
    """Why a query did not produce a result."""

    kind: ErrorKind
    detail: str


Outcome = Rows | Failure

#: Called with the absolute ``time.monotonic()`` deadline before each query, and with 0.0 after it.
#: The sandbox worker points it at memory its parent watches, so a query that sqlite cannot interrupt
#: still ends (the parent kills the worker).
DeadlineHook = Callable[[float], None]
_deadline_hook: DeadlineHook = lambda deadline: None  # noqa: E731


def set_deadline_hook(hook: DeadlineHook) -> None:
    global _deadline_hook
    _deadline_hook = hook


def open_serialized(data: bytes, config: JudgeConfig) -> sqlite3.Connection:
    """A fresh in-memory copy of a synthesized database, hardened."""
    connection = sqlite3.connect(":memory:")
    connection.deserialize(data)
    return harden(connection, config)


def open_read_only(path: Path, config: JudgeConfig) -> sqlite3.Connection:
    """A real database file, opened read-only and immutable (no journal, no lock files), hardened."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    return harden(connection, config)


def harden(connection: sqlite3.Connection, config: JudgeConfig) -> sqlite3.Connection:
    connection.execute("PRAGMA temp_store = MEMORY")  # sorts and temp tables never touch the disk
    if hasattr(connection, "enable_load_extension"):
        connection.enable_load_extension(False)
    connection.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, config.max_value_bytes)
    connection.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, max(4 * config.max_sql_chars, 100_000))
    connection.setlimit(sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 1000)  # LIKE backtracking is O(n^k)
    connection.set_authorizer(authorize)
    return connection


def authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    if action not in _ALLOWED_ACTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def explain_validity(sql: str, config: JudgeConfig) -> bool | None:
    """Does ``sql`` parse as exactly one SQLite statement (tables and columns need not exist)? None when
    that cannot be decided (compiling it ran out of memory). Sandbox side only: it compiles the text.

    ``EXPLAIN`` compiles without running anything, on an empty hardened in-memory database: a grammar
    error means invalid; a name-resolution or authorization error means the statement parsed (the
    authorizer stops a PRAGMA before it takes effect).
    """
    statement = sql.strip()
    if not statement or "\x00" in statement or len(statement) > config.max_sql_chars:
        return False
    connection = _validity_connection(config)
    _deadline_hook(time.monotonic() + config.timeout_s)  # a compile bomb cannot be interrupted: killed
    try:
        connection.execute(f"EXPLAIN {statement}")
    except sqlite3.ProgrammingError:  # more than one statement
        return False
    except sqlite3.Error as err:
        message = str(err).lower()
        if "out of memory" in message or "too big" in message:
            return None
        return any(marker in message for marker in (*_SCHEMA_ERRORS, "not authorized"))
    except (MemoryError, RecursionError):
        return None
    except Exception:
        return False
    finally:
        _deadline_hook(0.0)
    return True


@lru_cache(maxsize=4)
def _validity_connection(config: JudgeConfig) -> sqlite3.Connection:
    """One empty hardened database per configuration, kept: ``EXPLAIN`` only compiles, so nothing a
    statement says can change it, and opening one per row cost more than compiling the row."""
    return harden(sqlite3.connect(":memory:"), config)


def clean_statement(sql: str) -> str:
    """Drop surrounding blanks and trailing semicolons: ``SELECT 1;`` is one statement."""
    return sql.strip().rstrip(";").rstrip()


@lru_cache(maxsize=256)  # the gold is screened before each of its databases
def screen(sql: str) -> Failure | None:
    """Refusals decided from the text alone: only queries (SELECT, WITH, VALUES) may run."""
    if "\x00" in sql:
        return Failure("syntax", "NUL byte in the query")
    keyword = re.match(r"[A-Za-z]+", _LEADING_NOISE.sub("", sql, count=1))
    word = keyword.group().upper() if keyword is not None else ""
    if word in _OTHER_STATEMENTS:
        return Failure("forbidden", f"only queries may run, not {word}")
    if word not in _STATEMENT_STARTS:
        return Failure("syntax", f"not an SQL query (starts with {sql.strip()[:20]!r})")
    return None


def run_query(connection: sqlite3.Connection, sql: str, config: JudgeConfig) -> Outcome:
    """Run ``sql`` under the timeout and caps; never raises."""
    refusal = screen(sql)
    if refusal is not None:
        return refusal
    deadline = time.monotonic() + config.timeout_s
    connection.set_progress_handler(lambda: time.monotonic() > deadline, _PROGRESS_STEPS)
    _deadline_hook(deadline)
    try:
        return _fetch(connection.execute(clean_statement(sql)), config)
    except Exception as err:  # hostile input may raise anything; each becomes a verdict
        return classify(err)
    finally:
        _deadline_hook(0.0)
        connection.set_progress_handler(None, 0)


def _fetch(cursor: sqlite3.Cursor, config: JudgeConfig) -> Outcome:
    rows: list[Row] = []
    size = 0
    while batch := cursor.fetchmany(_FETCH_BATCH):
        rows.extend(batch)
        size += 8 * len(batch) * len(batch[0]) + sum([len(value) for value in chain.from_iterable(batch)
                                                      if isinstance(value, str | bytes)])
        if len(rows) > config.max_rows:
            return Failure("runtime", f"more than {config.max_rows} result rows")
        if size > config.max_result_bytes:
            return Failure("runtime", f"result larger than {config.max_result_bytes} bytes")
    return Rows(tuple(rows), len(cursor.description or ()))


def classify(err: BaseException) -> Failure:
    """The error kind of an exception raised while preparing or running a query."""
    message = str(err)
    lowered = message.lower()
    if "interrupted" in lowered:
        return Failure("timeout", "interrupted after the time limit")
    for kind, markers in (("forbidden", _FORBIDDEN_ERRORS), ("schema", _SCHEMA_ERRORS), ("syntax", _SYNTAX_ERRORS)):
        if any(marker in lowered for marker in markers):
            return Failure(kind, message[:300])  # type: ignore[arg-type]
    if isinstance(err, ValueError) and "null character" in lowered:
        return Failure("syntax", "NUL byte in the query")
    return Failure("runtime", f"{type(err).__name__}: {message[:300]}")

"""Text-level SQL checks: the study's exact match and whether the outermost query sorts or cuts its rows (pure
scans, no parser), and "parses as one statement" (decided in the sandbox worker, like everything else that hands
untrusted text to SQLite). Importing this module (and :mod:`ftbench.sql`) loads neither sqlglot nor the engine:
processes that only hand rows to the worker stay small."""

from __future__ import annotations

import re
from collections.abc import Generator, Sequence
from functools import lru_cache

from ftbench.sql._types import JudgeConfig, JudgeJob, ValidityJob

_DEFAULT = JudgeConfig()


def exact_match(gold: str, prediction: str) -> bool:
    """The study's character-level exact match, after trimming surrounding whitespace."""
    return gold.strip() == prediction.strip()


def is_valid_sql(sql: str, config: JudgeConfig | None = None) -> bool:
    """True when ``sql`` parses as exactly one SQLite statement (tables and columns need not exist)."""
    return sql_validity(sql, config) is True


def sql_validity(sql: str, config: JudgeConfig | None = None) -> bool | None:
    """As :func:`is_valid_sql`, with None when it could not be decided (compiling overran or ran out
    of memory). Length and encoding are checked here; the text is compiled only in the sandbox."""
    config = config or _DEFAULT
    if not sql.strip() or len(sql) > config.max_sql_chars or not encodable(sql):
        return False
    reply = sandboxed(ValidityJob(sql, config))
    return reply if isinstance(reply, bool) else None


def encodable(text: str) -> bool:
    """False for text with lone UTF-16 surrogates (valid JSON, but no SQLite or UTF-8 file takes them)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def sandboxed(job: JudgeJob | ValidityJob) -> object:
    """The sandbox's reply to a job (inline when the config says so); :class:`Lost` when its worker
    ended without an answer."""
    return sandboxed_many([job], job.config)[0]


def sandboxed_many(jobs: Sequence[JudgeJob | ValidityJob], config: JudgeConfig) -> list[object]:
    """:func:`sandboxed` for several jobs of one configuration, sent to the worker together."""
    return list(sandboxed_stream(jobs, config))


def sandboxed_stream(jobs: Sequence[JudgeJob | ValidityJob], config: JudgeConfig) -> Generator[object, None, None]:
    """The replies of :func:`sandboxed_many`, each as soon as it is ready. Close the generator when
    stopping early: it holds the worker until its last reply is read."""
    if not jobs:
        return
    if config.sandbox == "inline":
        from ftbench.sql._engine import answer  # the caller imports the engine only when it runs inline

        yield from (answer(job) for job in jobs)
        return
    from ftbench.sql._isolation import worker_for

    yield from worker_for(config.memory_mb).answers(jobs)


def warm_sandbox(config: JudgeConfig | None = None) -> None:
    """Start, in the background, the sandbox worker that judgements under ``config`` (default: the default
    configuration) will use, so that the first of them does not wait for it; nothing to start when they run
    inline."""
    config = config or _DEFAULT
    if config.sandbox == "inline":
        return
    from ftbench.sql._isolation import start_worker

    start_worker(config.memory_mb)


#: Quoted strings and names, and comments: skipped when looking for keywords.
_OPAQUE = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|\[[^\]]*\]|--[^\n]*|/\*.*?\*/", re.DOTALL)
_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)
_LIMIT = re.compile(r"\blimit\b", re.IGNORECASE)


@lru_cache(maxsize=1024)
def has_top_level_order(sql: str) -> bool:
    """True when the outermost query (or set operation) sorts its result: row order is then significant.

    An ORDER BY outside every parenthesis (subqueries, CTEs, window definitions) sorts the result; a
    scan finds it without parsing, which matters when a result is all the judge needs."""
    return _at_top_level(sql, _ORDER_BY)


@lru_cache(maxsize=1024)
def has_top_level_limit(sql: str) -> bool:
    """True when the outermost query keeps only some rows (LIMIT outside every parenthesis)."""
    return _at_top_level(sql, _LIMIT)


def _at_top_level(sql: str, keyword: re.Pattern[str]) -> bool:
    text = _OPAQUE.sub(" ", sql)
    return any(text.count("(", 0, match.start()) == text.count(")", 0, match.start())
               for match in keyword.finditer(text))

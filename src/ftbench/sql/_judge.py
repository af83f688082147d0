"""The judge's entry point: cheap refusals here, everything else in the sandbox."""

from __future__ import annotations

from ftbench.sql._exec import screen
from ftbench.sql._types import JudgeConfig, JudgeJob, Verdict

_DEFAULT = JudgeConfig()


def judge(gold: str, prediction: str, context: str, *, db_id: str | None = None,
          config: JudgeConfig | None = None) -> Verdict:
    """Is ``prediction`` the same query as ``gold``, by execution on databases made from ``context``?

    Correct only when both give the same result (test-suite rules) on every database and the gold
    returns rows on at least one. Never raises for anything a prediction can do; a timeout returns
    within ``config.timeout_s`` plus a fraction of a second.
    """
    config = config or _DEFAULT
    refusal = _refuse(prediction, config)
    if refusal is not None:
        return refusal
    job = JudgeJob(gold, prediction, context, db_id, config)
    if config.sandbox == "inline":
        from ftbench.sql._engine import evaluate

        return evaluate(job)
    from ftbench.sql._isolation import worker_for

    return worker_for(config.memory_mb).judge(job)


def _refuse(prediction: str, config: JudgeConfig) -> Verdict | None:
    """Refusals that need no database, decided before anything is parsed or sent."""
    if not prediction.strip():
        return Verdict(False, "empty", "blank prediction")
    if len(prediction) > config.max_sql_chars:
        return Verdict(False, "forbidden", f"prediction longer than {config.max_sql_chars} characters")
    failure = screen(prediction)
    return Verdict(False, failure.kind, failure.detail) if failure is not None else None

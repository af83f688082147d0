"""The judge's entry point: length and encoding checks here, everything else in the sandbox."""

from __future__ import annotations

from dataclasses import replace

from ftbench.sql._modes import effective_mode
from ftbench.sql._text import encodable, sandboxed, sql_validity
from ftbench.sql._types import JudgeConfig, JudgeJob, Verdict

_DEFAULT = JudgeConfig()


def judge(gold: str, prediction: str, context: str, *, db_id: str | None = None,
          config: JudgeConfig | None = None) -> Verdict:
    """Is ``prediction`` the same query as ``gold``, by execution on databases made from ``context``?

    Correct only when both give the same result (test-suite rules) on every database and the gold
    returns rows on at least one. Never raises for anything a prediction, gold or context can do; a
    timeout returns within ``config.timeout_s`` plus a fraction of a second. ``valid_sql`` of the
    verdict says whether the prediction parses, decided in the sandbox too.
    """
    config = config or _DEFAULT
    return replace(_judged(gold, prediction, context, db_id, config), judge=effective_mode(config, db_id))


def _judged(gold: str, prediction: str, context: str, db_id: str | None, config: JudgeConfig) -> Verdict:
    refusal = _refuse(gold, prediction, context, config)
    if refusal is not None:
        if not (refusal.detail or "").startswith("prediction"):  # the prediction itself may still parse
            return replace(refusal, valid_sql=sql_validity(prediction, config) is True)
        return refusal
    reply = sandboxed(JudgeJob(gold, prediction, context, db_id, config))
    if isinstance(reply, Verdict):
        return reply
    from ftbench.sql._isolation import Lost

    if isinstance(reply, Lost) and reply.overran:
        return Verdict(False, "timeout", reply.detail)
    detail = reply.detail if isinstance(reply, Lost) else f"unexpected sandbox reply {type(reply).__name__}"
    return Verdict(False, "internal", detail)


def _refuse(gold: str, prediction: str, context: str, config: JudgeConfig) -> Verdict | None:
    """Refusals decided from lengths and encodings alone, before any text is parsed or sent."""
    limits = (("prediction", prediction, config.max_sql_chars), ("gold", gold, config.max_sql_chars),
              ("context", context, config.max_context_chars))
    for name, text, limit in limits:
        if len(text) > limit:
            return Verdict(False, "forbidden", f"{name} longer than {limit} characters")
    if not prediction.strip():
        return Verdict(False, "empty", "prediction is blank")
    for name, text, _ in limits:
        if not encodable(text):
            return Verdict(False, "syntax", f"{name} is not valid Unicode (a lone surrogate)")
    return None

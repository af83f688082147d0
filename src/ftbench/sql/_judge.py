"""The judge's entry point: length and encoding checks here, everything else in the sandbox."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from contextlib import closing
from dataclasses import dataclass, replace

from ftbench.sql._modes import effective_mode
from ftbench.sql._text import encodable, sandboxed_stream, sql_validity
from ftbench.sql._types import JudgeConfig, JudgeJob, Verdict

_DEFAULT = JudgeConfig()


@dataclass(frozen=True)
class SqlPair:
    """What :func:`judge_many` judges: a gold, a prediction, their context and the real database's id."""

    gold: str
    prediction: str
    context: str
    db_id: str | None = None


def judge(gold: str, prediction: str, context: str, *, db_id: str | None = None,
          config: JudgeConfig | None = None) -> Verdict:
    """Is ``prediction`` the same query as ``gold``, by execution on databases made from ``context``?

    Correct only when both give the same result (test-suite rules) on every database and the gold
    returns rows on at least one. Never raises for anything a prediction, gold or context can do; a
    timeout returns within ``config.timeout_s`` plus a fraction of a second. ``valid_sql`` of the
    verdict says whether the prediction parses, decided in the sandbox too.
    """
    return judge_many([SqlPair(gold, prediction, context, db_id)], config=config)[0]


def judge_many(pairs: Sequence[SqlPair], *, config: JudgeConfig | None = None) -> list[Verdict]:
    """:func:`judge` for each pair, in order, the same verdicts: the pairs go to the sandbox worker
    together (one round trip between processes instead of one per pair)."""
    with closing(judge_stream(pairs, config=config)) as verdicts:
        return list(verdicts)


def judge_stream(pairs: Sequence[SqlPair], *, config: JudgeConfig | None = None) -> Generator[Verdict, None, None]:
    """The verdicts of :func:`judge_many`, each as soon as it is ready, so a caller can keep every
    verdict given before an interruption. Close it when stopping early (it holds the sandbox worker
    until the last verdict is read)."""
    config = config or _DEFAULT
    refused = [_refused(pair, config) for pair in pairs]  # before the stream takes the worker
    modes = [effective_mode(config, pair.db_id) for pair in pairs]
    # Only the context mode reads the context: the others travel without it.
    jobs = [JudgeJob(pair.gold, pair.prediction, pair.context if mode == "context" else "", pair.db_id, config)
            for pair, verdict, mode in zip(pairs, refused, modes, strict=True) if verdict is None]
    replies = sandboxed_stream(jobs, config)
    try:
        for verdict, mode in zip(refused, modes, strict=True):
            judged = verdict if verdict is not None else _from_reply(next(replies))
            yield judged if judged.judge == mode else replace(judged, judge=mode)
    finally:
        replies.close()


def _refused(pair: SqlPair, config: JudgeConfig) -> Verdict | None:
    refusal = _refuse(pair.gold, pair.prediction, pair.context, config)
    if refusal is not None and not (refusal.detail or "").startswith("prediction"):
        return replace(refusal, valid_sql=sql_validity(pair.prediction, config) is True)  # it may still parse
    return refusal


def _from_reply(reply: object) -> Verdict:
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

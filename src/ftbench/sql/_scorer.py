"""The SQL task's :class:`ftbench.scoring.RowScorer`: one judged row at a time, and the summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from ftbench.scoring import Row, mean_of
from ftbench.sql._judge import judge
from ftbench.sql._text import exact_match, is_valid_sql
from ftbench.sql._types import ERROR_KINDS, JUDGE_MODES, JudgeConfig


class SqlScorer:
    """Scores rows ``{context, gold, prediction}`` (optional ``db_id``, ``id``). Picklable: it holds
    only its config; each process starts its own sandbox worker on first use."""

    required: tuple[str, ...] = ("context", "gold", "prediction")

    def __init__(self, config: JudgeConfig | None = None) -> None:
        self.config = config or JudgeConfig()

    def check(self, row: Row) -> None:
        """A row whose gold is not one SQL statement, or whose ``db_id`` is not a string, can never be judged."""
        if not is_valid_sql(row["gold"]):
            raise ValueError(f"gold is not one valid SQL statement: {row['gold'][:80]!r}")
        if row.get("db_id") is not None and not isinstance(row["db_id"], str):
            raise ValueError("db_id must be a string or null")

    def score(self, row: Row) -> Row:
        gold, prediction = row["gold"], row["prediction"]
        verdict = judge(gold, prediction, row["context"], db_id=row.get("db_id"), config=self.config)
        return {"exec_match": verdict.exec_match, "exact_match": exact_match(gold, prediction),
                "valid_sql": is_valid_sql(prediction), "error": verdict.error, "judge": verdict.judge}

    def summarize(self, scored: Sequence[Row]) -> dict[str, Any]:
        errors = Counter(row["error"] for row in scored if row.get("error"))
        judged = Counter(row.get("judge") for row in scored)
        return {"exec_acc": mean_of(scored, "exec_match"), "exact_match": mean_of(scored, "exact_match"),
                "valid_sql": mean_of(scored, "valid_sql"), "errors": {kind: errors[kind] for kind in ERROR_KINDS},
                "judge": self.config.judge, "judged_by": {mode: judged[mode] for mode in JUDGE_MODES if judged[mode]}}

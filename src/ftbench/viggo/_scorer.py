"""The :class:`~ftbench.scoring.RowScorer` of ``ftbench score viggo``: rows ``{gold, prediction}``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ftbench.errors import InputError, MRParseError
from ftbench.scoring import Row, mean_of
from ftbench.viggo._parse import parse_mr
from ftbench.viggo._scores import micro_f1, score_mr


class ViggoScorer:
    """Scores rows ``{gold, prediction}``; picklable (it holds no state)."""

    required: tuple[str, ...] = ("gold", "prediction")

    def check(self, row: Row) -> None:
        """The gold must parse (raises :class:`MRParseError`, a ValueError, quoting it otherwise)."""
        parse_mr(row["gold"])

    def score(self, row: Row) -> Row:
        """Metric columns of one row: ``exact_match``, ``mr_match``, ``valid_mr`` (bools), ``slot_f1``
        (this row's F1) and the counts ``slot_tp``, ``slot_fp``, ``slot_fn`` that the summary sums.

        Raises :class:`~ftbench.errors.InputError` quoting the gold when the gold MR does not parse.
        """
        try:
            score = score_mr(row["gold"], row["prediction"])
        except MRParseError as err:
            raise InputError(f"{_where(row)}{err}") from err
        return {
            "exact_match": score.exact_match,
            "mr_match": score.mr_match,
            "slot_f1": score.slot_f1,
            "valid_mr": score.valid_mr,
            "slot_tp": score.tp,
            "slot_fp": score.fp,
            "slot_fn": score.fn,
        }

    def failed(self, row: Row, detail: str) -> Row:
        """A row whose scoring process died twice (the runner scores ViGGO in-process, so only in theory)."""
        return {"exact_match": False, "mr_match": False, "slot_f1": 0.0, "valid_mr": False,
                "slot_tp": 0, "slot_fp": 0, "slot_fn": 0, "error": "internal"}

    def warnings(self, scored: Sequence[Row]) -> list[str]:
        return []

    def summarize(self, scored: Sequence[Row]) -> dict[str, Any]:
        """Shares of rows with ``exact_match``, ``mr_match`` and ``valid_mr``, and the micro ``slot_f1``
        from the summed counts (not the mean of the per-row F1). Every value is 0.0 when there are no rows.
        """
        counts = [(row["slot_tp"], row["slot_fp"], row["slot_fn"]) for row in scored]
        return {
            "exact_match": mean_of(scored, "exact_match"),
            "mr_match": mean_of(scored, "mr_match"),
            "slot_f1": micro_f1(counts) if counts else 0.0,
            "valid_mr": mean_of(scored, "valid_mr"),
        }


def _where(row: Row) -> str:
    """``"row <id>: "`` when the row carries an ``id`` (the runner does not pass line numbers)."""
    return f"row {row['id']}: " if "id" in row else ""

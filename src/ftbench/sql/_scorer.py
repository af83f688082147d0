"""The SQL task's :class:`ftbench.scoring.RowScorer`: one judged row at a time, and the summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from ftbench.scoring import Row, mean_of
from ftbench.sql._judge import SqlPair, judge_stream
from ftbench.sql._modes import effective_mode
from ftbench.sql._text import encodable, exact_match, sql_validity
from ftbench.sql._types import ERROR_KINDS, JUDGE_MODES, JudgeConfig

#: How many row ids a warning names before it says "and N more".
_NAMED = 10


class SqlScorer:
    """Scores rows ``{context, gold, prediction}`` (optional ``db_id``, ``id``). Picklable: it holds
    only its config; each process starts its own sandbox worker on first use."""

    required: tuple[str, ...] = ("context", "gold", "prediction")

    def __init__(self, config: JudgeConfig | None = None) -> None:
        self.config = config or JudgeConfig()

    @property
    def stall_s(self) -> float:
        """Longest a row may take in a pool process (two tries of the whole-row bound, plus start-up)."""
        return 2 * (self.config.build_timeout_s + 1.0) + 60.0

    def check(self, row: Row) -> None:
        """A row whose gold does not parse as one SQL statement (decided in the sandbox; a gold too long,
        not valid Unicode, or that cannot be compiled in time is left to the judge, which scores it and
        says why), or whose ``db_id`` is not a string, can never be judged."""
        if row.get("db_id") is not None and not isinstance(row["db_id"], str):
            raise ValueError("db_id must be a string or null")
        gold = row["gold"]
        if len(gold) <= self.config.max_sql_chars and encodable(gold) and sql_validity(gold, self.config) is False:
            raise ValueError(f"gold is not one valid SQL statement: {gold[:80]!r}")

    def score(self, row: Row) -> Row:
        (fields,) = self.score_many([row])  # the whole stream, so it lets go of the worker
        return fields

    def score_many(self, rows: Sequence[Row]) -> Iterator[Row]:
        """:meth:`score` for several rows, judged together (one round trip to the sandbox worker), each
        row's fields given as soon as its verdict is in, so an interrupted run keeps every judged row."""
        pairs = [SqlPair(row["gold"], row["prediction"], row["context"], row.get("db_id")) for row in rows]
        with closing(judge_stream(pairs, config=self.config)) as verdicts:
            for pair, verdict in zip(pairs, verdicts, strict=True):
                yield {"exec_match": verdict.exec_match, "exact_match": exact_match(pair.gold, pair.prediction),
                       "valid_sql": verdict.valid_sql, "error": verdict.error, "judge": verdict.judge}

    def failed(self, row: Row, detail: str) -> Row:
        return {"exec_match": False, "exact_match": exact_match(row["gold"], row["prediction"]),
                "valid_sql": False, "error": "internal", "judge": effective_mode(self.config, row.get("db_id"))}

    def summarize(self, scored: Sequence[Row]) -> dict[str, Any]:
        errors = Counter(row["error"] for row in scored if row.get("error"))
        judged = Counter(row.get("judge") for row in scored)
        summary = {"exec_acc": mean_of(scored, "exec_match"), "exact_match": mean_of(scored, "exact_match"),
                   "valid_sql": mean_of(scored, "valid_sql"), "errors": {kind: errors[kind] for kind in ERROR_KINDS},
                   "judge": self.config.judge,
                   "judged_by": {mode: judged[mode] for mode in JUDGE_MODES if judged[mode]}}
        if self.config.judge != "context":
            summary["no_real_db"] = len(self._without_real_db(scored))
        return summary

    def warnings(self, scored: Sequence[Row]) -> list[str]:
        found: list[str] = []
        internal = [(number, row) for number, row in enumerate(scored, 1) if row.get("error") == "internal"]
        if internal:
            found.append(f"{len(internal)} row(s) could not be judged (error 'internal', a fault of the judge, "
                         f"not of the prediction): {_names(internal)}")
        missing = self._without_real_db(scored) if self.config.judge != "context" else []
        if missing:
            found.append(f"{len(missing)} row(s) have no database under {self.config.db_dir} for their db_id and "
                         f"were judged on synthesized databases (no_real_db): {_names(missing, 'db_id')}")
        return found

    def _without_real_db(self, scored: Sequence[Row]) -> list[tuple[int, Row]]:
        return [(number, row) for number, row in enumerate(scored, 1)
                if not has_real_database(self.config.db_dir, row.get("db_id"))]


def has_real_database(db_dir: Path | None, db_id: object) -> bool:
    """Whether ``db_dir/db_id`` holds a ``*.sqlite`` file (a db_id that would leave the folder has none)."""
    if db_dir is None or not isinstance(db_id, str) or not db_id or Path(db_id).name != db_id or db_id in (".", ".."):
        return False
    return any((db_dir / db_id).glob("*.sqlite"))


def _names(rows: Sequence[tuple[int, Row]], field: str = "id") -> str:
    """The rows' ids (or another field; else their row number), deduplicated, the first few of them."""
    names = list(dict.fromkeys(str(row[field]) if row.get(field) is not None else f"row {number}"
                               for number, row in rows))
    shown = ", ".join(names[:_NAMED])
    return shown + (f" and {len(names) - _NAMED} more" if len(names) > _NAMED else "")

"""Why models are wrong: SQL error classes (by judging each logged prediction again) and ViGGO function confusion.

SQL classes: ``correct``; ``wrong result`` (ran, but the results differ from the gold's); and the judge's
error kinds (``syntax``, ``schema``, ``timeout``, ``forbidden``, ``runtime``, ``empty``). The predictions are
judged again with the same judge and default settings the ``spider_sql`` tasks use, so a class per example is
known even though lm-eval logs only the 0/1 metric; examples where the new verdict differs from the logged
``exec_acc`` (another ftbench version judged the run) are counted and reported.

ViGGO: a count of (gold function, predicted function) pairs; a prediction that does not parse is ``(invalid)``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from ftbench.leaderboard._read import TaskRun
from ftbench.sql import ERROR_KINDS, judge
from ftbench.viggo import MRParseError, parse_mr

SQL_CLASSES: tuple[str, ...] = ("correct", "wrong result", *ERROR_KINDS)
INVALID = "(invalid)"


@dataclass(frozen=True)
class SqlBreakdown:
    counts: dict[str, int]  # by class in SQL_CLASSES order
    n: int
    disagreements: int  # examples whose verdict now differs from the logged exec_acc


@dataclass(frozen=True)
class Confusion:
    counts: dict[tuple[str, str], int]  # (gold function, predicted function) -> examples
    n: int

    @property
    def gold_functions(self) -> list[str]:
        return sorted({gold for gold, _ in self.counts})

    @property
    def predicted_functions(self) -> list[str]:
        found = {predicted for _, predicted in self.counts}
        return sorted(found - {INVALID}) + ([INVALID] if INVALID in found else [])

    @property
    def function_accuracy(self) -> float:
        return sum(c for (gold, predicted), c in self.counts.items() if gold == predicted) / self.n if self.n else 0.0


def sql_breakdown(task: TaskRun, tick: Callable[[], object] = lambda: None) -> SqlBreakdown | None:
    """Classify every logged SQL prediction; None when the run has no samples."""
    if task.samples is None:
        return None
    counts = Counter({name: 0 for name in SQL_CLASSES})
    disagreements = 0
    for sample in task.samples:
        verdict = judge(str(sample.doc["answer"]), sample.answer, str(sample.doc["context"]))
        counts["correct" if verdict.exec_match else verdict.error or "wrong result"] += 1
        disagreements += verdict.exec_match != (sample.values["exec_acc"] == 1.0)
        tick()
    return SqlBreakdown({name: counts[name] for name in SQL_CLASSES}, len(task.samples), disagreements)


def viggo_confusion(task: TaskRun) -> Confusion | None:
    """Gold vs predicted function of every logged ViGGO prediction; None when the run has no samples."""
    if task.samples is None:
        return None
    counts: Counter[tuple[str, str]] = Counter()
    for sample in task.samples:
        gold = _function(str(sample.doc["meaning_representation"]))
        counts[(gold, _function(sample.answer))] += 1
    return Confusion(dict(counts), len(task.samples))


def _function(text: str) -> str:
    try:
        return parse_mr(text).function
    except MRParseError:
        return INVALID

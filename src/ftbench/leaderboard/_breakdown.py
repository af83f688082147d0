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
from dataclasses import dataclass, field

from ftbench.leaderboard._read import TaskRun
from ftbench.sql import ERROR_KINDS, judge
from ftbench.viggo import MRParseError, parse_mr

SQL_CLASSES: tuple[str, ...] = ("correct", "wrong result", *ERROR_KINDS)
#: What went wrong with a ViGGO answer: nothing; not a meaning representation; the function; only the slots.
VIGGO_CLASSES: tuple[str, ...] = ("correct", "invalid MR", "wrong function", "wrong slots")
INVALID = "(invalid)"


@dataclass(frozen=True)
class SqlBreakdown:
    counts: dict[str, int]  # by class in SQL_CLASSES order
    n: int
    disagreements: int  # examples whose verdict now differs from the logged exec_acc
    classes: dict[str, str] = field(default_factory=dict)  # example key -> class


@dataclass(frozen=True)
class Confusion:
    counts: dict[tuple[str, str], int]  # (gold function, predicted function) -> examples
    n: int
    classes: dict[str, str] = field(default_factory=dict)  # example key -> one of VIGGO_CLASSES

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
    classes: dict[str, str] = {}
    disagreements = 0
    for sample in task.samples:
        verdict = judge(str(sample.doc["answer"]), sample.answer, str(sample.doc["context"]))
        classes[sample.key] = "correct" if verdict.exec_match else verdict.error or "wrong result"
        counts[classes[sample.key]] += 1
        disagreements += verdict.exec_match != (sample.values["exec_acc"] == 1.0)
        tick()
    return SqlBreakdown({name: counts[name] for name in SQL_CLASSES}, len(task.samples), disagreements, classes)


def viggo_confusion(task: TaskRun) -> Confusion | None:
    """Gold vs predicted function of every logged ViGGO prediction; None when the run has no samples."""
    if task.samples is None:
        return None
    counts: Counter[tuple[str, str]] = Counter()
    classes: dict[str, str] = {}
    for sample in task.samples:
        gold, predicted = _function(str(sample.doc["meaning_representation"])), _function(sample.answer)
        counts[(gold, predicted)] += 1
        classes[sample.key] = _viggo_class(sample.values.get("exact_match") == 1.0, gold, predicted)
    return Confusion(dict(counts), len(task.samples), classes)


def _viggo_class(right: bool, gold: str, predicted: str) -> str:
    if right:
        return "correct"
    if predicted == INVALID:
        return "invalid MR"
    return "wrong function" if predicted != gold else "wrong slots"


def _function(text: str) -> str:
    try:
        return parse_mr(text).function
    except MRParseError:
        return INVALID

"""The task families the leaderboard knows: which lm-eval tasks belong to each, how a document is named,
and which metrics it reports.

A *family* is one benchmark (the same examples, the same gold answers); its *variants* are the prompt forms
lm-eval runs it in (completion, chat). Models are compared within a family, whatever variant each was
prompted with, because each model is evaluated in the form it was trained on (the study's setting).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: ``mean``: per-example 0/1 values averaged; ``micro_f1``: per-example (tp, fp, fn) summed, then F1.
Aggregation = Literal["mean", "micro_f1"]


@dataclass(frozen=True)
class Metric:
    name: str
    aggregation: Aggregation = "mean"

    @property
    def binary(self) -> bool:
        """Per-example right/wrong, so a McNemar test applies."""
        return self.aggregation == "mean"


@dataclass(frozen=True)
class Family:
    name: str
    variants: tuple[str, ...]
    #: Field of ``doc`` that names an example across variants (``doc_hash`` differs: chat docs carry a system).
    doc_key: str
    metrics: tuple[Metric, ...]
    #: The metric the study ranks by; also the one of the cost plot and the accuracy-per-dollar column.
    primary: str
    #: Fields of ``doc`` the per-example viewer shows: what the model was asked, and the gold answer.
    input_field: str = ""
    gold_field: str = ""

    def metric(self, name: str) -> Metric:
        return next(metric for metric in self.metrics if metric.name == name)


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("spider_sql", ("spider_sql", "spider_sql_chat"), "id",
               (Metric("exec_acc"), Metric("exact_match"), Metric("valid_sql")), primary="exec_acc",
               input_field="question", gold_field="answer"),
        Family("viggo", ("viggo", "viggo_chat"), "gem_id",
               (Metric("exact_match"), Metric("mr_match"), Metric("slot_f1", "micro_f1"), Metric("valid_mr")),
               primary="exact_match", input_field="target", gold_field="meaning_representation"),
    )
}

_VARIANTS = {variant: family for family in FAMILIES.values() for variant in family.variants}


def family_of(task: str) -> Family | None:
    """The family of an lm-eval task name; None for tasks that are not ftbench's."""
    return _VARIANTS.get(task)


def prompt_form(variant: str) -> str:
    return "chat" if variant.endswith("_chat") else "completion"

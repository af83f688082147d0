"""From runs to ranked, comparable groups: estimates with intervals, paired tests, accuracy per dollar.

**Comparability.** Runs of one task family are ranked together only when they share the task version, the
``--limit``, the generation settings and the number of few-shot examples, and when runs of one prompt form
saw the same prompts (lm-eval's per-example ``prompt_hash`` for completion tasks; ``doc_hash`` for chat tasks,
whose documents carry the system message, since the rendered chat prompt depends on each model's chat
template). Completion and chat runs of one family are ranked together on purpose: each model is evaluated
in the form it was trained on, as in the study. Anything else splits the family into groups, with a warning.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ftbench.leaderboard._models import CostInfo, Kind, ServingCost
from ftbench.leaderboard._read import ModelRun, TaskRun, Value
from ftbench.leaderboard._stats import (
    Estimate,
    McNemar,
    holm,
    mcnemar_exact,
    micro_f1_estimate,
    paired_difference,
    wilson_estimate,
)
from ftbench.leaderboard._tasks import Family, Metric, prompt_form


@dataclass(frozen=True)
class Entry:
    """One model's run of one task, named and priced."""

    name: str
    kind: Kind
    run: ModelRun
    task: TaskRun
    cost: CostInfo
    serving: ServingCost = field(default_factory=ServingCost)

    @property
    def form(self) -> str:
        return prompt_form(self.task.variant)

    def values(self, metric: str) -> dict[str, Value] | None:
        """Per-example values by example key; None without samples."""
        if self.task.samples is None:
            return None
        return {sample.key: sample.values[metric] for sample in self.task.samples}


@dataclass(frozen=True)
class Row:
    entry: Entry
    rank: int
    scores: dict[str, Estimate]
    #: Primary metric in percentage points per training dollar; None when the training cost is unknown or 0.
    per_dollar: float | None


@dataclass(frozen=True)
class PairTest:
    """Model ``a`` against model ``b`` on one binary metric, on the examples both answered."""

    a: str
    b: str
    metric: str
    shared: int
    test: McNemar | None  # None: one side has no samples
    difference: Estimate | None  # mean(a − b) with a paired bootstrap interval
    p_holm: float | None
    note: str


@dataclass(frozen=True)
class Group:
    family: Family
    label: str
    settings: dict[str, str]
    rows: tuple[Row, ...]
    pairs: tuple[PairTest, ...]


def compare(entries: Sequence[Entry]) -> tuple[list[Group], list[str]]:
    """Group comparable entries per family, rank them, and test every pair; returns the groups and warnings."""
    warnings: list[str] = []
    groups: list[Group] = []
    families: dict[str, list[Entry]] = {}
    for entry in entries:
        families.setdefault(entry.task.family.name, []).append(entry)
    for members in families.values():
        _check_names(members)
        split = _split(members, warnings)
        for (members_of_group, settings), label in zip(split, _labels(split), strict=True):
            groups.append(_group(members_of_group, label, settings, warnings))
    return groups, warnings


def _check_names(members: Sequence[Entry]) -> None:
    from ftbench.errors import InputError

    seen: dict[str, Entry] = {}
    for entry in members:
        other = seen.get(entry.name)
        if other is not None:
            raise InputError(f"two runs of {entry.task.family.name} are both named {entry.name!r} "
                             f"({other.run.model_dir} and {entry.run.model_dir}); name them apart in models.yaml")
        seen[entry.name] = entry


def settings_of(task: TaskRun) -> dict[str, str]:
    """The settings that must agree for two runs to be ranked together (prompts are checked separately)."""
    return {"version": task.version, "limit": "all" if task.limit is None else f"{task.limit:g}",
            "generation": _generation_text(task.generation), "few-shot": str(task.num_fewshot)}


def _generation_text(settings: dict[str, Any]) -> str:
    normal: dict[str, Any] = {}
    for key, value in settings.items():
        if key == "until":
            normal[key] = [value] if isinstance(value, str) else list(value)
        elif key == "do_sample":
            normal[key] = str(value).lower() in ("true", "1")
        elif key in ("temperature", "top_p", "max_gen_toks"):
            number = float(value)
            normal[key] = int(number) if number.is_integer() else number
        else:
            normal[key] = value
    if not normal.get("do_sample", False):  # greedy: temperature and top_p do not matter
        normal.pop("temperature", None)
        normal.pop("top_p", None)
    return json.dumps(normal, sort_keys=True)


def _split(members: list[Entry], warnings: list[str]) -> list[tuple[list[Entry], dict[str, str]]]:
    buckets: dict[tuple[tuple[str, str], ...], list[Entry]] = {}
    for entry in members:
        buckets.setdefault(tuple(settings_of(entry.task).items()), []).append(entry)
    split: list[tuple[list[Entry], dict[str, str]]] = []
    for key, bucket in buckets.items():
        split.extend((part, dict(key)) for part in _split_by_prompt(bucket, warnings))
    if len(split) > 1:
        family = members[0].task.family.name
        differing = sorted({name for _, settings in split for name, value in settings.items()
                            if any(other[name] != value for _, other in split)}) or ["prompts"]
        listing = "; ".join(f"({i}) " + ", ".join(e.name for e in part) for i, (part, _) in enumerate(split, 1))
        warnings.append(f"{family}: runs differ in {', '.join(differing)} and are not ranked together: {listing}")
    return split


def _labels(split: list[tuple[list[Entry], dict[str, str]]]) -> list[str]:
    """The family's name, followed by what sets a group apart when the family is split."""
    family = split[0][0][0].task.family.name
    if len(split) == 1:
        return [family]
    generations = sorted({settings["generation"] for _, settings in split})
    labels = []
    for part, settings in split:
        differing = [name for name, value in settings.items() if any(o[name] != value for _, o in split)]
        words = [f"generation #{generations.index(settings[name]) + 1}" if name == "generation"
                 else f"{name} {settings[name]}" for name in differing]
        labels.append(f"{family} · {', '.join(words) or part[0].form + ' prompts'}")
    return [label if labels.count(label) == 1 else f"{label} #{labels[:i + 1].count(label)}"
            for i, label in enumerate(labels)]


def _split_by_prompt(bucket: list[Entry], warnings: list[str]) -> list[list[Entry]]:
    """One part when the runs of each prompt form saw the same prompts; else one part per (form, prompts)."""
    clusters: dict[str, list[list[Entry]]] = {}
    for entry in bucket:
        form_clusters = clusters.setdefault(entry.form, [])
        for cluster in form_clusters:
            if _same_prompts(cluster[0], entry):
                cluster.append(entry)
                break
        else:
            form_clusters.append([entry])
    if all(len(form_clusters) == 1 for form_clusters in clusters.values()):
        return [bucket]
    for form, form_clusters in clusters.items():
        if len(form_clusters) > 1:
            names = " vs ".join("/".join(e.name for e in cluster) for cluster in form_clusters)
            warnings.append(f"{bucket[0].task.family.name}: {form} prompts differ between {names} "
                            "(prompt hashes disagree on shared examples)")
    return [cluster for form_clusters in clusters.values() for cluster in form_clusters]


def _prompt_ids(entry: Entry) -> dict[str, str]:
    samples = entry.task.samples or ()
    return {s.key: (s.doc_hash if entry.form == "chat" else s.prompt_hash) for s in samples}


def _same_prompts(a: Entry, b: Entry) -> bool:
    ids_a, ids_b = _prompt_ids(a), _prompt_ids(b)
    return all(ids_a[key] == ids_b[key] for key in ids_a.keys() & ids_b.keys())


def _group(members: list[Entry], label: str, settings: dict[str, str], warnings: list[str]) -> Group:
    family = members[0].task.family
    scored = [(entry, {m.name: estimate(entry, m, warnings) for m in family.metrics}) for entry in members]
    scored.sort(key=lambda item: _sort_key(item[1][family.primary].value))
    rows: list[Row] = []
    for position, (entry, scores) in enumerate(scored):
        previous = rows[-1] if rows else None
        tie = previous is not None and previous.scores[family.primary].value == scores[family.primary].value
        rank = previous.rank if previous is not None and tie else position + 1
        rows.append(Row(entry, rank, scores, _per_dollar(scores[family.primary].value, entry.cost)))
    return Group(family, label, settings, tuple(rows), tuple(_pairs(rows, family)))


def _sort_key(value: float) -> float:
    return math.inf if math.isnan(value) else -value


def _per_dollar(value: float, cost: CostInfo) -> float | None:
    if cost.training_usd is None or cost.training_usd <= 0 or math.isnan(value):
        return None
    return 100 * value / cost.training_usd


def estimate(entry: Entry, metric: Metric, warnings: list[str]) -> Estimate:
    """The metric with its interval from the samples (Wilson for proportions, bootstrap for micro F1); the
    results file's figure alone without them."""
    task = entry.task
    reported = task.aggregates[metric.name]
    values = entry.values(metric.name)
    if values is None:
        return Estimate(reported, math.nan, math.nan, task.n)
    if metric.aggregation == "micro_f1":
        result = micro_f1_estimate([v for v in values.values() if isinstance(v, tuple)])
    else:
        result = wilson_estimate([float(v) for v in values.values() if not isinstance(v, tuple)])
    if abs(result.value - reported) > 1e-9:
        warnings.append(f"{task.samples_file}: {metric.name} from the samples is {result.value:.6g} but "
                        f"{task.results_file.name} reports {reported:.6g}; the samples file is used")
    return result


def _pairs(rows: Sequence[Row], family: Family) -> list[PairTest]:
    pairs: list[PairTest] = []
    for metric in (m for m in family.metrics if m.binary):
        tests = [_pair(a.entry, b.entry, metric.name) for a, b in itertools.combinations(rows, 2)]
        tested = [i for i, test in enumerate(tests) if test.test is not None]
        adjusted = holm([test.test.p_value for test in tests if test.test is not None])
        for i, p_holm in zip(tested, adjusted, strict=True):
            tests[i] = replace(tests[i], p_holm=p_holm)
        pairs.extend(tests)
    return pairs


def _pair(a: Entry, b: Entry, metric: str) -> PairTest:
    values_a, values_b = a.values(metric), b.values(metric)
    if values_a is None or values_b is None:
        missing = " and ".join(e.name for e, v in ((a, values_a), (b, values_b)) if v is None)
        return PairTest(a.name, b.name, metric, 0, None, None, None, f"no samples for {missing}")
    shared = [key for key in values_a if key in values_b]
    note = ""
    if len(shared) != len(values_a) or len(shared) != len(values_b):
        note = (f"example sets differ ({a.name} only: {len(values_a) - len(shared)}, "
                f"{b.name} only: {len(values_b) - len(shared)}); tested on the {len(shared)} shared")
    right_a = [_right(values_a[key]) for key in shared]
    right_b = [_right(values_b[key]) for key in shared]
    difference = paired_difference([float(x) for x in right_a], [float(x) for x in right_b])
    return PairTest(a.name, b.name, metric, len(shared), mcnemar_exact(right_a, right_b), difference, None, note)


def _right(value: Value) -> bool:
    return not isinstance(value, tuple) and value == 1.0

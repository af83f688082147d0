"""The report's content, built once as document blocks (Markdown and HTML) and as CSV rows.

It leads with the decision: per task, a chart of accuracy against cost and one sentence per pair of models (which
is better, by how much, whether significantly, and what each costs to train and to serve 1,000 queries). Then
its inputs, the detailed tables, training curves, the per-example viewer and the cost basis.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from ftbench.leaderboard._breakdown import SQL_CLASSES, VIGGO_CLASSES, Confusion, SqlBreakdown
from ftbench.leaderboard._compare import Group, PairTest, Row
from ftbench.leaderboard._document import (
    Block,
    Bullets,
    ExampleRow,
    ExampleView,
    Figure,
    Heading,
    Paragraph,
    Table,
)
from ftbench.leaderboard._stats import CONFIDENCE, RESAMPLES, Estimate

#: Holm-adjusted p below this is called significant in the decision sentences.
ALPHA = 0.05
VIGGO_NOTE = ("ViGGO's test set holds three sentences per meaning representation, so its examples are not "
              "independent and the p-values and intervals here are optimistic.")
SQL_JUDGE = ("SQL judge: `context` (execution on databases synthesized from each question's CREATE TABLE context, "
             "as the spider_sql tasks run it)")


@dataclass(frozen=True)
class Leaderboard:
    """Everything the report shows."""

    groups: tuple[Group, ...]
    sql_errors: dict[tuple[str, str], SqlBreakdown]  # (group label, model name)
    viggo_confusion: dict[tuple[str, str], Confusion]
    warnings: tuple[str, ...]
    runs: int
    notes: tuple[str, ...] = ()  # said under the decision (e.g. the demo's "does not learn SQL")


@dataclass(frozen=True)
class Figures:
    """The report's plots: one decision chart per group, one training-curve plot per family, the rest."""

    decision: Mapping[str, Figure]  # by group label
    curves: Mapping[str, Figure]  # by family name
    other: Sequence[Figure] = ()


SUMMARY_HEADERS = ("group", "family", "task", "rank", "model", "kind", "form", "metric", "value", "ci_low",
                   "ci_high", "n", "training_usd", "gpu_hours", "hours_unit", "trained_tokens", "inference_usd",
                   "inference_per_1k_usd", "points_per_dollar", "results_file")
PAIR_HEADERS = ("group", "metric", "model_a", "model_b", "shared", "a_only_right", "b_only_right",
                "difference", "diff_low", "diff_high", "p_value", "p_holm", "note")


def blocks(board: Leaderboard, figures: Figures) -> list[Block]:
    out: list[Block] = [
        Heading(1, "ftbench leaderboard"),
        Paragraph(f"{board.runs} run(s), {len(board.groups)} task group(s). Which model to fine-tune: per task, "
                  "accuracy against cost, and one sentence per pair of models."),
        Heading(2, "Decision"),
    ]
    for group in board.groups:
        out += _decision_blocks(group, board, figures.decision.get(group.label))
    out += [Heading(2, "Inputs"), Bullets(tuple(input_lines(board)))]
    if board.warnings:
        out += [Heading(2, "Warnings"), Bullets(board.warnings, css="warnings")]
    out += [Heading(2, "Details"), Paragraph(_method_text())]
    for group in board.groups:
        out += _group_blocks(group, board)
    if figures.curves:
        out += [Heading(2, "Training curves"), *figures.curves.values()]
    out.append(Heading(2, "Examples"))
    for group in board.groups:
        out += [Heading(3, group.label), example_view(group, board)]
    if figures.other:
        out.append(Heading(2, "Plots"))
        out.extend(figures.other)
    out += [Heading(2, "Cost basis"), Bullets(tuple(_cost_lines(board.groups)) or ("no costs known",))]
    return out


def _method_text() -> str:
    return (f"Scores in %, with {CONFIDENCE:.0%} intervals: Wilson score intervals for proportions, percentile "
            f"bootstrap ({RESAMPLES:,} resamples of the examples) for slot F1. Tied models share a rank (=). Pairs: "
            "McNemar's exact test on per-example right/wrong over the examples both models answered, p-values "
            "Holm-adjusted per group and metric; Δ is A − B with a paired bootstrap interval. Points per $: primary "
            "score (percentage points) per training dollar.")


def _decision_blocks(group: Group, board: Leaderboard, figure: Figure | None) -> list[Block]:
    primary = group.family.primary
    out: list[Block] = [Heading(3, f"{group.label}: {primary}")]
    if figure is not None:
        out.append(figure)
    scores = "; ".join(f"**{row.entry.name}** {_score(row.scores[primary])} (n = {row.scores[primary].n:,})"
                       for row in group.rows)
    sentences = decision_sentences(group)
    out.append(Bullets((scores, *sentences)))
    notes = [note.split(":", 1)[1].strip() for note in board.notes if note.split(":", 1)[0] == group.family.name]
    if group.family.name == "viggo":
        notes.append(VIGGO_NOTE)
    if notes:
        out.append(Paragraph(" ".join(notes)))
    return out


def decision_sentences(group: Group) -> list[str]:
    """One sentence per pair on the primary metric; pairs with identical verdicts on every example, one line."""
    rows = {row.entry.name: row for row in group.rows}
    pairs = [p for p in group.pairs if p.metric == group.family.primary]
    identical = [p for p in pairs if _identical(p)]
    lines = [pair_sentence(p, rows[p.a], rows[p.b]) for p in pairs if not _identical(p)]
    if identical:
        lines.append("Same verdict on every example, so no difference to test: "
                     + "; ".join(f"**{p.a}** = **{p.b}**" for p in identical) + ".")
    return lines


def _identical(pair: PairTest) -> bool:
    return pair.test is not None and pair.test.only_a == 0 and pair.test.only_b == 0


def pair_sentence(pair: PairTest, a: Row, b: Row) -> str:
    """Which of two models is better on the pair's metric, by how much, whether significantly, at what cost."""
    if pair.test is None or pair.difference is None:
        return f"**{pair.a}** vs **{pair.b}**: no paired test ({pair.note})."
    diff = pair.difference
    better, worse = (a, b) if diff.value >= 0 else (b, a)
    low, high = (diff.low, diff.high) if diff.value >= 0 else (-diff.high, -diff.low)
    p_value = pair.p_holm if pair.p_holm is not None else pair.test.p_value
    verdict = (f"significant (McNemar p = {_p(pair.test.p_value)}, Holm {_p(p_value)})" if p_value < ALPHA
               else f"not significant (McNemar p = {_p(pair.test.p_value)}, Holm {_p(p_value)})")
    interval = "" if math.isnan(low) else f", 95% CI {100 * low:+.1f} to {100 * high:+.1f}"
    head = (f"**{better.entry.name}** beats **{worse.entry.name}** by {100 * abs(diff.value):.1f} points of "
            f"{pair.metric}{interval}: {verdict}.")
    return f"{head} {_cost_clause(better, worse)}"


def _cost_clause(first: Row, second: Row) -> str:
    def train(row: Row) -> str:
        cost = row.entry.cost
        hours = "" if cost.gpu_hours is None else f" ({cost.gpu_hours:.3g} {cost.hours_unit})"
        return f"{_dollars(cost.training_usd)}{hours}"

    return (f"Training: {train(first)} vs {train(second)}; serving 1,000 queries: "
            f"{_dollars(first.entry.serving.per_1k_usd)} vs {_dollars(second.entry.serving.per_1k_usd)}.")


def _p(value: float) -> str:
    return f"{value:.2g}" if value >= 1e-4 else f"{value:.1e}"


def _dollars(value: float | None) -> str:
    return "unknown" if value is None else f"${_money(value)}"


def input_lines(board: Leaderboard) -> list[str]:
    """Run folders with their dates and lm-eval versions, the ftbench version, the SQL judge."""
    lines: dict[str, str] = {}
    for group in board.groups:
        for row in group.rows:
            task = row.entry.task
            lines.setdefault(str(task.results_file), f"**{row.entry.name}** ({task.variant}): "
                             f"`{row.entry.run.model_dir}`, lm-eval {task.lm_eval_version}, run {task.date}, "
                             f"model `{row.entry.run.model}`")
    extra = [f"ftbench {_ftbench_version()} wrote this report"]
    if any(group.family.name == "spider_sql" for group in board.groups):
        extra.append(SQL_JUDGE)
    return [*lines.values(), *extra]


def _ftbench_version() -> str:
    try:
        return version("ftbench")
    except PackageNotFoundError:
        return "(not installed)"


def _group_blocks(group: Group, board: Leaderboard) -> list[Block]:
    family = group.family
    settings = " · ".join(f"{key} `{value}`" for key, value in group.settings.items())
    out: list[Block] = [Heading(3, group.label), Paragraph(f"Settings: {settings}. Ranked by "
                                                           f"**{family.primary}**.")]
    metrics = [metric.name for metric in family.metrics]
    headers = ("Rank", "Model", "Kind", "Task", "n", *metrics, "Training $", "Device-h", "Trained tokens",
               "$ / 1k queries", f"{family.primary} pts/$")
    ranks = [row.rank for row in group.rows]
    rows = tuple((_rank(row.rank, ranks), row.entry.name, row.entry.kind, row.entry.task.variant,
                  str(row.scores[family.primary].n), *(_score(row.scores[name]) for name in metrics),
                  *_cost_cells(row)) for row in group.rows)
    out.append(Table(headers, rows, (True, False, False, False, True, *([True] * (len(metrics) + 5)))))
    if len(group.rows) > 1:
        out += [Heading(4, "Paired comparisons"), *_pairs_blocks(group.pairs)]
    out += _breakdown_blocks(group, board)
    return out


def _rank(rank: int, ranks: Sequence[int]) -> str:
    return f"={rank}" if ranks.count(rank) > 1 else str(rank)


def _score(estimate: Estimate) -> str:
    if math.isnan(estimate.value):
        return "–"
    if math.isnan(estimate.low):
        return f"{100 * estimate.value:.1f} (no CI)"
    return f"{100 * estimate.value:.1f} [{100 * estimate.low:.1f}, {100 * estimate.high:.1f}]"


def _money(value: float | None) -> str:
    """Dollars to the cent, or to two significant digits below a cent (CPU runs cost fractions of one)."""
    if value is None:
        return "–"
    if value == 0 or value >= 0.01:
        return f"{value:,.2f}"
    return f"{value:.2g}"


def _cost_cells(row: Row) -> tuple[str, ...]:
    cost = row.entry.cost
    return (_money(cost.training_usd), "–" if cost.gpu_hours is None else f"{cost.gpu_hours:.3g} {cost.hours_unit}",
            "–" if cost.trained_tokens is None else f"{cost.trained_tokens:,}", _money(row.entry.serving.per_1k_usd),
            "–" if row.per_dollar is None else f"{row.per_dollar:.3g}")


def _pairs_blocks(pairs: Sequence[PairTest]) -> list[Block]:
    headers = ("A", "B", "Metric", "Shared", "A only right", "B only right", "Δ A−B [95% CI]", "p", "p (Holm)",
               "Note")
    shown = [p for p in pairs if not _identical(p)]
    folded = [p for p in pairs if _identical(p)]
    out: list[Block] = []
    if shown:
        rows = tuple((p.a, p.b, p.metric, str(p.shared), *_pair_cells(p), p.note or "") for p in shown)
        out.append(Table(headers, rows, (False, False, False, True, True, True, True, True, True, False)))
    if folded:
        out.append(Paragraph("Same verdict on every shared example (Δ 0, p = 1): "
                             + "; ".join(f"{p.a} = {p.b} on {p.metric}" for p in folded) + "."))
    return out
def _pair_cells(pair: PairTest) -> tuple[str, str, str, str, str]:
    if pair.test is None or pair.difference is None:
        return ("–", "–", "–", "–", "–")
    d = pair.difference
    diff = "–" if math.isnan(d.value) else f"{100 * d.value:+.1f}"
    if not math.isnan(d.low):
        diff += f" [{100 * d.low:+.1f}, {100 * d.high:+.1f}]"
    return (str(pair.test.only_a), str(pair.test.only_b), diff, f"{pair.test.p_value:.3g}",
            "–" if pair.p_holm is None else f"{pair.p_holm:.3g}")


def example_view(group: Group, board: Leaderboard) -> ExampleView:
    """Every example of the group: input, gold, and each model's answer with its verdict and error class."""
    family, primary = group.family, group.family.primary
    samples = [{s.key: s for s in row.entry.task.samples or ()} for row in group.rows]
    keys = list(dict.fromkeys(key for by_key in samples for key in by_key))
    headers = ("Example", "Input", "Gold", *(f"{row.entry.name}: {what}" for row in group.rows
                                             for what in ("answer", "verdict")))
    rows = []
    for key in keys:
        first = next(by_key[key] for by_key in samples if key in by_key)
        cells, verdicts, classes = [], [], []
        for row, by_key in zip(group.rows, samples, strict=True):
            sample = by_key.get(key)
            if sample is None:
                cells += ["(not evaluated)", ""]
                continue
            right = sample.values.get(primary) == 1.0
            kind = _error_class(board, group.label, row.entry.name, key, right)
            verdicts.append(right)
            classes.append(kind)
            cells += [sample.answer, ("✓ " if right else "✗ ") + kind]
        rows.append(ExampleRow((key, str(first.doc.get(family.input_field, "")),
                                str(first.doc.get(family.gold_field, "")), *cells),
                               len(set(verdicts)) > 1, tuple(dict.fromkeys(classes))))
    known = SQL_CLASSES if family.name == "spider_sql" else VIGGO_CLASSES
    found = {kind for row in rows for kind in row.classes}
    return ExampleView(group.label.replace(" ", "-"), headers, tuple(rows),
                       tuple(k for k in known if k in found) + tuple(sorted(found - set(known))))


def _error_class(board: Leaderboard, label: str, name: str, key: str, right: bool) -> str:
    breakdown = board.sql_errors.get((label, name)) or board.viggo_confusion.get((label, name))
    found = breakdown.classes.get(key) if breakdown is not None else None
    return found or ("correct" if right else "wrong")


def _breakdown_blocks(group: Group, board: Leaderboard) -> list[Block]:
    out: list[Block] = []
    sql = [(row.entry.name, board.sql_errors[(group.label, row.entry.name)]) for row in group.rows
           if (group.label, row.entry.name) in board.sql_errors]
    if sql:
        headers = ("Model", "n", *SQL_CLASSES, "Verdicts changed")
        rows = tuple((name, str(b.n), *(str(b.counts[c]) for c in SQL_CLASSES), str(b.disagreements))
                     for name, b in sql)
        out += [Heading(4, "SQL error classes (predictions judged again)"),
                Table(headers, rows, (False, *([True] * (len(SQL_CLASSES) + 2))))]
    for row in group.rows:
        confusion = board.viggo_confusion.get((group.label, row.entry.name))
        if confusion is not None:
            out += [Heading(4, f"Function confusion: {row.entry.name} "
                               f"(function right on {100 * confusion.function_accuracy:.1f}%)"),
                    _confusion_table(confusion)]
    return out


def _confusion_table(confusion: Confusion) -> Table:
    predicted = confusion.predicted_functions
    headers = ("gold ↓ / predicted →", *predicted)
    rows = tuple((gold, *(str(confusion.counts.get((gold, p), 0) or "·") for p in predicted))
                 for gold in confusion.gold_functions)
    return Table(headers, rows, (False, *([True] * len(predicted))))


def _cost_lines(groups: Sequence[Group]) -> list[str]:
    lines: dict[str, str] = {}
    for group in groups:
        for row in group.rows:
            cost = row.entry.cost
            lines.setdefault(f"{row.entry.name} ({row.entry.task.variant})",
                             f"**{row.entry.name}** ({row.entry.task.variant}): training {cost.basis}; serving "
                             f"{row.entry.serving.basis}")
    return list(lines.values())


def summary_rows(board: Leaderboard) -> list[dict[str, object]]:
    """leaderboard.csv: one row per group, model and metric."""
    rows: list[dict[str, object]] = []
    for group in board.groups:
        for row in group.rows:
            cost = row.entry.cost
            for metric, score in row.scores.items():
                rows.append({
                    "group": group.label, "family": group.family.name, "task": row.entry.task.variant,
                    "rank": row.rank, "model": row.entry.name, "kind": row.entry.kind, "form": row.entry.form,
                    "metric": metric, "value": _num(score.value), "ci_low": _num(score.low),
                    "ci_high": _num(score.high), "n": score.n, "training_usd": cost.training_usd,
                    "gpu_hours": cost.gpu_hours, "hours_unit": cost.hours_unit,
                    "trained_tokens": cost.trained_tokens, "inference_usd": cost.inference_usd,
                    "inference_per_1k_usd": row.entry.serving.per_1k_usd,
                    "points_per_dollar": row.per_dollar if metric == group.family.primary else None,
                    "results_file": str(row.entry.task.results_file)})
    return rows


def pair_rows(board: Leaderboard) -> list[dict[str, object]]:
    """pairs.csv: one row per group, metric and pair of models."""
    rows: list[dict[str, object]] = []
    for group in board.groups:
        for pair in group.pairs:
            test, diff = pair.test, pair.difference
            rows.append({
                "group": group.label, "metric": pair.metric, "model_a": pair.a, "model_b": pair.b,
                "shared": pair.shared, "a_only_right": None if test is None else test.only_a,
                "b_only_right": None if test is None else test.only_b,
                "difference": None if diff is None else _num(diff.value),
                "diff_low": None if diff is None else _num(diff.low),
                "diff_high": None if diff is None else _num(diff.high),
                "p_value": None if test is None else test.p_value, "p_holm": pair.p_holm, "note": pair.note})
    return rows


def _num(value: float) -> float | None:
    return None if math.isnan(value) else value


def json_summary(board: Leaderboard) -> str:
    """A compact machine-readable summary (printed by the CLI as its last line)."""
    return json.dumps({group.label: {row.entry.name: {m: _num(s.value) for m, s in row.scores.items()}
                                     for row in group.rows} for group in board.groups}, ensure_ascii=False)

"""The report's content, built once as document blocks (Markdown and HTML) and as CSV rows."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ftbench.leaderboard._breakdown import SQL_CLASSES, Confusion, SqlBreakdown
from ftbench.leaderboard._compare import Group, PairTest, Row
from ftbench.leaderboard._document import Block, Bullets, Figure, Heading, Paragraph, Table
from ftbench.leaderboard._stats import CONFIDENCE, RESAMPLES, Estimate


@dataclass(frozen=True)
class Leaderboard:
    """Everything the report shows."""

    groups: tuple[Group, ...]
    sql_errors: dict[tuple[str, str], SqlBreakdown]  # (group label, model name)
    viggo_confusion: dict[tuple[str, str], Confusion]
    warnings: tuple[str, ...]
    runs: int


SUMMARY_HEADERS = ("group", "family", "task", "rank", "model", "kind", "form", "metric", "value", "ci_low",
                   "ci_high", "n", "training_usd", "gpu_hours", "trained_tokens", "inference_usd",
                   "points_per_dollar", "results_file")
PAIR_HEADERS = ("group", "metric", "model_a", "model_b", "shared", "a_only_right", "b_only_right",
                "difference", "diff_low", "diff_high", "p_value", "p_holm", "note")


def blocks(board: Leaderboard, figures: Sequence[Figure]) -> list[Block]:
    out: list[Block] = [
        Heading(1, "ftbench leaderboard"),
        Paragraph(f"{board.runs} run(s), {len(board.groups)} comparison group(s). Scores in %, with "
                  f"{CONFIDENCE:.0%} percentile bootstrap intervals ({RESAMPLES:,} resamples of the examples). "
                  "Pairs: McNemar's exact test on per-example right/wrong over the examples both models "
                  "answered, p-values Holm-adjusted per group and metric; Δ is A − B with a paired bootstrap "
                  "interval. Points per $: primary score (percentage points) per training dollar."),
    ]
    if board.warnings:
        out += [Heading(2, "Warnings"), Bullets(board.warnings, css="warnings")]
    for group in board.groups:
        out += _group_blocks(group, board)
    if figures:
        out.append(Heading(2, "Plots"))
        out.extend(figures)
    out += [Heading(2, "Cost basis"), Bullets(tuple(_cost_lines(board.groups)) or ("no costs known",))]
    return out


def _group_blocks(group: Group, board: Leaderboard) -> list[Block]:
    family = group.family
    settings = " · ".join(f"{key} `{value}`" for key, value in group.settings.items())
    out: list[Block] = [Heading(2, group.label), Paragraph(f"Settings: {settings}. Ranked by "
                                                           f"**{family.primary}**.")]
    metrics = [metric.name for metric in family.metrics]
    headers = ("Rank", "Model", "Kind", "Task", "n", *metrics, "Training $", "GPU-h", "Trained tokens",
               "Inference $", f"{family.primary} pts/$")
    rows = tuple((str(row.rank), row.entry.name, row.entry.kind, row.entry.task.variant, str(row.scores[
        family.primary].n), *(_score(row.scores[name]) for name in metrics), *_cost_cells(row)) for row in group.rows)
    out.append(Table(headers, rows, (True, False, False, False, True, *([True] * (len(metrics) + 5)))))
    if len(group.rows) > 1:
        out += [Heading(3, "Paired comparisons"), _pairs_table(group.pairs)]
    out += _breakdown_blocks(group, board)
    return out


def _score(estimate: Estimate) -> str:
    if math.isnan(estimate.value):
        return "–"
    if math.isnan(estimate.low):
        return f"{100 * estimate.value:.1f} (no CI)"
    return f"{100 * estimate.value:.1f} [{100 * estimate.low:.1f}, {100 * estimate.high:.1f}]"


def _money(value: float | None) -> str:
    return "–" if value is None else f"{value:,.2f}"


def _cost_cells(row: Row) -> tuple[str, ...]:
    cost = row.entry.cost
    return (_money(cost.training_usd), "–" if cost.gpu_hours is None else f"{cost.gpu_hours:.3g}",
            "–" if cost.trained_tokens is None else f"{cost.trained_tokens:,}", _money(cost.inference_usd),
            "–" if row.per_dollar is None else f"{row.per_dollar:.3g}")


def _pairs_table(pairs: Sequence[PairTest]) -> Table:
    headers = ("A", "B", "Metric", "Shared", "A only right", "B only right", "Δ A−B [95% CI]", "p", "p (Holm)",
               "Note")
    rows = tuple((p.a, p.b, p.metric, str(p.shared), *_pair_cells(p), p.note or "") for p in pairs)
    return Table(headers, rows, (False, False, False, True, True, True, True, True, True, False))


def _pair_cells(pair: PairTest) -> tuple[str, str, str, str, str]:
    if pair.test is None or pair.difference is None:
        return ("–", "–", "–", "–", "–")
    d = pair.difference
    diff = "–" if math.isnan(d.value) else f"{100 * d.value:+.1f}"
    if not math.isnan(d.low):
        diff += f" [{100 * d.low:+.1f}, {100 * d.high:+.1f}]"
    return (str(pair.test.only_a), str(pair.test.only_b), diff, f"{pair.test.p_value:.3g}",
            "–" if pair.p_holm is None else f"{pair.p_holm:.3g}")


def _breakdown_blocks(group: Group, board: Leaderboard) -> list[Block]:
    out: list[Block] = []
    sql = [(row.entry.name, board.sql_errors[(group.label, row.entry.name)]) for row in group.rows
           if (group.label, row.entry.name) in board.sql_errors]
    if sql:
        headers = ("Model", "n", *SQL_CLASSES, "Verdicts changed")
        rows = tuple((name, str(b.n), *(str(b.counts[c]) for c in SQL_CLASSES), str(b.disagreements))
                     for name, b in sql)
        out += [Heading(3, "SQL error classes (predictions judged again)"),
                Table(headers, rows, (False, *([True] * (len(SQL_CLASSES) + 2))))]
    for row in group.rows:
        confusion = board.viggo_confusion.get((group.label, row.entry.name))
        if confusion is not None:
            out += [Heading(3, f"Function confusion: {row.entry.name} "
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
                             f"**{row.entry.name}** ({row.entry.task.variant}): {cost.basis}"
                             + ("" if cost.inference_usd is None else f"; inference ${cost.inference_usd:,.2f}"))
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
                    "gpu_hours": cost.gpu_hours, "trained_tokens": cost.trained_tokens,
                    "inference_usd": cost.inference_usd,
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

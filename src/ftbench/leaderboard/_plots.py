"""The report's plots (matplotlib, PNG and SVG): per task, accuracy against training and serving cost (the decision
chart); accuracy with confidence intervals; training curves.

Figures are drawn on ``matplotlib.figure.Figure`` objects, never through pyplot, so no GUI backend or global
state is involved; SVG output is made reproducible (fixed hash salt, no date).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ftbench.leaderboard._compare import Group, Row
from ftbench.leaderboard._curves import Curve

_COLOURS = ("#2f6fb3", "#d9822b", "#3a9b5c", "#b8433f", "#7b5ea7", "#8c6d31")


def save(figure: Figure, folder: Path, stem: str) -> tuple[Path, Path]:
    """Write ``<stem>.png`` and ``<stem>.svg``."""
    png, svg = folder / f"{stem}.png", folder / f"{stem}.svg"
    figure.savefig(png, dpi=110, bbox_inches="tight")
    with matplotlib.rc_context({"svg.hashsalt": "ftbench", "svg.fonttype": "none"}):
        figure.savefig(svg, bbox_inches="tight", metadata={"Date": None})
    return png, svg


def accuracy_figure(groups: list[Group]) -> Figure:
    """One panel per task group: every metric of every model as a point with its 95% CI, in percent."""
    heights = [max(1.6, 0.45 * len(group.rows) * len(group.family.metrics) + 0.9) for group in groups]
    figure = Figure(figsize=(8.5, sum(heights) + 0.4), layout="constrained")
    axes = figure.subplots(len(groups), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, group in zip(axes, groups, strict=True):
        _accuracy_panel(ax, group)
    return figure


def _accuracy_panel(ax: Axes, group: Group) -> None:
    metrics = group.family.metrics
    step = 0.8 / len(metrics)
    rows = list(reversed(group.rows))  # best at the top
    for m, metric in enumerate(metrics):
        ys = [i + 0.4 - step * (m + 0.5) for i in range(len(rows))]
        xs = [100 * row.scores[metric.name].value for row in rows]
        low = [_gap(row, metric.name, "low") for row in rows]
        high = [_gap(row, metric.name, "high") for row in rows]
        ax.errorbar(xs, ys, xerr=[low, high], fmt="o", ms=4, capsize=3, color=_COLOURS[m % len(_COLOURS)],
                    label=metric.name)
    ax.set_yticks(range(len(rows)), [row.entry.name for row in rows])
    ax.set_xlim(-2, 102)
    ax.set_xlabel("score (%) with 95% CI")
    ax.set_title(group.label, loc="left", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)


def _gap(row: Row, metric: str, side: str) -> float:
    score = row.scores[metric]
    bound = score.low if side == "low" else score.high
    if math.isnan(bound) or math.isnan(score.value):
        return 0.0
    return 100 * abs(score.value - bound)


_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*")


def decision_figure(group: Group) -> Figure:
    """Primary score (95% CI) against training cost and against the cost of 1,000 queries; one colour and marker
    per model, named in the legend (labels beside the points would overlap when costs are alike)."""
    figure = Figure(figsize=(9, 3.6), layout="constrained")
    left, right = figure.subplots(1, 2, sharey=True)
    primary = group.family.primary
    panels: tuple[tuple[Axes, str, Callable[[Row], float | None]], ...] = (
        (left, "training cost (US$)", lambda row: row.entry.cost.training_usd),
        (right, "cost of serving 1,000 queries (US$)", lambda row: row.entry.serving.per_1k_usd))
    for ax, label, cost_of in panels:
        priced = [(row, cost_of(row)) for row in group.rows]
        for index, (row, cost) in enumerate(priced):
            if cost is None:
                continue
            ax.errorbar([cost], [100 * row.scores[primary].value],
                        yerr=[[_gap(row, primary, "low")], [_gap(row, primary, "high")]], fmt=_MARKERS[index % 8],
                        ms=7, capsize=4, color=_COLOURS[index % len(_COLOURS)], label=row.entry.name)
        _cost_axis(ax, [cost for _, cost in priced if cost is not None], label)
    left.set_ylabel(f"{primary} (%), 95% CI")
    left.set_ylim(-3, 103)
    handles, labels = left.get_legend_handles_labels() or right.get_legend_handles_labels()
    if not handles:
        handles, labels = right.get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="outside lower center", ncols=min(3, len(handles)), fontsize=8)
    figure.suptitle(f"{group.label}: {primary} against cost", x=0.01, ha="left", fontsize=11)
    return figure


def _cost_axis(ax: Axes, costs: list[float], label: str) -> None:
    ax.set_xlabel(label)
    ax.grid(alpha=0.3)
    if not costs:
        ax.text(0.5, 0.5, "cost unknown", ha="center", va="center", transform=ax.transAxes, color="#777")
        return
    positive = [c for c in costs if c > 0]
    if positive and len(positive) == len(costs) and max(positive) / min(positive) > 20:
        ax.set_xscale("log")
    else:
        ax.set_xlim(0, max(costs) * 1.25 or 1)


def curves_figure(family: str, curves: list[Curve]) -> Figure:
    """Loss per step of every model of one task: evaluation loss solid, training loss faint."""
    figure = Figure(figsize=(8.5, 3.8), layout="constrained")
    ax = figure.subplots()
    for index, curve in enumerate(curves):
        colour = _COLOURS[index % len(_COLOURS)]
        if curve.train:
            ax.plot(*zip(*curve.train, strict=True), color=colour, alpha=0.3, lw=1, label=f"{curve.name} (train)")
        if curve.eval:
            ax.plot(*zip(*curve.eval, strict=True), color=colour, lw=2, marker="o", ms=3,
                    label=f"{curve.name} (eval)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"{family}: training curves", loc="left", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return figure

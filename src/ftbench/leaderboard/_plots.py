"""The report's plots (matplotlib, PNG and SVG): accuracy with confidence intervals, and accuracy vs training cost.

Figures are drawn on ``matplotlib.figure.Figure`` objects, never through pyplot, so no GUI backend or global
state is involved; SVG output is made reproducible (fixed hash salt, no date).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ftbench.leaderboard._compare import Group, Row

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
    ax.set_xlabel("score (%) with 95% bootstrap CI")
    ax.set_title(group.label, loc="left", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)


def _gap(row: Row, metric: str, side: str) -> float:
    score = row.scores[metric]
    bound = score.low if side == "low" else score.high
    if math.isnan(bound) or math.isnan(score.value):
        return 0.0
    return 100 * abs(score.value - bound)


def cost_figure(groups: list[Group]) -> Figure:
    """Primary metric vs training cost, one colour per task group; runs of unknown cost are left out (noted)."""
    figure = Figure(figsize=(8.5, 5), layout="constrained")
    ax = figure.subplots()
    plotted = 0
    for g, group in enumerate(groups):
        priced = [row for row in group.rows if row.entry.cost.training_usd is not None]
        if not priced:
            continue
        primary = group.family.primary
        xs = [float(row.entry.cost.training_usd or 0.0) for row in priced]
        ys = [100 * row.scores[primary].value for row in priced]
        errors = [[_gap(row, primary, "low") for row in priced], [_gap(row, primary, "high") for row in priced]]
        ax.errorbar(xs, ys, yerr=errors, fmt="o", capsize=3, color=_COLOURS[g % len(_COLOURS)],
                    label=f"{group.label} ({primary})")
        for x, y, row in zip(xs, ys, priced, strict=True):
            ax.annotate(row.entry.name, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
        plotted += len(priced)
    if plotted:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no training cost known for any run\n(give run_json or cost inputs in models.yaml)",
                ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("training cost (US$)")
    ax.set_ylabel("primary metric (%) with 95% CI")
    ax.set_title("Accuracy vs training cost", loc="left", fontsize=11)
    ax.grid(alpha=0.3)
    return figure

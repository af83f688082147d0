"""The leaderboard: read lm-eval output folders, compare the runs with confidence, and write the report.

    report = build_leaderboard([Path("runs")], Path("report"), models_file=Path("models.yaml"))
    report.html, report.markdown, report.csv, report.pairs_csv, report.plots

Reading: :mod:`._read` (``results_*.json`` + ``samples_*.jsonl``); naming and cost: :mod:`._models`
(``models.yaml``, ``run.json``); statistics: :mod:`._stats`; grouping, ranking and paired tests:
:mod:`._compare`; error breakdown: :mod:`._breakdown`; output: :mod:`._report`, :mod:`._document`,
:mod:`._plots`.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from tqdm import tqdm

from ftbench.errors import InputError
from ftbench.leaderboard._breakdown import Confusion, SqlBreakdown, sql_breakdown, viggo_confusion
from ftbench.leaderboard._compare import Entry, Group, compare
from ftbench.leaderboard._curves import Curve, read_curve
from ftbench.leaderboard._document import Figure, to_html, to_markdown
from ftbench.leaderboard._models import ModelSpec, infer_kind, read_models_file, resolve_cost, serving_cost
from ftbench.leaderboard._plots import accuracy_figure, curves_figure, decision_figure, save
from ftbench.leaderboard._read import model_dirs, read_model_run
from ftbench.leaderboard._report import (
    PAIR_HEADERS,
    SUMMARY_HEADERS,
    Figures,
    Leaderboard,
    blocks,
    json_summary,
    pair_rows,
    summary_rows,
)

__all__ = ["Leaderboard", "Report", "build_leaderboard", "collect_entries", "compare_runs", "read_answers"]


@dataclass(frozen=True)
class Report:
    """The files written, the comparison behind them, and the warnings raised on the way."""

    out_dir: Path
    markdown: Path
    html: Path
    csv: Path
    pairs_csv: Path
    plots: tuple[Path, ...]
    board: Leaderboard

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.board.warnings

    @property
    def summary(self) -> str:
        return json_summary(self.board)


def build_leaderboard(inputs: Sequence[Path], out_dir: Path, models_file: Path | None = None, *,
                      breakdown: bool = True, progress: bool = True, notes: Sequence[str] = ()) -> Report:
    """Read the runs, compare them and write ``leaderboard.{md,html,csv}``, ``pairs.csv`` and the plots.
    ``notes`` (``"<family>: text"``) are said under that task's decision."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder")
    board = compare_runs(inputs, models_file, breakdown=breakdown, progress=progress)
    return write_report(replace(board, notes=tuple(notes)), out_dir)


def read_answers(results_dir: Path, task: str) -> dict[str, str]:
    """The answers (as the report reads them) of the newest run of ``task`` below ``results_dir``, by example."""
    for folder in model_dirs(results_dir):
        found = read_model_run(folder).tasks.get(task)
        if found is not None and found.samples is not None:
            return {sample.key: sample.answer for sample in found.samples}
    raise InputError(f"{results_dir}: no logged samples of {task}")


def compare_runs(inputs: Sequence[Path], models_file: Path | None = None, *, breakdown: bool = True,
                 progress: bool = True) -> Leaderboard:
    """Everything the report shows, without writing it."""
    entries, warnings, runs = collect_entries(inputs, models_file)
    groups, compare_warnings = compare(entries)
    sql: dict[tuple[str, str], SqlBreakdown] = {}
    viggo: dict[tuple[str, str], Confusion] = {}
    if breakdown:
        sql, viggo = _breakdowns(groups, progress)
    return Leaderboard(tuple(groups), sql, viggo, tuple(warnings + compare_warnings), runs)


def collect_entries(inputs: Sequence[Path], models_file: Path | None) -> tuple[list[Entry], list[str], int]:
    """One entry per (model folder, task), named by ``models.yaml`` or by its model arguments."""
    specs: dict[Path, ModelSpec | None] = {}
    for spec in read_models_file(models_file) if models_file is not None else []:
        folders = model_dirs(spec.results)
        if len(folders) > 1:
            raise InputError(f"{models_file}: {spec.name!r}: {spec.results} holds the results of {len(folders)} "
                             f"models ({', '.join(d.name for d in folders)}); point 'results' at one of them")
        specs[folders[0].resolve()] = spec
    for path in inputs:
        for folder in model_dirs(path):
            specs.setdefault(folder.resolve(), None)
    if not specs:
        raise InputError("no runs given: pass lm-eval --output_path folders and/or --models models.yaml")
    entries: list[Entry] = []
    warnings: list[str] = []
    for folder, named in specs.items():
        run = read_model_run(folder)
        warnings.extend(run.warnings)
        name = named.name if named is not None else run.default_name
        kind, cost = infer_kind(run, named), resolve_cost(run, named)
        variants = Counter(task.family.name for task in run.tasks.values())
        for task in run.tasks.values():
            label = f"{name} [{task.variant}]" if variants[task.family.name] > 1 else name
            entries.append(Entry(label, kind, run, task, cost, serving_cost(task, run, named)))
    return _distinct_default_names(entries, {f for f, s in specs.items() if s is None}), warnings, len(specs)


def _distinct_default_names(entries: list[Entry], unnamed: set[Path]) -> list[Entry]:
    """Runs without a models.yaml name that would share one get their task variant, then a number, appended."""
    entries = _rename_clashes(entries, unnamed, lambda entry, _: f"{entry.name} [{entry.task.variant}]")
    return _rename_clashes(entries, unnamed, lambda entry, k: f"{entry.name} #{k}")


def _rename_clashes(entries: list[Entry], unnamed: set[Path], rename: Callable[[Entry, int], str]) -> list[Entry]:
    counts = Counter((e.task.family.name, e.name) for e in entries)
    seen: Counter[tuple[str, str]] = Counter()
    renamed: list[Entry] = []
    for entry in entries:
        key = (entry.task.family.name, entry.name)
        seen[key] += 1
        clash = counts[key] > 1 and entry.run.model_dir.resolve() in unnamed
        renamed.append(replace(entry, name=rename(entry, seen[key])) if clash else entry)
    return renamed


def _breakdowns(groups: Sequence[Group], progress: bool) -> tuple[dict[tuple[str, str], SqlBreakdown],
                                                                    dict[tuple[str, str], Confusion]]:
    sql: dict[tuple[str, str], SqlBreakdown] = {}
    viggo: dict[tuple[str, str], Confusion] = {}
    sql_rows = [(g, r) for g in groups if g.family.name == "spider_sql" for r in g.rows]
    total = sum(len(r.entry.task.samples or ()) for _, r in sql_rows)
    with tqdm(total=total, desc="judging SQL again", unit="query", disable=not progress or total == 0) as bar:
        for group, row in sql_rows:
            found = sql_breakdown(row.entry.task, partial(bar.update, 1))
            if found is not None:
                sql[(group.label, row.entry.name)] = found
    for group in groups:
        for row in group.rows:
            if group.family.name == "viggo":
                confusion = viggo_confusion(row.entry.task)
                if confusion is not None:
                    viggo[(group.label, row.entry.name)] = confusion
    return sql, viggo


def write_report(board: Leaderboard, out_dir: Path) -> Report:
    """Write the plots, ``leaderboard.{md,html,csv}`` (the HTML self-contained) and ``pairs.csv``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots: list[Path] = []
    decision: dict[str, Figure] = {}
    for index, group in enumerate(board.groups, 1):
        stem = f"decision_{index}"
        plots.extend(save(decision_figure(group), out_dir, stem))
        decision[group.label] = Figure(stem, f"{group.label}: {group.family.primary} (95% CI) against the cost to "
                                             "train and the cost of serving 1,000 queries")
    curves: dict[str, Figure] = {}
    for family, found in _curves(board.groups).items():
        stem = f"curves_{family}"
        plots.extend(save(curves_figure(family, found), out_dir, stem))
        curves[family] = Figure(stem, f"{family}: loss per step from each model's training record")
    other: list[Figure] = []
    if board.groups:
        plots.extend(save(accuracy_figure(list(board.groups)), out_dir, "accuracy"))
        other.append(Figure("accuracy", "Every metric with its 95% interval"))
    content = blocks(board, Figures(decision, curves, other))
    markdown = out_dir / "leaderboard.md"
    markdown.write_text(to_markdown(content), encoding="utf-8")
    html = out_dir / "leaderboard.html"
    html.write_text(to_html(content, "ftbench leaderboard", out_dir), encoding="utf-8")
    summary_csv, pairs_csv = out_dir / "leaderboard.csv", out_dir / "pairs.csv"
    _write_csv(summary_csv, SUMMARY_HEADERS, summary_rows(board))
    _write_csv(pairs_csv, PAIR_HEADERS, pair_rows(board))
    return Report(out_dir, markdown, html, summary_csv, pairs_csv, tuple(plots), board)


def _curves(groups: Sequence[Group]) -> dict[str, list[Curve]]:
    """Training curves per task family, one per model that has a readable training record."""
    found: dict[str, dict[str, Curve]] = {}
    for group in groups:
        for row in group.rows:
            run_json = row.entry.cost.run_json
            curve = read_curve(row.entry.name, run_json) if run_json is not None else None
            if curve is not None:
                found.setdefault(group.family.name, {}).setdefault(curve.name, curve)
    return {family: list(by_name.values()) for family, by_name in found.items()}


def _write_csv(path: Path, headers: Sequence[str], rows: list[dict[str, object]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(headers))
        writer.writeheader()
        writer.writerows(rows)

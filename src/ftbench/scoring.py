"""Score saved predictions from a JSONL file, streaming results so an interrupted run keeps its work.

One runner serves every task: a :class:`RowScorer` says which fields a row needs, scores one row, and
summarises the metric columns of all rows. The runner reads and validates the input, scores rows in
parallel (ordered), writes each scored row as soon as it is ready, shows a progress bar on stderr, and
returns the summary that the CLI prints as its last line.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from ftbench.errors import InputError

Row = dict[str, Any]


class RowScorer(Protocol):
    """What a task supplies to the runner. Instances must be picklable (they travel to workers)."""

    #: Fields every input row must carry; each must be a string.
    required: tuple[str, ...]

    def check(self, row: Row) -> None:
        """Raise ValueError, saying why, if ``row`` can never be scored (e.g. its gold does not parse).

        Called for every row before any scoring starts, so bad input is reported with its line number.
        """
        ...

    def score(self, row: Row) -> Row:
        """Return the fields to add to ``row`` (metric columns)."""
        ...

    def summarize(self, scored: Sequence[Row]) -> dict[str, Any]:
        """Return the summary of all scored rows (without ``n``, which the runner adds)."""
        ...


@dataclass(frozen=True)
class ScoreRun:
    """Where the rows come from, where they go, and how much parallelism to use."""

    input: Path
    output: Path
    jobs: int = 1
    progress: bool = True


def read_rows(path: Path, scorer: RowScorer) -> list[Row]:
    """Read and validate every line first, so a bad line is reported before any long work starts."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read input ({err.strerror})") from err
    rows: list[Row] = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if line.strip():
            rows.append(_parse_line(path, number, line, scorer))
    return rows


def _parse_line(path: Path, number: int, line: bytes, scorer: RowScorer) -> Row:
    where = f"{path}:{number}"
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{where}: not valid UTF-8 ({err.reason} at byte {err.start})") from err
    try:
        row = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{where}: not a JSON object ({err.msg} at column {err.colno})") from err
    if not isinstance(row, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(row).__name__}")
    missing = [name for name in scorer.required if name not in row]
    if missing:
        raise InputError(f"{where}: missing field(s) {', '.join(missing)}")
    wrong = [name for name in scorer.required if not isinstance(row[name], str)]
    if wrong:
        raise InputError(f"{where}: field(s) {', '.join(wrong)} must be strings")
    try:
        scorer.check(row)
    except ValueError as err:
        raise InputError(f"{where}: {err}") from err
    return row


def score_file(scorer: RowScorer, run: ScoreRun) -> dict[str, Any]:
    """Score ``run.input`` into ``run.output`` (JSONL, one line per input row, same order)."""
    rows = read_rows(run.input, scorer)
    run.output.parent.mkdir(parents=True, exist_ok=True)
    scored: list[Row] = []
    with run.output.open("w", encoding="utf-8") as out:
        bar = tqdm(total=len(rows), desc=f"scoring {run.input.name}", unit="row",
                   disable=not run.progress, file=sys.stderr)
        for row, added in zip(rows, _score_all(scorer, rows, run.jobs), strict=True):
            full = {**row, **added}
            out.write(json.dumps(full, ensure_ascii=False) + "\n")
            out.flush()
            scored.append(full)
            bar.update(1)
        bar.close()
    return {"n": len(scored), **scorer.summarize(scored)}


def _score_all(scorer: RowScorer, rows: list[Row], jobs: int) -> Iterator[Row]:
    if jobs <= 1 or len(rows) < 2:
        yield from (scorer.score(row) for row in rows)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes=jobs) as pool:
        yield from pool.imap(scorer.score, rows, chunksize=max(1, min(16, len(rows) // (jobs * 8))))


def mean_of(scored: Sequence[Mapping[str, Any]], field: str) -> float:
    """Share of rows whose ``field`` is true (0.0 for no rows)."""
    return sum(bool(row[field]) for row in scored) / len(scored) if scored else 0.0

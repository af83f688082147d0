"""Score saved predictions from a JSONL file, streaming results so an interrupted run keeps its work.

One runner serves every task: a :class:`RowScorer` says which fields a row needs, scores one row, and
summarises the metric columns of all rows. The runner reads and validates the input, scores rows in
parallel (ordered), appends each scored row to the output as soon as it is ready (whole lines, under a
lock, so a crash or a second writer cannot corrupt it), shows a progress bar on stderr, and returns the
summary that the CLI prints as its last line. ``resume`` keeps the rows an earlier run already wrote.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from ftbench._jsonl import jsonl_objects
from ftbench._output import RowJournal, row_keys
from ftbench._pool import BATCH_ROWS, RowsInterrupted, score_rows
from ftbench.errors import EXIT_OK, EXIT_UNJUDGED_ROWS, InputError, Interrupted

__all__ = ["BATCH_ROWS", "Row", "RowScorer", "ScoreReport", "ScoreRun", "mean_of", "read_rows", "score_file"]

Row = dict[str, Any]


class RowScorer(Protocol):
    """What a task supplies to the runner. Instances must be picklable (they travel to workers). A scorer
    may also have ``score_many(rows) -> Iterable[Row]``, the fields of ``score`` for each row, which the
    runner calls with ``BATCH_ROWS`` rows at once (see :func:`ftbench._pool.score_rows`); an iterator that
    gives each row's fields as soon as they are ready lets an interrupted run keep every row scored."""

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

    def failed(self, row: Row, detail: str) -> Row:
        """The fields to add to a row that could not be scored at all (its process died twice):
        wrong, with ``error: internal``."""
        ...

    def summarize(self, scored: Sequence[Row]) -> dict[str, Any]:
        """Return the summary of all scored rows (without ``n``, which the runner adds)."""
        ...

    def warnings(self, scored: Sequence[Row]) -> list[str]:
        """Conditions a user must hear about (on stderr), e.g. rows the judge could not judge."""
        ...


@dataclass(frozen=True)
class ScoreRun:
    """Where the rows come from, where they go, and how much parallelism to use."""

    input: Path
    output: Path
    jobs: int = 1
    progress: bool = True
    #: Keep the rows already in ``output`` (matched by ``id`` and content) and score only the others.
    resume: bool = False


@dataclass(frozen=True)
class ScoreReport:
    """The summary line, the warnings for stderr, and the exit code a CLI should end with."""

    summary: dict[str, Any]
    warnings: tuple[str, ...] = ()
    internal: int = 0

    @property
    def exit_code(self) -> int:
        return EXIT_UNJUDGED_ROWS if self.internal else EXIT_OK


def read_rows(path: Path, scorer: RowScorer) -> list[Row]:
    """Read and validate every line first, so a bad line is reported before any long work starts."""
    return [_checked(where, row, scorer) for where, row in jsonl_objects(path, "input")]


def _checked(where: str, row: Row, scorer: RowScorer) -> Row:
    missing = [name for name in scorer.required if name not in row]
    if missing:
        raise InputError(f"{where}: missing field(s) {', '.join(missing)}")
    wrong = [name for name in scorer.required if not isinstance(row[name], str)]
    if wrong:
        raise InputError(f"{where}: field(s) {', '.join(wrong)} must be strings")
    _check_id(where, row)
    try:
        scorer.check(row)
    except ValueError as err:
        raise InputError(f"{where}: {err}") from err
    return row


def _check_id(where: str, row: Row) -> None:
    """An ``id`` names the row (in --resume); it must be a plain JSON value."""
    value = row.get("id")
    if value is not None and not isinstance(value, str | int | float | bool):
        raise InputError(f"{where}: id must be a string or a number")


def score_file(scorer: RowScorer, run: ScoreRun) -> ScoreReport:
    """Score ``run.input`` into ``run.output`` (JSONL, one line per input row, same order)."""
    _check_paths(run)
    rows = read_rows(run.input, scorer)
    if not rows:
        raise InputError(f"{run.input}: no rows to score")
    with RowJournal(run.output, resume=run.resume) as journal:
        final = journal.kept(rows, row_keys(rows))
        todo = [index for index in range(len(rows)) if final[index] is None]
        bar = tqdm(total=len(rows), initial=len(rows) - len(todo), desc=f"scoring {run.input.name}", unit="row",
                   disable=not run.progress, file=sys.stderr)
        try:
            _score_into(_Sink(rows, final, journal, bar), scorer, todo, run.jobs)
        except KeyboardInterrupt:
            bar.close()
            done = sum(row is not None for row in final)
            raise Interrupted(f"interrupted: {done} of {len(rows)} rows scored are in {run.output}; "
                              "run again with --resume to score the rest") from None
        bar.close()
        scored = [row for row in final if row is not None]
        journal.finish(scored)
    return _report(scorer, scored)


@dataclass
class _Sink:
    """Where a scored row goes: the run's final rows, the output file (at once), the progress bar."""

    rows: list[Row]
    final: list[Row | None]
    journal: RowJournal
    bar: tqdm[Any]

    def keep(self, index: int, added: Row) -> None:
        full = {**self.rows[index], **added}
        self.final[index] = full
        self.journal.append(full)
        self.bar.update(1)


def _score_into(sink: _Sink, scorer: RowScorer, todo: list[int], jobs: int) -> None:
    """Score the rows at ``todo``, each kept as soon as it is scored; on Ctrl-C, also those scored out of
    order (a later row before an earlier one), then re-raise."""
    try:
        with closing(score_rows(scorer, [sink.rows[i] for i in todo], jobs)) as results:  # workers stop at once
            for index, added in zip(todo, results, strict=True):
                sink.keep(index, added)
    except RowsInterrupted as interrupt:
        for position, added in interrupt.scored.items():
            sink.keep(todo[position], added)  # --resume puts them in place
        raise


def _report(scorer: RowScorer, scored: list[Row]) -> ScoreReport:
    internal = sum(row.get("error") == "internal" for row in scored)
    return ScoreReport({"n": len(scored), **scorer.summarize(scored)}, tuple(scorer.warnings(scored)), internal)


def _check_paths(run: ScoreRun) -> None:
    """The output must not be the input (a crash would leave neither), nor a folder."""
    same = run.input.resolve() == run.output.resolve()
    if not same and run.input.exists() and run.output.exists():
        same = run.input.samefile(run.output)
    if same:
        raise InputError(f"--output {run.output} is the input file; write the scores to another file")
    if run.output.is_dir():
        raise InputError(f"--output {run.output} is a folder; give a file path")


def mean_of(scored: Sequence[Mapping[str, Any]], field: str) -> float:
    """Share of rows whose ``field`` is true (0.0 for no rows)."""
    return sum(bool(row[field]) for row in scored) / len(scored) if scored else 0.0

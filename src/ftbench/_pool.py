"""Scoring rows in worker processes, in order, surviving workers that die or hang.

A process that dies (killed, out of memory) breaks the pool; the rows that were in flight are then
scored one at a time in a fresh single-process pool, each retried once in yet another fresh pool if it
breaks that one too; a row that still fails gets the scorer's ``failed`` fields (``error: internal``).
A pool that gives no result for ``stall_s`` is treated as broken (its processes are killed).
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ftbench.scoring import RowScorer

Row = dict[str, Any]
#: Rows in flight per worker process (keeps every process busy without holding the whole input).
_IN_FLIGHT_PER_JOB = 4
#: Rows a single-process run hands a scorer's ``score_many`` at once.
BATCH_ROWS = 16
#: Default time without any result after which a pool counts as hung.
STALL_S = 300.0


class _PoolFailed(Exception):
    """The pool broke (a process died) or stalled; rows from ``start`` on were not all scored."""


def score_rows(scorer: RowScorer, rows: list[Row], jobs: int, stall_s: float | None = None) -> Iterator[Row]:
    """The added fields of each row, in input order."""
    stall = stall_s if stall_s is not None else float(getattr(scorer, "stall_s", STALL_S))
    if jobs <= 1 or len(rows) < 2:
        yield from _in_batches(scorer, rows)
        return
    done = 0
    while done < len(rows):
        stream = _Ordered(scorer, rows, done, jobs, stall)
        for added in stream:
            done += 1
            yield added
        if stream.broken_until > done:
            yield from _one_by_one(scorer, rows[done:stream.broken_until], stall)
            done = stream.broken_until


def _in_batches(scorer: RowScorer, rows: list[Row]) -> Iterator[Row]:
    """In this process: through the scorer's ``score_many`` (the same fields as ``score``, row by row)
    ``BATCH_ROWS`` rows at a time when it has one, so a scorer that sends its rows to another process
    makes one round trip per batch, not per row."""
    many = getattr(scorer, "score_many", None)
    if many is None:
        yield from (scorer.score(row) for row in rows)
        return
    for start in range(0, len(rows), BATCH_ROWS):
        yield from many(rows[start:start + BATCH_ROWS])


class _Ordered:
    """Iterates the results of ``rows[start:]`` from a pool of ``jobs`` processes, in order; stops early
    when the pool fails, leaving in ``broken_until`` the end of the rows that were in flight."""

    def __init__(self, scorer: RowScorer, rows: list[Row], start: int, jobs: int, stall_s: float) -> None:
        self.scorer, self.rows, self.start, self.jobs, self.stall_s = scorer, rows, start, jobs, stall_s
        self.broken_until = start

    def __iter__(self) -> Iterator[Row]:
        pool = _new_pool(self.jobs)
        futures: deque[Future[Row]] = deque()
        submitted = self.start
        try:
            while submitted < len(self.rows) or futures:
                while submitted < len(self.rows) and len(futures) < self.jobs * _IN_FLIGHT_PER_JOB:
                    futures.append(pool.submit(self.scorer.score, self.rows[submitted]))
                    submitted += 1
                try:
                    added = _result(futures[0], self.stall_s)
                except _PoolFailed:
                    self.broken_until = submitted
                    _kill(pool)
                    return
                futures.popleft()
                yield added
        except BaseException:  # Ctrl-C, or the consumer stopped: do not wait for rows nobody will read
            _kill(pool)
            raise
        finally:
            _close(pool)


def _one_by_one(scorer: RowScorer, rows: list[Row], stall_s: float) -> Iterator[Row]:
    """Rows in a single-process pool, one at a time, so the one that breaks it is known: it is retried
    once in a fresh pool, and gets ``scorer.failed`` if it breaks that one too."""
    pool = _new_pool(1)
    try:
        for row in rows:
            for attempt in range(2):
                try:
                    yield _result(pool.submit(scorer.score, row), stall_s)
                    break
                except _PoolFailed:
                    _kill(pool)
                    _close(pool)
                    pool = _new_pool(1)
                    if attempt == 1:
                        yield scorer.failed(row, "its worker process died or hung twice")
    except BaseException:
        _kill(pool)
        raise
    finally:
        _close(pool)


def _result(future: Future[Row], stall_s: float) -> Row:
    try:
        return future.result(timeout=stall_s)
    except BrokenProcessPool as err:
        raise _PoolFailed(str(err)) from err
    except FutureTimeout as err:
        raise _PoolFailed(f"no result for {stall_s:.0f}s") from err


def _new_pool(jobs: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_ignore_interrupts)


def _ignore_interrupts() -> None:
    """Ctrl-C is the parent's to handle: it stops the run and keeps what was scored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _kill(pool: ProcessPoolExecutor) -> None:
    """End a broken or hung pool's processes (a hung one would never take the shutdown request)."""
    processes = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        if process.is_alive():
            process.kill()


def _close(pool: ProcessPoolExecutor) -> None:
    pool.shutdown(wait=True, cancel_futures=True)

"""Scoring rows in worker processes, in order, surviving workers that die or hang.

Each worker process takes rows ``BATCH_ROWS`` at a time (through the scorer's ``score_many`` when it has
one: one round trip to a sandbox worker per batch) and sends every row's fields back on a queue as soon
as that row is scored, so the caller writes each row when it is ready, whichever batch it came in, and
a stall is a time without any row, not a slow batch. A process that dies (killed, out of memory) breaks
the pool; the rows that were in flight and had not come back are then scored one at a time in a fresh
single-process pool, each retried once in yet another fresh pool if it breaks that one too; a row that
still fails gets the scorer's ``failed`` fields (``error: internal``). A pool that gives no row for
``stall_s`` is treated as broken (its processes are killed).
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import time
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.queues import Queue

    from ftbench.scoring import RowScorer

Row = dict[str, Any]
#: Rows a scorer's ``score_many`` gets at once (in this process, or in each worker process).
BATCH_ROWS = 16
#: Batches in flight per worker process (one running, one waiting: no process idles between batches).
_BATCHES_PER_JOB = 2
#: Default time without any result after which a pool counts as hung.
STALL_S = 300.0
#: Time a new pool may take to start its processes, on top of ``stall_s`` for its first row.
_STARTUP_S = 60.0
#: After Ctrl-C, how long the parent still takes rows scored before it (on their way from the workers).
_DRAIN_S = 0.5
#: How often the parent, waiting for rows, looks whether the pool broke.
_POLL_S = 0.1

#: In a worker process: where its scored rows go, ``(index, fields)`` each.
_results: Queue[tuple[int, Row]] | None = None


class RowsInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`score_rows`, with the rows that were scored but not yet given, because they
    came back before a row ahead of them: ``scored`` maps a row's position in the input to its fields."""

    def __init__(self, scored: dict[int, Row]) -> None:
        super().__init__()
        self.scored = scored


class _PoolFailed(Exception):
    """The pool broke (a process died) or stalled; rows from ``start`` on were not all scored."""


def score_rows(scorer: RowScorer, rows: list[Row], jobs: int,
               stall_s: float | None = None) -> Generator[Row, None, None]:
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
            yield from _recovered(scorer, rows, range(done, stream.broken_until), stream.arrived, stall)
            done = stream.broken_until


def _recovered(scorer: RowScorer, rows: list[Row], positions: range, arrived: dict[int, Row],
               stall_s: float) -> Iterator[Row]:
    """The rows that were in flight when a pool failed, in order: those that came back, the others
    scored one by one."""
    lost = [rows[i] for i in positions if i not in arrived]
    try:
        with closing(_one_by_one(scorer, lost, stall_s)) as retried:
            for index in positions:
                yield arrived.pop(index) if index in arrived else next(retried)
    except KeyboardInterrupt:
        raise RowsInterrupted(arrived) from None


def _in_batches(scorer: RowScorer, rows: Sequence[Row]) -> Iterator[Row]:
    """In this process: through the scorer's ``score_many`` (the same fields as ``score``, row by row,
    each as soon as it is ready) ``BATCH_ROWS`` rows at a time when it has one, so a scorer that sends
    its rows to another process makes one round trip per batch, not per row."""
    many = getattr(scorer, "score_many", None)
    if many is None:
        yield from (scorer.score(row) for row in rows)
        return
    for start in range(0, len(rows), BATCH_ROWS):
        yield from many(rows[start:start + BATCH_ROWS])


def _score_batch(scorer: RowScorer, start: int, rows: Sequence[Row]) -> int:
    """In a worker process: score ``rows`` (the input's rows from ``start`` on), each sent back as soon
    as it is scored."""
    if _results is None:
        raise RuntimeError("_score_batch runs only in a pool made by _new_pool")
    for offset, added in enumerate(_in_batches(scorer, rows)):
        _results.put((start + offset, added))
    return len(rows)


class _Ordered:
    """Iterates the results of ``rows[start:]`` from a pool of ``jobs`` processes, in order; stops early
    when the pool fails, leaving in ``broken_until`` the end of the rows that were in flight and in
    ``arrived`` those of them that came back out of order. On Ctrl-C it raises :class:`RowsInterrupted`
    with the rows that came back out of order (and any that come within ``_DRAIN_S``)."""

    def __init__(self, scorer: RowScorer, rows: list[Row], start: int, jobs: int, stall_s: float) -> None:
        self.scorer, self.rows, self.start, self.jobs, self.stall_s = scorer, rows, start, jobs, stall_s
        self.broken_until = start
        self.arrived: dict[int, Row] = {}
        self._results: Queue[tuple[int, Row]] = _CONTEXT.Queue()
        self._batches: list[Future[int]] = []

    def __iter__(self) -> Iterator[Row]:
        pool = _new_pool(self.jobs, self._results)
        done = submitted = self.start
        size = _batch_size(len(self.rows) - self.start, self.jobs)
        last_row = time.monotonic() + _STARTUP_S  # starting the processes is no stall
        try:
            while done < len(self.rows):
                while submitted < len(self.rows) and submitted - done < self.jobs * _BATCHES_PER_JOB * size:
                    batch = self.rows[submitted:submitted + size]
                    self._batches.append(pool.submit(_score_batch, self.scorer, submitted, batch))
                    submitted += len(batch)
                if not self._take(_POLL_S):
                    if _failed(self._batches) or time.monotonic() - last_row > self.stall_s:
                        self.broken_until = submitted
                        _kill(pool)
                        return
                    continue
                last_row = time.monotonic()
                while done in self.arrived:
                    yield self.arrived.pop(done)
                    done += 1
        except KeyboardInterrupt:
            self._drain()
            _kill(pool)
            raise RowsInterrupted(self.arrived) from None
        except BaseException:  # the consumer stopped: do not wait for rows nobody will read
            _kill(pool)
            raise
        finally:
            _close(pool)
            self._results.close()
            self._results.cancel_join_thread()

    def _take(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for a row; whether one came."""
        try:
            index, added = self._results.get(timeout=timeout)
        except queue.Empty:
            return False
        self.arrived[index] = added
        return True

    def _drain(self) -> None:
        """The rows already on their way (scored before the Ctrl-C), for up to ``_DRAIN_S``."""
        end = time.monotonic() + _DRAIN_S
        while (left := end - time.monotonic()) > 0 and self._take(left):
            pass


def _batch_size(rows: int, jobs: int) -> int:
    """``BATCH_ROWS``, or fewer when there are too few rows to give every process a batch."""
    return max(1, min(BATCH_ROWS, -(-rows // jobs)))


def _failed(batches: list[Future[int]]) -> bool:
    """Whether the pool broke (a process died); an error of the scorer's own code is raised here."""
    for batch in batches:
        error = batch.exception() if batch.done() else None
        if isinstance(error, BrokenProcessPool):
            return True
        if error is not None:
            raise error
    return False


def _one_by_one(scorer: RowScorer, rows: list[Row], stall_s: float) -> Generator[Row, None, None]:
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


_CONTEXT = multiprocessing.get_context("spawn")


def _new_pool(jobs: int, results: Queue[tuple[int, Row]] | None = None) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=jobs, mp_context=_CONTEXT, initializer=_start_worker, initargs=(results,))


def _start_worker(results: Queue[tuple[int, Row]] | None) -> None:
    """Ctrl-C is the parent's to handle: it stops the run and keeps what was scored."""
    global _results
    _results = results
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _kill(pool: ProcessPoolExecutor) -> None:
    """End a broken or hung pool's processes (a hung one would never take the shutdown request)."""
    processes = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        if process.is_alive():
            process.kill()


def _close(pool: ProcessPoolExecutor) -> None:
    pool.shutdown(wait=True, cancel_futures=True)

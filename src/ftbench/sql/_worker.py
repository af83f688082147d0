"""The sandbox worker process: reads lists of judge jobs on stdin, answers each with a verdict on stdout.

Started by :mod:`ftbench.sql._isolation` as ``python -m ftbench.sql._worker DIR``. Before every query
it writes the query's deadline into ``DIR/deadline`` (mapped in memory by both processes); the parent
kills the worker if a deadline passes without an answer, which covers anything sqlite's progress
handler cannot interrupt. The worker exits when its stdin closes (the parent finished or died).
"""

from __future__ import annotations

import gc
import mmap
import os
import pickle
import signal
import sqlite3
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import IO

from ftbench.sql._protocol import DEADLINE, READY, load_job, load_jobs, read_frame, write_frame
from ftbench.sql._types import JudgeConfig, JudgeJob, ValidityJob, Verdict


class _DeadlineBoard:
    """The shared 8 bytes: the deadline of the work in progress (0.0 when idle)."""

    def __init__(self, path: Path) -> None:
        with path.open("r+b") as handle:
            self._memory = mmap.mmap(handle.fileno(), DEADLINE.size)
        self.job_deadline = 0.0

    def post(self, deadline: float) -> None:
        # The job's own deadline bounds the whole job (parsing, synthesis, every query); a query's
        # deadline, when sooner, bounds that query.
        job = self.job_deadline
        DEADLINE.pack_into(self._memory, 0, min(deadline, job) if deadline and job else deadline or job)


def _serve(board: _DeadlineBoard, requests: IO[bytes], replies: IO[bytes]) -> None:
    configs: dict[JudgeConfig, JudgeConfig] = {}
    answered = _Answered(ANSWERED_JOBS)
    while (frame := read_frame(requests)) is not None:
        shared, jobs = load_jobs(frame)  # one answer per job, each unpickled at its turn
        # The configuration keys the caches: one object per distinct configuration makes each cache
        # lookup an identity check (and its id a key: the objects kept here are never freed).
        shared = configs.setdefault(shared, shared) if isinstance(shared, JudgeConfig) else shared
        for pickled in jobs:
            key = (id(shared), pickled)
            reply = answered.get(key)
            if reply is None:
                job = load_job(pickled, shared)
                if job.config is not shared:  # a job with a configuration of its own
                    object.__setattr__(job, "config", configs.setdefault(job.config, job.config))
                verdict = _judged(board, job)
                reply = pickle.dumps(verdict, protocol=pickle.HIGHEST_PROTOCOL)
                if isinstance(verdict, Verdict):
                    answered.put(key, reply)
            write_frame(replies, reply)


def _judged(board: _DeadlineBoard, job: JudgeJob | ValidityJob) -> Verdict | bool | None:
    """The engine's answer to one job, under the job's own deadline."""
    from ftbench.sql._engine import answer

    board.job_deadline = time.monotonic() + job.config.build_timeout_s
    board.post(0.0)
    try:
        return answer(job)
    finally:
        board.job_deadline = 0.0
        board.post(0.0)


#: Verdicts kept for jobs sent again: the same prediction of the same row (several systems wrote it).
ANSWERED_JOBS = 4096


class _Answered:
    """Pickled verdicts by ``(id of the configuration, the job's pickled texts)``, the last ``size``
    of them: a job sent again gets the very answer it got before, without being judged again (judging
    is deterministic). Bounded in entries; a verdict is a few hundred bytes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._replies: OrderedDict[tuple[int, bytes], bytes] = OrderedDict()

    def get(self, key: tuple[int, bytes]) -> bytes | None:
        return self._replies.get(key)

    def put(self, key: tuple[int, bytes], reply: bytes) -> None:
        self._replies[key] = reply
        if len(self._replies) > self.size:
            self._replies.popitem(last=False)


def _limit_heap(megabytes: int) -> None:
    """Process-wide cap on sqlite's memory; only safe here, in a process that does nothing else."""
    connection = sqlite3.connect(":memory:")
    connection.execute(f"PRAGMA hard_heap_limit = {int(megabytes) * 1024 * 1024}")
    connection.close()


#: Allocations between young collections: sqlglot's trees (each node points at its parent) and the
#: judge's caches make the default 700 trigger a collection every few hundred rows' worth of nodes, a
#: tenth of the worker's time; cycles are still collected, in fewer, larger passes.
GC_THRESHOLDS = (50_000, 50, 100)


def _tune_garbage_collection() -> None:
    """Only in this process, which does nothing but judge: what start-up made (modules, sqlglot's
    tables) is never garbage, so full collections stop walking it, and young ones run less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def main(argv: list[str]) -> int:
    workdir = Path(argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller decides when to stop; it closes our stdin
    # The protocol owns the real stdout; anything printed by accident goes to stderr instead.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    # sqlite-utils imports pandas when it can (half a second); the worker never needs it.
    sys.modules.setdefault("pandas", None)  # type: ignore[arg-type]
    from ftbench.sql._exec import set_deadline_hook

    board = _DeadlineBoard(workdir / "deadline")
    set_deadline_hook(board.post)
    _limit_heap(int(argv[2]) if len(argv) > 2 else 512)
    from ftbench.sql import _engine  # noqa: F401 - import before saying ready, so start-up is not a job's time

    _tune_garbage_collection()
    try:
        write_frame(replies, READY)  # the parent now removes the folder; the mapping outlives the file
        _serve(board, sys.stdin.buffer, replies)
    except BrokenPipeError:  # the parent is gone (killed, interrupted): nothing left to answer
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

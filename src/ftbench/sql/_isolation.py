"""The parent side of the sandbox: a persistent worker process per calling process, killed and
restarted when a query overruns its deadline (the last line of defence behind sqlite's own
progress-handler timeout)."""

from __future__ import annotations

import atexit
import contextlib
import mmap
import os
import pickle
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import ftbench
from ftbench.errors import SandboxError
from ftbench.sql._protocol import DEADLINE, READY, dump_jobs, read_frame, write_frame
from ftbench.sql._types import JudgeJob, ValidityJob

#: How long past a deadline the parent waits before it kills the worker.
KILL_GRACE_S = 0.25
_POLL_S = 0.05
_STARTUP_S = 60.0
#: All the worker inherits from the caller's environment.
_KEPT_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "SYSTEMROOT")


@dataclass(frozen=True)
class Lost:
    """The worker ended without answering: killed after overrunning its deadline, or dead on its own."""

    overran: bool
    detail: str


Job = JudgeJob | ValidityJob


class SandboxWorker:
    """One worker process, started on first use; thread-safe (one job at a time)."""

    def __init__(self, memory_mb: int) -> None:
        self._memory_mb = memory_mb
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        self._board: mmap.mmap | None = None
        self._holder: int | None = None  # the thread reading a stream of answers

    def ask(self, job: Job) -> object:
        """The worker's answer to ``job``, or :class:`Lost`. A worker that dies without overrunning
        its deadline (killed from outside, a crash) is replaced and the job sent once more."""
        return self.ask_many([job])[0]

    def ask_many(self, jobs: Sequence[Job]) -> list[object]:
        """The answers to ``jobs``, in order, as :meth:`ask` would give them one by one (see :meth:`answers`)."""
        return list(self.answers(jobs))

    def answers(self, jobs: Sequence[Job]) -> Generator[object, None, None]:
        """The answers to ``jobs``, in order, each as soon as the worker gives it. They travel in one
        message: one round trip between the processes instead of one per job, which is most of a job's
        cost on a real database. A job its worker dies or is killed on gets its :class:`Lost` and the
        rest go to a new worker. Holds the worker until the last answer is read; a caller that stops
        early (or is interrupted) closes the iterator, and the worker with it, so answers still on
        their way never pass for the next caller's."""
        if self._holder == threading.get_ident():
            raise SandboxError("this thread still holds an unfinished stream of sandbox answers")
        with self._lock:
            self._holder = threading.get_ident()
            answered = 0
            retried = -1  # the job already sent a second time after its worker died
            try:
                while answered < len(jobs):
                    for reply in self._attempt(jobs[answered:]):
                        if isinstance(reply, Lost) and not reply.overran:
                            if retried != answered:
                                retried = answered
                                break  # the rest, from this job on, go to a new worker
                            reply = Lost(False, f"{reply.detail}; died again on retry")
                        answered += 1
                        yield reply
            finally:
                self._holder = None
                if answered < len(jobs):
                    self.close()

    def warm(self) -> None:
        """Start the worker now, if it is not running, so that the first job does not wait for it (~1 s of
        imports in the new process); a failure to start is left for that job to meet and report."""
        with self._lock, contextlib.suppress(SandboxError):
            self._started()

    def _attempt(self, jobs: Sequence[Job]) -> Iterator[object]:
        """Answers to the first jobs of ``jobs``: all of them, or up to and including a :class:`Lost`."""
        process = self._started()
        if process.stdin is None or process.stdout is None:
            raise SandboxError("sandbox worker has no pipes")
        frame = dump_jobs(jobs)
        try:
            write_frame(process.stdin, frame)
        except OSError:
            self.close()
            yield Lost(False, "the sandbox worker exited before taking the job")
            return
        for _ in jobs:
            reply = self._await(process)
            yield reply
            if isinstance(reply, Lost):
                return

    def _await(self, process: subprocess.Popen[bytes]) -> object:
        stdout = process.stdout
        if stdout is None or self._board is None:
            raise SandboxError("sandbox worker has no pipes")
        while True:
            readable, _, _ = select.select([stdout], [], [], _POLL_S)
            if readable:
                return self._answer(read_frame(stdout), process)
            deadline = DEADLINE.unpack_from(self._board, 0)[0]
            if deadline and time.monotonic() > deadline + KILL_GRACE_S:
                self.close()
                return Lost(True, "killed after overrunning its deadline")
            if process.poll() is not None:
                return self._died(process)

    def _answer(self, frame: bytes | None, process: subprocess.Popen[bytes]) -> object:
        if frame is None:
            return self._died(process)
        return pickle.loads(frame)

    def _died(self, process: subprocess.Popen[bytes]) -> Lost:
        code = process.wait()
        self.close()
        return Lost(False, f"the sandbox worker died (exit status {code})")

    def _started(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self.close()
        self._workdir = Path(tempfile.mkdtemp(prefix="ftbench-sql-"))
        (self._workdir / "deadline").write_bytes(bytes(DEADLINE.size))
        with (self._workdir / "deadline").open("r+b") as handle:
            self._board = mmap.mmap(handle.fileno(), DEADLINE.size)
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "ftbench.sql._worker", str(self._workdir), str(self._memory_mb)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, cwd=self._workdir, env=self._env(),
                start_new_session=True)  # Ctrl-C in a terminal reaches the caller, which ends the worker
        except OSError as err:
            raise SandboxError(f"cannot start the SQL sandbox worker: {err}") from err
        self._await_ready(self._process)
        # Both processes have the deadline mapped: the folder can go now, so nothing is left behind
        # even if this process is killed (as multiprocessing does to pool workers).
        shutil.rmtree(self._workdir, ignore_errors=True)
        return self._process

    def _await_ready(self, process: subprocess.Popen[bytes]) -> None:
        stdout = process.stdout
        readable = select.select([stdout], [], [], _STARTUP_S)[0] if stdout is not None else []
        if stdout is None or not readable or read_frame(stdout) != READY:
            self.close()
            raise SandboxError(f"the SQL sandbox worker did not start within {_STARTUP_S:.0f}s "
                               f"({sys.executable} -m ftbench.sql._worker)")

    def _env(self) -> dict[str, str]:
        """A minimal environment (no API keys or other secrets of the caller): temp files, should sqlite
        ever write one, land in the worker's own folder; the worker imports this very copy of ftbench."""
        source_root = str(Path(ftbench.__file__).resolve().parents[1])
        path = os.pathsep.join(filter(None, [source_root, os.environ.get("PYTHONPATH")]))
        workdir = str(self._workdir)
        kept = {name: os.environ[name] for name in _KEPT_ENV if name in os.environ}
        return {**kept, "PYTHONPATH": path, "SQLITE_TMPDIR": workdir, "TMPDIR": workdir}

    def close(self) -> None:
        """Stop the worker (kill if needed) and remove its folder."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
        if self._board is not None:
            self._board.close()
            self._board = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


_workers: dict[int, SandboxWorker] = {}
_workers_lock = threading.Lock()


def worker_for(memory_mb: int) -> SandboxWorker:
    """This process's worker for a memory cap (one per distinct cap, normally just one)."""
    with _workers_lock:
        if memory_mb not in _workers:
            _workers[memory_mb] = SandboxWorker(memory_mb)
        return _workers[memory_mb]


def start_worker(memory_mb: int) -> threading.Thread:
    """Start this process's worker for ``memory_mb`` in a background thread (returned, already started); jobs
    asked for meanwhile wait until it is up. For callers that know a judgement is coming and have a core free."""
    thread = threading.Thread(target=worker_for(memory_mb).warm, name="ftbench-sandbox-start", daemon=True)
    thread.start()
    return thread


@atexit.register
def close_all() -> None:
    for worker in list(_workers.values()):
        worker.close()

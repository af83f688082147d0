"""Messages between the judge and its sandbox worker: length-prefixed pickles on pipes, and the
shared deadline (a double in 8 bytes of memory mapped by both processes)."""

from __future__ import annotations

import pickle
import struct
from collections.abc import Sequence
from typing import IO, Any

from ftbench.sql._types import JudgeConfig, JudgeJob, ValidityJob

FRAME_HEADER = struct.Struct(">Q")
DEADLINE = struct.Struct("d")
#: The worker's first message: imports done, deadline memory mapped.
READY = b"ready"
#: Tags of the jobs :func:`dump_jobs` sends as tuples of texts.
_JUDGE, _VALIDITY = "judge", "validity"


def read_frame(stream: IO[bytes]) -> bytes | None:
    """One length-prefixed message, or None at end of input."""
    header = _read_exactly(stream, FRAME_HEADER.size)
    return None if header is None else _read_exactly(stream, FRAME_HEADER.unpack(header)[0])


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    chunks: list[bytes] = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(FRAME_HEADER.pack(len(payload)) + payload)
    stream.flush()


def dump_jobs(jobs: Sequence[object]) -> bytes:
    """One message for several jobs: their common configuration (the first job's ``config``) pickled
    once, each job pickled apart, as the tuple of its texts when it has that configuration. Apart, so
    a job the worker cannot even unpickle ends it at its own turn, after the jobs before it were
    answered; the configuration once, because pickling it (a path among its fields) and the job's
    dataclass cost more than the rest of a job."""
    shared = getattr(jobs[0], "config", None) if jobs else None
    return pickle.dumps((shared, [pickle.dumps(_flat(job, shared), protocol=pickle.HIGHEST_PROTOCOL)
                                  for job in jobs]), protocol=pickle.HIGHEST_PROTOCOL)


def _flat(job: object, shared: object) -> object:
    if type(job) is JudgeJob and job.config is shared:
        return (_JUDGE, job.gold, job.prediction, job.context, job.db_id)
    if type(job) is ValidityJob and job.config is shared:
        return (_VALIDITY, job.sql)
    return job  # another configuration, or not a job at all: pickled whole


def load_jobs(frame: bytes) -> tuple[object, list[bytes]]:
    """The shared configuration of a :func:`dump_jobs` message and its jobs, still pickled."""
    shared, pickled = pickle.loads(frame)
    return shared, pickled


def load_job(pickled: bytes, shared: object) -> Any:
    """One job of :func:`load_jobs`, with ``shared`` as the configuration of each job sent as texts."""
    job = pickle.loads(pickled)
    if type(job) is tuple and job[0] == _JUDGE and isinstance(shared, JudgeConfig):
        return JudgeJob(job[1], job[2], job[3], job[4], shared)
    if type(job) is tuple and job[0] == _VALIDITY and isinstance(shared, JudgeConfig):
        return ValidityJob(job[1], shared)
    return job

"""Messages between the judge and its sandbox worker: length-prefixed pickles on pipes, and the
shared deadline (a double in 8 bytes of memory mapped by both processes)."""

from __future__ import annotations

import io
import pickle
import struct
from collections.abc import Sequence
from typing import IO, Any

FRAME_HEADER = struct.Struct(">Q")
DEADLINE = struct.Struct("d")
#: The worker's first message: imports done, deadline memory mapped.
READY = b"ready"


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


#: The persistent id that stands for the shared configuration in a pickled job.
_SHARED = "shared"


class _SharingPickler(pickle.Pickler):
    """Writes ``shared`` as a reference instead of its contents (``persistent_id``)."""

    def __init__(self, file: IO[bytes], shared: object) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._shared = shared

    def persistent_id(self, obj: object) -> str | None:
        return _SHARED if obj is self._shared and obj is not None else None


class _SharingUnpickler(pickle.Unpickler):
    """Reads the references of :class:`_SharingPickler` back as the one ``shared`` object."""

    def __init__(self, file: IO[bytes], shared: object) -> None:
        super().__init__(file)
        self._shared = shared

    def persistent_load(self, pid: object) -> object:
        if pid != _SHARED:
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        return self._shared



def dump_jobs(jobs: Sequence[object]) -> bytes:
    """One message for several jobs: their common configuration (the first job's ``config``) pickled
    once, each job pickled apart with a reference to it. Apart, so a job the worker cannot even
    unpickle ends it at its own turn, after the jobs before it were answered; the configuration once,
    because pickling it (a path among its fields) cost more than the rest of a job."""
    shared = getattr(jobs[0], "config", None) if jobs else None
    pickled = []
    for job in jobs:
        buffer = io.BytesIO()
        _SharingPickler(buffer, shared).dump(job)
        pickled.append(buffer.getvalue())
    return pickle.dumps((shared, pickled), protocol=pickle.HIGHEST_PROTOCOL)


def load_jobs(frame: bytes) -> tuple[object, list[bytes]]:
    """The shared configuration of a :func:`dump_jobs` message and its jobs, still pickled."""
    shared, pickled = pickle.loads(frame)
    return shared, pickled


def load_job(pickled: bytes, shared: object) -> Any:
    """One job of :func:`load_jobs`, with ``shared`` in place of each reference to the configuration."""
    return _SharingUnpickler(io.BytesIO(pickled), shared).load()

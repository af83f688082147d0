"""Messages between the judge and its sandbox worker: length-prefixed pickles on pipes, and the
shared deadline (a double in 8 bytes of memory mapped by both processes)."""

from __future__ import annotations

import struct
from typing import IO

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

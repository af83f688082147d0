"""The output of a scoring run as a journal: locked against a second writer, appended one whole line at
a time (so a crash loses at most the line being written), and, on ``--resume``, read back to keep the
rows already scored and rewritten atomically in input order at the end."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from ftbench.errors import OutputError

Row = dict[str, Any]
RowKey = tuple[str, int]


def row_keys(rows: list[Row]) -> list[RowKey]:
    """A key per row: its ``id`` (as JSON) and how many earlier rows had the same id, so rows without
    an id, or with repeated ids, are told apart by their order."""
    seen: Counter[str] = Counter()
    keys: list[RowKey] = []
    for row in rows:
        name = json.dumps(row.get("id"), sort_keys=True)
        keys.append((name, seen[name]))
        seen[name] += 1
    return keys


def dumps_line(row: Row) -> bytes:
    """One JSONL line; text that UTF-8 cannot carry (a lone surrogate) is written as a JSON escape."""
    try:
        return (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(row) + "\n").encode("ascii")


class RowJournal:
    """Context manager over the output file; see the module docstring."""

    def __init__(self, path: Path, *, resume: bool) -> None:
        self.path = path
        self.resume = resume
        self._handle: IO[bytes] | None = None
        self._previous: list[Row] = []

    def __enter__(self) -> RowJournal:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a+b", buffering=0)  # unbuffered: each line goes out whole, at once
        except OSError as err:
            raise self._error(err) from err
        try:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            self._handle.close()
            raise OutputError(f"{self.path}: another run is writing this file") from err
        try:
            self._guard(self._start)
        except OutputError:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):  # unbuffered: nothing to lose; a write error was raised already
                self._handle.close()  # closing drops the lock

    def _start(self) -> None:
        handle = self._require()
        handle.seek(0)
        data = handle.read() if self.resume else b""
        complete = data[: data.rfind(b"\n") + 1]  # a line cut short by a crash is dropped
        handle.truncate(len(complete))
        self._previous = [row for row in map(_parse, complete.split(b"\n")) if row is not None]

    def kept(self, rows: list[Row], keys: list[RowKey]) -> list[Row | None]:
        """Per input row, the scored row an earlier run wrote for it (same key, same input fields)."""
        earlier = dict(zip(row_keys(self._previous), self._previous, strict=True))
        found: list[Row | None] = []
        for row, key in zip(rows, keys, strict=True):
            old = earlier.get(key)
            found.append(old if old is not None and all(old.get(name) == value for name, value in row.items())
                         else None)
        return found

    def append(self, row: Row) -> None:
        """Write one scored row, whole, and push it to the file."""
        handle = self._require()

        def write() -> None:
            data = memoryview(dumps_line(row))
            while data:
                data = data[handle.write(data) or 0:]

        self._guard(write)

    def finish(self, rows: list[Row]) -> None:
        """On resume, rewrite the file as exactly these rows in this order (temp file, then rename)."""
        if self.resume:
            self._guard(lambda: self._replace(rows))

    def _replace(self, rows: list[Row]) -> None:
        descriptor, name = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(descriptor, "wb") as temp:
                temp.writelines(dumps_line(row) for row in rows)
            os.replace(name, self.path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise

    def _guard(self, action: Any) -> None:
        try:
            action()
        except OSError as err:
            raise self._error(err) from err

    def _require(self) -> IO[bytes]:
        if self._handle is None:
            raise RuntimeError("RowJournal used outside its with-block")
        return self._handle

    def _error(self, err: OSError) -> OutputError:
        return OutputError(f"{self.path}: cannot write the output ({err.strerror or err})")


def _parse(line: bytes) -> Row | None:
    try:
        row = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return row if isinstance(row, dict) else None

"""JSON Lines files, read one line at a time, every problem named by the file and the line's number.

Lines are split on ``\\n`` alone (JSON text may carry U+2028 and other characters ``str.splitlines`` breaks on)
and read as bytes one at a time, so a huge file is never held whole and a line that is not UTF-8 is named
on its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftbench._paths import where
from ftbench.errors import InputError


@dataclass(frozen=True)
class JsonlLine:
    """One non-blank line: its 1-based number and the parsed value (``None`` with ``error`` if unparsable)."""

    number: int
    value: Any
    error: str | None = None


def jsonl_lines(path: Path, what: str = "file") -> Iterator[JsonlLine]:
    """Every non-blank line of ``path``, parsed; a bad line carries the reason instead of failing the file.

    Raises :class:`InputError` (``PATH: cannot read WHAT (reason)``) when the file itself cannot be read.
    """
    try:
        with path.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    yield _parse(number, line.rstrip(b"\n"))
    except OSError as err:
        name = where(path) if isinstance(err, FileNotFoundError) else str(path)
        raise InputError(f"{name}: cannot read {what} ({err.strerror or err})") from err


def jsonl_objects(path: Path, what: str = "file") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every non-blank line of ``path`` as a JSON object, with where it stands (``PATH:LINE``) for messages.

    Raises :class:`InputError` naming the line at the first line that is not a JSON object.
    """
    for line in jsonl_lines(path, what):
        where = f"{path}:{line.number}"
        if line.error is not None:
            raise InputError(f"{where}: {line.error}")
        if not isinstance(line.value, dict):
            raise InputError(f"{where}: expected a JSON object, got {type(line.value).__name__}")
        yield where, line.value


def _parse(number: int, line: bytes) -> JsonlLine:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as err:
        return JsonlLine(number, None, f"not valid UTF-8 ({err.reason} at byte {err.start})")
    try:
        return JsonlLine(number, json.loads(text))
    except json.JSONDecodeError as err:
        return JsonlLine(number, None, f"not valid JSON ({err.msg} at column {err.colno})")
    except RecursionError:
        return JsonlLine(number, None, "JSON nested too deeply")

"""The one JSONL reader behind scoring, the leaderboard's samples and OpenAI training files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftbench._jsonl import jsonl_lines, jsonl_objects
from ftbench.errors import InputError
from ftbench.finetune.openai.data import read_jsonl
from ftbench.leaderboard._read import read_samples
from ftbench.leaderboard._tasks import FAMILIES


def test_lines_split_on_newline_only(tmp_path: Path) -> None:
    """A chat message may hold U+2028 or a form feed; ``str.splitlines`` would cut the line there."""
    path = tmp_path / "train.jsonl"
    rows = [{"messages": [{"role": "user", "content": "one\u2028two\x0cthree\x85"}]}, {"n": 2}]
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    lines = read_jsonl(path)
    assert [(line.number, line.value, line.error) for line in lines] == [(1, rows[0], None), (2, rows[1], None)]


def test_bad_lines_carry_their_reason_and_number(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b'{"a": 1}\n\n{"a": \n"\xff"\n' + b"[" * 100_000 + b"\n[1]\n")
    found = [(line.number, line.value, line.error) for line in jsonl_lines(path)]
    assert found[0] == (1, {"a": 1}, None) and found[-1] == (6, [1], None)
    assert [number for number, _, _ in found] == [1, 3, 4, 5, 6]  # blank line 2 skipped, numbers kept
    assert found[1][2] is not None and found[1][2].startswith("not valid JSON (")
    assert found[2][2] == "not valid UTF-8 (invalid start byte at byte 1)"
    assert found[3][2] == "JSON nested too deeply"


def test_objects_stop_at_the_first_bad_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n[1, 2]\n', encoding="utf-8")
    reader = jsonl_objects(path)
    assert next(reader) == (f"{path}:1", {"a": 1})
    with pytest.raises(InputError, match=r"rows\.jsonl:2: expected a JSON object, got list"):
        next(reader)


def test_a_missing_file_is_an_input_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.jsonl: cannot read training file \(No such file"):
        read_jsonl(tmp_path / "nope.jsonl")


def test_samples_that_are_not_utf8_are_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "samples_viggo_2026.jsonl"
    path.write_bytes(b'{"doc": {}}\n{"doc": "\xff"}\n')
    with pytest.raises(InputError, match=r"samples_viggo_2026\.jsonl:1: sample lacks"):
        read_samples(path, FAMILIES["viggo"])
    path.write_bytes(b'\n{"doc": "\xff"}\n')
    with pytest.raises(InputError, match=r"samples_viggo_2026\.jsonl:2: not valid UTF-8"):
        read_samples(path, FAMILIES["viggo"])

"""One exit code per error condition, and the README's table of exit codes says the same as errors.py."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

from ftbench import errors
from ftbench.errors import DemoIncomplete, FtbenchError, InputError, MRParseError, OutputError, ServerFailed

README = Path(__file__).resolve().parents[1] / "README.md"
SOURCE = Path(__file__).resolve().parents[1] / "src" / "ftbench"


def _error_classes() -> list[type[FtbenchError]]:
    found: list[type[FtbenchError]] = []
    todo: list[type[FtbenchError]] = [FtbenchError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def codes_in_code() -> dict[int, set[str]]:
    """Each exit code -> the error classes that set it themselves and the ``EXIT_*`` constants of that value."""
    codes: dict[int, set[str]] = defaultdict(set)
    for cls in _error_classes():
        if "exit_code" in vars(cls):
            codes[cls.exit_code].add(cls.__name__)
    for name, value in vars(errors).items():
        if name.startswith("EXIT_"):
            codes[value].add(name)
    return dict(codes)


def codes_in_readme(text: str) -> dict[int, set[str]]:
    section = text.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| ([^|]*) \|", section, flags=re.MULTILINE)
    return {int(code): set(re.findall(r"`(\w+)`", names)) for code, names in rows}


def test_readme_table_of_exit_codes_matches_errors_py() -> None:
    in_readme = codes_in_readme(README.read_text(encoding="utf-8"))
    assert in_readme == codes_in_code()


def test_the_readme_check_sees_a_code_missing_from_the_table() -> None:
    text = README.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| 9 | `ServerFailed`"))
    assert codes_in_readme(text.replace(row + "\n", "")) != codes_in_code()


def test_every_exit_code_means_one_thing() -> None:
    for code, names in codes_in_code().items():
        classes = {name for name in names if not name.startswith("EXIT_")}
        assert len(classes) <= 1, f"exit code {code} is set by {sorted(classes)}"
        if classes and len(names) > 1:
            assert names == {"Interrupted", "EXIT_INTERRUPTED"}, f"exit code {code} is set by {sorted(names)}"


def test_every_error_is_defined_in_errors_py() -> None:
    names = {cls.__name__ for cls in _error_classes()} | {"Exception", "ValueError", "RuntimeError", "OSError"}
    elsewhere = []
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and path.name != "errors.py" and any(
                    isinstance(base, ast.Name) and base.id in names for base in node.bases):
                elsewhere.append(f"{path.relative_to(SOURCE)}: {node.name}")
    assert elsewhere == [], "public exceptions belong in src/ftbench/errors.py (private ones are internal signals)"


@pytest.mark.parametrize(("error", "code"), [(OutputError("x"), 2), (MRParseError("x"), 2),
                                             (DemoIncomplete("late stage", ServerFailed("down")), 9)])
def test_errors_without_a_code_of_their_own_carry_their_parents_or_their_causes(error: FtbenchError,
                                                                                 code: int) -> None:
    assert error.exit_code == code


def test_a_meaning_representation_that_does_not_parse_is_both_input_error_and_value_error() -> None:
    from ftbench.viggo import parse_mr

    with pytest.raises(InputError, match="unbalanced") as raised:
        parse_mr("inform(name[Tetris)")
    assert isinstance(raised.value, ValueError)

"""The `ftbench` command: help everywhere, `score` on good and bad input, errors as clean messages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ftbench.cli import main

GOLD = "inform(name[Tomb Raider], genres[action-adventure, shooter], rating[good])"


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
    return found


@pytest.mark.parametrize("path", [p for p in _commands(main) if p != ("eval",)])
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0
    assert len(result.output.splitlines()) > 3


def _write(path: Path, lines: list[str | bytes]) -> Path:
    path.write_bytes(b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines))
    return path


def _score(tmp_path: Path, lines: list[str | bytes]) -> tuple[int, str, str, Path]:
    source = _write(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["score", "viggo", "--input", str(source), "--output", str(out), "--no-progress"])
    return result.exit_code, result.stdout, result.stderr, out


def test_score_viggo_adds_scores_and_prints_a_summary_last(tmp_path: Path) -> None:
    rows = [
        {"gold": GOLD, "prediction": GOLD, "id": "a"},
        {"gold": GOLD, "prediction": "inform(rating[good], name[Tomb Raider], genres[action-adventure, shooter])"},
        {"gold": GOLD, "prediction": ""},
    ]
    code, stdout, _, out = _score(tmp_path, [json.dumps(row) for row in rows])
    assert code == 0
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["n"] == 3
    assert summary["exact_match"] == pytest.approx(1 / 3)
    assert summary["mr_match"] == pytest.approx(2 / 3)
    assert summary["valid_mr"] == pytest.approx(2 / 3)
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["exact_match"] for row in scored] == [True, False, False]
    assert scored[0]["id"] == "a"
    assert scored[2]["valid_mr"] is False and scored[2]["mr_match"] is False


@pytest.mark.parametrize(("bad_line", "message"), [
    ('{"gold": "inform(name[X])", "prediction": ', r"in\.jsonl:2: not valid JSON"),
    ('{"gold": "inform(name[X])"}', r"in\.jsonl:2: missing field\(s\) prediction"),
    ('["inform(name[X])", "x"]', r"in\.jsonl:2: expected a JSON object, got list"),
    ('{"gold": "inform(name[X])", "prediction": 7}', r"in\.jsonl:2: field\(s\) prediction must be strings"),
    (b'{"gold": "inform(name[X])", "prediction": "\xff"}', r"in\.jsonl:2: not valid UTF-8"),
])
def test_bad_input_names_the_line_and_keeps_earlier_output(tmp_path: Path, bad_line: str | bytes,
                                                             message: str) -> None:
    (tmp_path / "out.jsonl").write_text("earlier results\n")
    good = json.dumps({"gold": "inform(name[X])", "prediction": "inform(name[X])"})
    code, _, stderr, out = _score(tmp_path, [good, bad_line])
    assert code == 2
    assert re.search(message, stderr), stderr
    assert out.read_text() == "earlier results\n"


def test_missing_input_file_is_a_clean_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["score", "viggo", "--input", str(tmp_path / "nope.jsonl"),
                                       "--output", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 2
    assert "nope.jsonl: cannot read input" in result.stderr


def test_gold_that_does_not_parse_is_reported_with_its_line(tmp_path: Path) -> None:
    good = json.dumps({"gold": "inform(name[X])", "prediction": "inform(name[X])"})
    bad = json.dumps({"gold": "inform(name[X]", "prediction": "inform(name[X])"})
    code, _, stderr, out = _score(tmp_path, [good, good, bad])
    assert code == 2
    assert "in.jsonl:3: " in stderr and "inform(name[X]" in stderr
    assert not out.exists()


CONTEXT = "CREATE TABLE singer (name VARCHAR, country VARCHAR, age INTEGER)"


def _score_sql(tmp_path: Path, rows: list[dict[str, str]], *extra: str) -> tuple[int, str, str, Path]:
    source = _write(tmp_path / "preds.jsonl", [json.dumps(row) for row in rows])
    out = tmp_path / "scored.jsonl"
    result = CliRunner().invoke(main, ["score", "sql", "--input", str(source), "--output", str(out),
                                       "--no-progress", "--jobs", "1", *extra])
    return result.exit_code, result.stdout, result.stderr, out


def test_score_sql_adds_verdicts_and_prints_a_summary_last(tmp_path: Path) -> None:
    gold = "SELECT name FROM singer WHERE age > 20"
    rows = [
        {"context": CONTEXT, "gold": gold, "prediction": "select name from singer where 20 < age", "id": "1"},
        {"context": CONTEXT, "gold": gold, "prediction": "SELECT name FROM singer WHERE age >= 20"},
        {"context": CONTEXT, "gold": gold, "prediction": "SELECT nme FROM singer"},
        {"context": CONTEXT, "gold": gold, "prediction": gold},
    ]
    code, stdout, stderr, out = _score_sql(tmp_path, rows)
    assert code == 0, stderr
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["exec_match"] for row in scored] == [True, False, False, True]
    assert [row["exact_match"] for row in scored] == [False, False, False, True]
    assert [row["error"] for row in scored] == [None, None, "schema", None]
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert (summary["n"], summary["exec_acc"], summary["exact_match"]) == (4, 0.5, 0.25)


def test_score_sql_real_db_mode_uses_the_spider_database(tmp_path: Path, data_env: Path) -> None:
    row = {"context": "CREATE TABLE singer (Id VARCHAR)", "gold": "SELECT count(*) FROM singer",
           "prediction": "SELECT count(*) FROM singer WHERE Singer_ID > 0", "db_id": "concert_singer"}
    code, _, stderr, out = _score_sql(tmp_path, [row], "--db-dir", str(data_env / "spider" / "database"),
                                      "--real-db-only")
    assert code == 0, stderr
    assert json.loads(out.read_text())["exec_match"] is True


@pytest.mark.parametrize(("flags", "judge"), [
    ((), "test-suite"), (("--judge", "real-db"), "real-db"), (("--real-db-only",), "real-db"),
    (("--judge", "context"), "context"),
])
def test_score_sql_records_the_judge_in_every_row_and_the_summary(tmp_path: Path, data_env: Path,
                                                                  flags: tuple[str, ...], judge: str) -> None:
    row = {"context": "CREATE TABLE singer (Id VARCHAR)", "gold": "SELECT count(*) FROM singer",
           "prediction": "SELECT count(*) FROM singer", "db_id": "concert_singer"}
    no_db = {**row, "db_id": "wta_1"}  # not in the mirror: judged on its context
    code, stdout, stderr, out = _score_sql(tmp_path, [row, no_db], "--db-dir",
                                           str(data_env / "spider" / "database"), *flags)
    assert code == 0, stderr
    assert [json.loads(line)["judge"] for line in out.read_text().splitlines()] == [judge, "context"]
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["judge"] == judge
    assert summary["judged_by"] == ({judge: 1, "context": 1} if judge != "context" else {"context": 2})


@pytest.mark.parametrize(("flags", "message"), [
    (("--judge", "test-suite"), "--judge test-suite needs --db-dir"),
    (("--judge", "real-db"), "--judge real-db needs --db-dir"),
    (("--judge", "context", "--real-db-only"), "--real-db-only contradicts --judge context"),
])
def test_score_sql_judge_needs_what_it_judges_on(tmp_path: Path, flags: tuple[str, ...], message: str) -> None:
    code, _, stderr, _ = _score_sql(tmp_path, [{"context": CONTEXT, "gold": "SELECT 1", "prediction": "SELECT 1"}],
                                    *flags)
    assert code == 2 and message in stderr


def test_score_sql_gold_that_does_not_parse_names_the_line(tmp_path: Path) -> None:
    rows = [{"context": CONTEXT, "gold": "SELECT name FROM singer", "prediction": "x"},
            {"context": CONTEXT, "gold": "SELECT name FROM", "prediction": "x"}]
    code, _, stderr, out = _score_sql(tmp_path, rows)
    assert code == 2
    assert "preds.jsonl:2: " in stderr
    assert not out.exists()


def test_real_db_only_needs_a_db_dir(tmp_path: Path) -> None:
    code, _, stderr, _ = _score_sql(tmp_path, [{"context": CONTEXT, "gold": "SELECT 1", "prediction": "SELECT 1"}],
                                    "--real-db-only")
    assert code == 2 and "--real-db-only needs --db-dir" in stderr

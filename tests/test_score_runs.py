"""Careless users and broken machines never break a scoring run: paths from any folder, outputs that
cannot be corrupted, --resume, Ctrl-C, empty input, write errors, pool workers that die."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ftbench.cli import main
from ftbench.errors import Interrupted
from ftbench.scoring import ScoreRun, score_file
from ftbench.sql import JudgeConfig, SqlScorer
from ftbench.viggo import ViggoScorer

SINGER = "CREATE TABLE singer (name VARCHAR, age INTEGER)"
VIGGO_GOLD = "inform(name[Tomb Raider], rating[good])"


def _sql_rows(count: int) -> list[dict[str, Any]]:
    golds = ["SELECT name FROM singer WHERE age > 30", "SELECT count(*) FROM singer"]
    predictions = ["SELECT name FROM singer WHERE 30 < age", "SELECT count(*) FROM singer WHERE age > 1"]
    return [{"id": f"r{i}", "context": SINGER, "gold": golds[i % 2], "prediction": predictions[i % 2]}
            for i in range(count)]


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


# --- paths -----------------------------------------------------------------------------------------------

def _toy_database(folder: Path) -> None:
    """A real database in which ages are all 50: only the real database tells `> 40` from `>= 0`."""
    database = folder / "toy" / "toy.sqlite"
    database.parent.mkdir(parents=True)
    connection = sqlite3.connect(database)
    with connection:
        connection.execute("CREATE TABLE singer (name TEXT, age INTEGER)")
        connection.executemany("INSERT INTO singer VALUES (?, ?)", [("a", 50), ("b", 50)])
    connection.close()


def test_a_relative_db_dir_is_read_from_the_callers_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _toy_database(tmp_path / "spider" / "database")
    row = {"id": "x", "db_id": "toy", "context": SINGER, "gold": "SELECT name FROM singer WHERE age > 40",
           "prediction": "SELECT name FROM singer WHERE age >= 0"}
    _write(tmp_path / "in.jsonl", [row])
    monkeypatch.chdir(tmp_path)
    result = _cli("score", "sql", "--input", "in.jsonl", "--output", "out.jsonl", "--db-dir", "spider/database",
                  "--real-db-only", "--jobs", "1", "--no-progress")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.splitlines()[-1])
    assert (summary["exec_acc"], summary["no_real_db"]) == (1.0, 0)  # judged on the real database


def test_a_missing_db_dir_is_an_error(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.jsonl", _sql_rows(1))
    result = _cli("score", "sql", "--input", str(source), "--output", str(tmp_path / "o.jsonl"),
                  "--db-dir", str(tmp_path / "nowhere"), "--no-progress")
    assert result.exit_code == 2 and "nowhere" in result.output


def test_rows_without_a_real_database_are_counted_and_named(tmp_path: Path) -> None:
    _toy_database(tmp_path / "db")
    rows = [{**_sql_rows(1)[0], "db_id": "toy"}, {**_sql_rows(2)[1], "db_id": "not_there"}]
    source = _write(tmp_path / "in.jsonl", rows)
    result = _cli("score", "sql", "--input", str(source), "--output", str(tmp_path / "o.jsonl"), "--db-dir",
                  str(tmp_path / "db"), "--real-db-only", "--jobs", "1", "--no-progress")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[-1])["no_real_db"] == 1
    assert "not_there" in result.stderr and "no_real_db" in result.stderr


def test_a_relative_data_dir_is_made_absolute_once_by_the_cli(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FTBENCH_DATA_DIR", "data")
    assert _cli("tasks-dir").exit_code == 0
    assert os.environ["FTBENCH_DATA_DIR"] == str(tmp_path / "data")
    from ftbench.data import data_dir

    monkeypatch.setenv("FTBENCH_DATA_DIR", "data")
    assert data_dir() == tmp_path / "data"


# --- outputs ---------------------------------------------------------------------------------------------

def test_output_equal_to_input_is_refused_and_the_input_kept(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.jsonl", _sql_rows(3))
    before = source.read_bytes()
    for output in (str(source), str(tmp_path / "." / "in.jsonl")):
        result = _cli("score", "sql", "--input", str(source), "--output", output, "--no-progress")
        assert result.exit_code == 2 and "is the input file" in result.stderr
    assert source.read_bytes() == before


@pytest.mark.parametrize("where", ["folder", "under a file", "full disk"])
def test_unwritable_outputs_are_a_clean_error(tmp_path: Path, where: str) -> None:
    source = _write(tmp_path / "in.jsonl", [{"gold": VIGGO_GOLD, "prediction": VIGGO_GOLD}])
    (tmp_path / "a_file").write_text("")
    output = {"folder": str(tmp_path), "under a file": str(tmp_path / "a_file" / "out.jsonl"),
              "full disk": "/dev/full"}[where]
    result = _cli("score", "viggo", "--input", str(source), "--output", output, "--no-progress")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_a_second_writer_is_refused_while_the_first_holds_the_output(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.jsonl", [{"gold": VIGGO_GOLD, "prediction": VIGGO_GOLD}])
    output = tmp_path / "out.jsonl"
    output.write_text('{"kept": true}\n')
    with output.open("a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        result = _cli("score", "viggo", "--input", str(source), "--output", str(output), "--no-progress")
    assert result.exit_code == 2 and "another run" in result.stderr
    assert output.read_text() == '{"kept": true}\n'


def test_empty_input_is_an_error(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("\n\n")
    result = _cli("score", "viggo", "--input", str(source), "--output", str(tmp_path / "o.jsonl"), "--no-progress")
    assert result.exit_code == 2 and "no rows" in result.stderr


def test_deeply_nested_ids_and_lone_surrogates(tmp_path: Path) -> None:
    nested = "[" * 100_000 + "1" + "]" * 100_000
    deep = f'{{"gold": "{VIGGO_GOLD}", "prediction": "x", "id": {nested}}}'
    source = tmp_path / "deep.jsonl"
    source.write_text(deep + "\n")
    result = _cli("score", "viggo", "--input", str(source), "--output", str(tmp_path / "o.jsonl"), "--no-progress")
    assert result.exit_code == 2 and f"{source}:1" in result.stderr and "nested" in result.stderr
    rows = [{"id": "\ud800", "context": SINGER, "gold": "SELECT count(*) FROM singer", "prediction": "SELECT '\udc00'"},
            {"id": "g", "context": SINGER, "gold": "SELECT '\udc00' FROM singer", "prediction": "SELECT 1"}]
    source = _write(tmp_path / "surrogate.jsonl", rows)  # json.dumps escapes surrogates: valid JSON, valid UTF-8
    result = _cli("score", "sql", "--input", str(source), "--output", str(tmp_path / "s.jsonl"), "--jobs", "1",
                  "--no-progress")
    assert result.exit_code == 0, result.output
    scored = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(row["id"], row["error"], row["exec_match"]) for row in scored] == \
        [("\ud800", "syntax", False), ("g", "syntax", False)]


# --- resume ----------------------------------------------------------------------------------------------

def _viggo_rows() -> list[dict[str, Any]]:
    predictions = [VIGGO_GOLD, "inform(name[Tomb Raider])", "", VIGGO_GOLD, "nonsense"]
    return [{"id": f"v{i}", "gold": VIGGO_GOLD, "prediction": p} for i, p in enumerate(predictions)] + \
        [{"gold": VIGGO_GOLD, "prediction": VIGGO_GOLD}, {"gold": VIGGO_GOLD, "prediction": "x"}]


def test_resume_keeps_rows_scores_the_rest_and_ends_with_the_full_runs_file(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.jsonl", _viggo_rows())
    full = tmp_path / "full.jsonl"
    score_file(ViggoScorer(), ScoreRun(source, full, progress=False))
    lines = full.read_bytes().splitlines(keepends=True)
    kept = tmp_path / "kept.jsonl"
    stale = json.dumps({**json.loads(lines[0]), "prediction": "changed since"}).encode() + b"\n"
    # rows 2, 4 and 6 (no id) kept, out of order; a stale row for v0; one line cut short by a crash
    kept.write_bytes(lines[4] + stale + lines[1] + lines[5] + lines[3][:20])
    report = score_file(ViggoScorer(), ScoreRun(source, kept, progress=False, resume=True))
    assert kept.read_bytes() == full.read_bytes()
    assert report.summary["n"] == len(lines)


def test_resume_after_ctrl_c(tmp_path: Path) -> None:
    """A real SIGINT mid-run: one line on stderr, exit 130, the rows kept; --resume finishes the file. Each row's
    prediction differs (nothing judged once serves another row) and joins six tables (~30 ms a row), so the run is
    still busy seconds after its first batch of rows is written (it once finished before the signal landed)."""
    rows = [{**row, "prediction": f"SELECT count(*) FROM singer a, singer b, singer c, singer d, singer e, singer f "
                                  f"WHERE a.age > {index}"}
            for index, row in enumerate(_sql_rows(120))]
    source = _write(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    command = [str(Path(sys.executable).parent / "ftbench"), "score", "sql", "--input", str(source),
               "--output", str(output), "--jobs", "1", "--no-progress", "--num-dbs", "8"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not output.exists() or output.read_text().count("\n") < 2):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert len(stderr.strip().splitlines()) == 1 and "--resume" in stderr, stderr
    scored_before = output.read_text().count("\n")
    assert 2 <= scored_before < len(rows)
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    fresh = tmp_path / "fresh.jsonl"
    subprocess.run([*command[:6], str(fresh), *command[7:]], check=True, capture_output=True, timeout=120)
    assert output.read_bytes() == fresh.read_bytes()


ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _mark_kept(path: Path) -> None:
    """Tag the rows on disk, so a resumed run that scored them again would show it."""
    _write(path, [{**row, "kept": True} for row in _lines(path)])


def test_ctrl_c_mid_batch_keeps_every_row_the_judge_finished(tmp_path: Path) -> None:
    """One batch of 16 rows; the sixth runs until the whole-row bound (20 s) ends it, so the run is surely
    busy with it while the five before it are judged: they must be on disk then, before the Ctrl-C (a run
    that writes a batch only when all of it is judged shows none, then all 16). --resume judges the rest."""
    rows = _sql_rows(16)
    rows[5]["prediction"] = ENDLESS
    source = _write(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    command = [str(Path(sys.executable).parent / "ftbench"), "score", "sql", "--input", str(source),
               "--output", str(output), "--jobs", "1", "--no-progress", "--num-dbs", "2"]
    process = subprocess.Popen([*command, "--timeout", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None and len(_lines(output)) < 5:
        time.sleep(0.05)
    on_disk_while_judging = [row["id"] for row in _lines(output)]
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert on_disk_while_judging == [f"r{i}" for i in range(5)], "judged rows not on disk at once"
    assert process.returncode == 130, stderr
    assert [row["id"] for row in _lines(output)] == [f"r{i}" for i in range(5)]
    _mark_kept(output)
    resumed = subprocess.run([*command, "--timeout", "0.5", "--resume"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    scored = _lines(output)
    assert [row["id"] for row in scored] == [row["id"] for row in rows]
    assert [bool(row.get("kept")) for row in scored] == [True] * 5 + [False] * 11
    assert [row["error"] for row in scored] == [None] * 5 + ["timeout"] + [None] * 10
    assert [row["exec_match"] for row in scored] == [i % 2 == 0 and i != 5 for i in range(16)]


class BlockingScorer(SqlScorer):
    """Never finishes the row whose id is "block"; notes in a folder each row it judged, once the row
    was handed on (a worker sends a row back before it asks for the next)."""

    def __init__(self, notes: Path) -> None:
        super().__init__(JudgeConfig(n_databases=2))
        self.notes = notes

    def score(self, row: dict[str, Any]) -> dict[str, Any]:
        (fields,) = self.score_many([row])
        return fields

    def score_many(self, rows: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            if row["id"] == "block":
                time.sleep(3600)
            yield from super().score_many([row])
            (self.notes / row["id"]).touch()


def test_ctrl_c_keeps_every_row_pool_workers_judged(tmp_path: Path) -> None:
    """--jobs 2: batches of 8 rows; the first batch's worker stops at its sixth row for good, the other worker
    judges the whole second batch meanwhile. On Ctrl-C every judged row is on disk, the second batch's too
    (scored out of order), and --resume judges only the rest."""
    rows = _sql_rows(16)
    rows[5]["id"] = "block"
    notes = tmp_path / "notes"
    notes.mkdir()
    source, output = _write(tmp_path / "in.jsonl", rows), tmp_path / "out.jsonl"

    def interrupt_once_judged() -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(list(notes.iterdir())) < 13:  # rows 0-4 and 8-15
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_once_judged, daemon=True).start()
    with pytest.raises(Interrupted):
        score_file(BlockingScorer(notes), ScoreRun(source, output, jobs=2, progress=False))
    judged = {path.name for path in notes.iterdir()}
    assert sorted(row["id"] for row in _lines(output)) == sorted(judged)
    assert len(judged) == 13
    _mark_kept(output)
    report = score_file(SqlScorer(JudgeConfig(n_databases=2)), ScoreRun(source, output, jobs=2, progress=False,
                                                                        resume=True))
    scored = _lines(output)
    assert report.summary["n"] == 16 and [row["id"] for row in scored] == [row["id"] for row in rows]
    assert [bool(row.get("kept")) for row in scored] == [row["id"] in judged for row in rows]
    assert [row["exec_match"] for row in scored] == [i % 2 == 0 for i in range(16)]


# --- pool workers that die -------------------------------------------------------------------------------

class KillingScorer(SqlScorer):
    """Kills its own process on rows whose id says so: once (a marker file remembers), or always."""

    def __init__(self, marker: Path) -> None:
        super().__init__(JudgeConfig(n_databases=2))
        self.marker = marker

    def score(self, row: dict[str, Any]) -> dict[str, Any]:
        self._trap(row)
        return super().score(row)

    def score_many(self, rows: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:  # a batch dies at its fatal row, after the rows before it came back
            self._trap(row)
            yield from super().score_many([row])

    def _trap(self, row: dict[str, Any]) -> None:
        if row["id"] == "always" or (row["id"] == "once" and not self.marker.exists()):
            self.marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)


def test_killed_pool_workers_are_replaced_and_their_rows_retried(tmp_path: Path) -> None:
    rows = _sql_rows(6)
    rows[2]["id"], rows[3]["id"] = "once", "always"
    source = _write(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    started = time.monotonic()
    report = score_file(KillingScorer(tmp_path / "marker"), ScoreRun(source, output, jobs=2, progress=False))
    assert time.monotonic() - started < 120
    scored = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["id"] for row in scored] == [row["id"] for row in rows]
    assert [row["error"] for row in scored] == [None] * 3 + ["internal"] + [None] * 2
    assert [row["exec_match"] for row in scored] == [True, False, True, False, True, False]  # "once" was retried
    assert report.exit_code == 3 and report.summary["errors"]["internal"] == 1
    assert "always" in report.warnings[0]


class HangingScorer(SqlScorer):
    """Never returns on the row whose id is "hang" (a worker stuck outside any timeout)."""

    stall_s = 6.0

    def score_many(self, rows: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:  # score() goes through here too
            if row["id"] == "hang":
                time.sleep(3600)
            yield from super().score_many([row])


@pytest.mark.slow
def test_a_hung_pool_worker_never_hangs_the_run(tmp_path: Path) -> None:
    rows = _sql_rows(3)
    rows[1]["id"] = "hang"
    source = _write(tmp_path / "in.jsonl", rows)
    started = time.monotonic()
    report = score_file(HangingScorer(JudgeConfig(n_databases=2)),
                        ScoreRun(source, tmp_path / "out.jsonl", jobs=2, progress=False))
    assert time.monotonic() - started < 60
    assert report.summary["errors"]["internal"] == 1 and report.exit_code == 3
    assert "hang" in report.warnings[0]

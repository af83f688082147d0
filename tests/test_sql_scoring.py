"""SqlScorer through the shared runner, and real-database mode on Spider databases."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from ftbench.scoring import ScoreRun, score_file
from ftbench.sql import ERROR_KINDS, JudgeConfig, SqlScorer, judge
from tests.conftest import mirror_dir

SPIDER = mirror_dir() / "spider" / "database"
needs_spider = pytest.mark.skipif(not (SPIDER / "concert_singer" / "concert_singer.sqlite").is_file(),
                                  reason=f"Spider databases not found under {SPIDER} (set FTBENCH_DATA_DIR)")
SINGER = "CREATE TABLE singer (Name VARCHAR, Country VARCHAR, Age VARCHAR)"
ROWS = [
    {"id": "right", "context": SINGER, "gold": "SELECT Name FROM singer WHERE Age > 30",
     "prediction": "select name from singer where 30 < age"},
    {"id": "wrong", "context": SINGER, "gold": "SELECT Name FROM singer WHERE Age > 30",
     "prediction": "SELECT Name FROM singer WHERE Age >= 30"},
    {"id": "schema", "context": SINGER, "gold": "SELECT count(*) FROM singer",
     "prediction": "SELECT count(*) FROM singers"},
    {"id": "exact", "context": SINGER, "gold": "SELECT count(*) FROM singer",
     "prediction": "SELECT count(*) FROM singer", "db_id": "concert_singer"},
]


def test_scorer_is_picklable_and_scores_rows() -> None:
    scorer = pickle.loads(pickle.dumps(SqlScorer(JudgeConfig(n_databases=4))))
    scored = [{**row, **scorer.score(row)} for row in ROWS]
    assert [row["exec_match"] for row in scored] == [True, False, False, True]
    assert [row["error"] for row in scored] == [None, None, "schema", None]
    assert [row["exact_match"] for row in scored] == [False, False, False, True]
    summary = scorer.summarize(scored)
    assert summary["exec_acc"] == 0.5
    assert summary["errors"] == {kind: int(kind == "schema") for kind in ERROR_KINDS}


def test_score_file_in_parallel_streams_every_row(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in ROWS * 3), encoding="utf-8")
    run = ScoreRun(source, target, jobs=2, progress=False)
    summary = score_file(SqlScorer(JudgeConfig(n_databases=4)), run).summary
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == [row["id"] for row in ROWS * 3]
    assert summary["n"] == 12
    assert summary["exec_acc"] == 0.5
    assert summary["valid_sql"] == 1.0


@needs_spider
def test_real_mode_runs_on_the_spider_database() -> None:
    gold = "SELECT count(*) FROM singer WHERE age > 40"
    context = "CREATE TABLE singer (age INTEGER)"
    real = JudgeConfig(db_dir=SPIDER, judge="real-db")
    verdict = judge(gold, gold, context, db_id="concert_singer", config=real)
    assert (verdict.exec_match, verdict.databases) == (True, 1)
    both = judge(gold, "SELECT count(*) FROM singer WHERE 40 < age", context, db_id="concert_singer",
                 config=JudgeConfig(db_dir=SPIDER, judge="test-suite", n_fuzzed=4))
    assert (both.exec_match, both.databases) == (True, 5)


@needs_spider
@pytest.mark.parametrize(("db_id", "gold", "prediction"), [
    ("concert_singer", "SELECT name FROM singer ORDER BY age DESC LIMIT 1",
     "SELECT name FROM singer ORDER BY age ASC LIMIT 1"),
    ("pets_1", "SELECT count(*) FROM pets WHERE weight > 10", "SELECT count(*) FROM pets WHERE weight < 10"),
])
def test_real_mode_rejects_mistakes_the_real_data_witnesses(db_id: str, gold: str, prediction: str) -> None:
    config = JudgeConfig(db_dir=SPIDER, judge="real-db")
    verdict = judge(gold, prediction, "", db_id=db_id, config=config)
    assert (verdict.exec_match, verdict.error, verdict.databases) == (False, None, 1)


@needs_spider
def test_real_mode_falls_back_to_mock_without_a_database() -> None:
    """``wta_1`` is missing from the mirror; a db_id that leaves the folder is ignored."""
    gold, context = "SELECT count(*) FROM players", "CREATE TABLE players (name VARCHAR)"
    config = JudgeConfig(db_dir=SPIDER, judge="real-db", n_databases=4)
    for db_id in ("wta_1", "../database/concert_singer"):
        verdict = judge(gold, gold, context, db_id=db_id, config=config)
        assert (verdict.exec_match, verdict.databases) == (True, 4)


def test_rows_that_can_never_be_judged_are_reported_before_scoring() -> None:
    scorer = SqlScorer()
    scorer.check(ROWS[0])
    for bad, message in (({**ROWS[0], "gold": "SELEC name FROM singer"}, "gold is not one valid SQL statement"),
                         ({**ROWS[0], "db_id": 3}, "db_id must be a string or null")):
        with pytest.raises(ValueError, match=message):
            scorer.check(bad)


def test_the_calling_process_leaves_the_parser_and_the_databases_to_the_sandbox_worker(tmp_path: Path) -> None:
    """Importing ftbench.sql and scoring through the worker loads neither sqlglot nor sqlite-utils (and its pandas)
    in the caller: ``ftbench score sql``, its pool workers, lm-eval's hooks and the leaderboard stay small (the
    package's exports once imported the engine: +120 MiB and +0.7 s in every such process)."""
    import subprocess
    import sys

    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in ROWS[:2]), encoding="utf-8")
    code = ("import json, sys\n"
            "from pathlib import Path\n"
            "from ftbench.scoring import ScoreRun, score_file\n"
            "from ftbench.sql import JudgeConfig, SqlScorer\n"
            f"run = ScoreRun(Path({str(source)!r}), Path({str(tmp_path / 'out.jsonl')!r}), progress=False)\n"
            "report = score_file(SqlScorer(JudgeConfig()), run)\n"
            "heavy = ('sqlglot', 'sqlite_utils', 'pandas', 'ftbench.sql._engine', 'ftbench.sql._facts')\n"
            "print(json.dumps([report.summary['n'], sorted(m for m in heavy if m in sys.modules)]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [2, []]

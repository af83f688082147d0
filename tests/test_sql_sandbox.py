"""Hostile predictions: each comes back wrong, classified, within its timeout, touching no file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ftbench.sql import JudgeConfig, judge

TIMEOUT = 0.5
CONFIG = JudgeConfig(timeout_s=TIMEOUT, n_databases=4)  # the real sandbox: a worker process
CONTEXT = "CREATE TABLE singer (name VARCHAR, country VARCHAR, age INTEGER)"
GOLD = "SELECT name FROM singer WHERE age > 20"


def hostile(target: Path) -> list[tuple[str, str, str]]:
    """(label, prediction, expected error kind); ``target`` is where a successful attack would write."""
    return [
        ("endless recursion", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
         "timeout"),
        ("huge cross join", "SELECT count(*) FROM " + ", ".join(f"singer s{i}" for i in range(10)), "timeout"),
        ("huge result", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c",
         "runtime"),
        ("randomblob(1e9)", "SELECT randomblob(1000000000)", "runtime"),
        ("zeroblob(1e9)", "SELECT length(zeroblob(1000000000))", "runtime"),
        ("ATTACH /etc/passwd", "ATTACH '/etc/passwd' AS p", "forbidden"),
        ("ATTACH a new file", f"ATTACH '{target / 'evil.db'}' AS evil", "forbidden"),
        ("VACUUM INTO", f"VACUUM INTO '{target / 'copy.db'}'", "forbidden"),
        ("load_extension", "SELECT load_extension('/lib/x86_64-linux-gnu/libc.so.6')", "forbidden"),
        ("PRAGMA writable_schema", "PRAGMA writable_schema = 1", "forbidden"),
        ("PRAGMA in a query", "SELECT * FROM pragma_table_info('singer')", "forbidden"),
        ("DROP TABLE", "DROP TABLE singer", "forbidden"),
        ("CTE + DELETE", "WITH x AS (SELECT 1) DELETE FROM singer", "forbidden"),
        ("; DELETE", "SELECT 1; DELETE FROM singer", "forbidden"),
        ("CREATE TEMP", "CREATE TEMP TABLE t AS SELECT 1", "forbidden"),
        ("NUL byte", "SELECT name FROM singer\x00; DROP TABLE singer", "syntax"),
        ("1 MB prediction", "SELECT " + "1 + " * 250_000 + "1", "forbidden"),
        ("deep nesting", "SELECT " + "(" * 5000 + "1" + ")" * 5000, "runtime"),
        ("LIKE backtracking", "SELECT count(*) FROM singer WHERE printf('%.*c', 100000, 'a') LIKE '" + "%a" * 600 +
         "%b'", "runtime"),
    ]


@pytest.fixture(scope="module", autouse=True)
def _warm_worker() -> None:
    """Start the worker first: its start-up (imports, a second on a busy machine) is not a query's time."""
    judge(GOLD, GOLD, CONTEXT, config=CONFIG)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("attack-target")


@pytest.mark.parametrize("case", range(len(hostile(Path("/unused")))), ids=[c[0] for c in hostile(Path("/unused"))])
def test_hostile_prediction_is_wrong_classified_and_in_time(case: int, target: Path) -> None:
    label, prediction, kind = hostile(target)[case]
    started = time.monotonic()
    verdict = judge(GOLD, prediction, CONTEXT, config=CONFIG)
    elapsed = time.monotonic() - started
    assert (verdict.exec_match, verdict.error) == (False, kind), verdict
    assert elapsed < TIMEOUT + 0.5, f"{label} took {elapsed:.2f}s"
    assert list(target.iterdir()) == []


def test_judge_still_works_after_hostile_predictions() -> None:
    judge(GOLD, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x FROM c) SELECT count(*) FROM c", CONTEXT,
          config=CONFIG)
    assert judge(GOLD, "SELECT name FROM singer WHERE 20 < age", CONTEXT, config=CONFIG).exec_match


def test_worker_is_killed_when_sqlite_cannot_be_interrupted() -> None:
    """The last line of defence: work that never reaches sqlite's progress handler (here a slow
    database synthesis, forced by a tiny build budget) is ended by killing the worker."""
    context = "; ".join(f"CREATE TABLE t{i} ({', '.join(f'c{j} VARCHAR' for j in range(60))})" for i in range(120))
    gold = "SELECT count(*) FROM " + ", ".join(f"t{i}" for i in range(3))
    config = JudgeConfig(timeout_s=TIMEOUT, n_databases=64, build_timeout_s=0.01)
    started = time.monotonic()
    verdict = judge(gold, gold, context, config=config)
    assert (verdict.exec_match, verdict.error) == (False, "timeout"), verdict
    assert time.monotonic() - started < 1.5
    assert judge(GOLD, GOLD, CONTEXT, config=CONFIG).exec_match  # a fresh worker took over


def test_real_database_is_opened_read_only(tmp_path: Path) -> None:
    import sqlite3

    database = tmp_path / "toy" / "toy.sqlite"
    database.parent.mkdir()
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE singer (name TEXT, country TEXT, age INTEGER)")
        connection.executemany("INSERT INTO singer VALUES (?, ?, ?)", [("a", "x", 30), ("b", "y", 10)])
    connection.close()
    before = database.read_bytes()
    config = JudgeConfig(timeout_s=TIMEOUT, db_dir=tmp_path, judge="real-db")
    for _label, prediction, _kind in hostile(tmp_path / "toy"):
        assert not judge(GOLD, prediction, CONTEXT, db_id="toy", config=config).exec_match
    assert database.read_bytes() == before
    assert sorted(path.name for path in database.parent.iterdir()) == ["toy.sqlite"]


def test_worker_leaves_no_folder_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's folder is removed once it has started, so even a killed run leaves nothing."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the worker makes its folder
    fresh = JudgeConfig(timeout_s=TIMEOUT, n_databases=4, memory_mb=CONFIG.memory_mb + 1)  # a worker of its own
    assert judge(GOLD, GOLD, CONTEXT, config=fresh).exec_match  # the worker started and answered
    assert list(tmp_path.iterdir()) == []  # while it is still running

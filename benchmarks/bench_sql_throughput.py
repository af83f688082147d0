"""Throughput of the SQL judge: judged predictions per second over the 568 spider_sql val rows.

    FTBENCH_DATA_DIR=../shared/data python benchmarks/bench_sql_throughput.py [--jobs N] [--modes M,...] \
        [--baseline DIR]

Each configuration runs in a fresh Python process (cold: imports, worker start-up and database
synthesis included) through ``SqlScorer`` + ``ftbench.scoring.score_file``, in each judge mode
(context, real-db, test-suite), with one process and with all cores. The predictions are the golds
reformatted (so both queries really run; an identical text skips one). ``--baseline DIR`` (another
checkout of ftbench, e.g. ``git worktree add /tmp/base main``) times that checkout's code too, each of
its runs right before the same run of this checkout, so the two are compared under the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ftbench.data import data_dir, load_spider_sql

_CHILD = """
import sys, time
from pathlib import Path
from ftbench.scoring import ScoreRun, score_file
from ftbench.sql import JudgeConfig, SqlScorer
source, target, jobs, mode, db_dir = sys.argv[1:6]
config = JudgeConfig(judge=mode, db_dir=Path(db_dir) if mode != "context" else None)
started = time.perf_counter()
summary = score_file(SqlScorer(config), ScoreRun(Path(source), Path(target), jobs=int(jobs), progress=False)).summary
print(summary["n"], summary["exec_acc"], time.perf_counter() - started)
"""


def write_predictions(path: Path) -> int:
    rows = [{"id": ex.id, "db_id": ex.db_id, "context": ex.context, "gold": ex.answer,
             "prediction": re.sub(r"\s+", " ", ex.answer).strip()} for ex in load_spider_sql("val")]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return len(rows)


def run_cold(source: Path, jobs: int, mode: str, db_dir: Path, code: Path | None = None) -> tuple[float, str]:
    """Wall time of a fresh process scoring the file, and what it printed; ``code``: the ``src`` folder of
    the ftbench to run (default: the installed one)."""
    env = {**os.environ, "PYTHONPATH": str(code)} if code is not None else None
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _CHILD, str(source), str(Path(scratch) / "out.jsonl"), str(jobs),
                               mode, str(db_dir)], capture_output=True, text=True, check=True, env=env)
        return time.perf_counter() - started, done.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="'all cores' (default: cpu count)")
    parser.add_argument("--modes", default="context,real-db,test-suite", help="comma-separated judge modes")
    parser.add_argument("--baseline", type=Path, default=None, help="another ftbench checkout to time alongside")
    args = parser.parse_args()
    data = data_dir(Path(__file__).resolve().parents[2] / "shared" / "data")
    db_dir = data / "spider" / "database"
    codes: list[tuple[str, Path | None]] = [("this", None)]
    if args.baseline is not None:
        codes.insert(0, ("baseline", (args.baseline / "src").resolve()))
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "predictions.jsonl"
        count = write_predictions(source)
        print(f"{count} predictions, {os.cpu_count()} cores")
        print(f"{'mode':10s} {'jobs':>4s} {'code':>8s} {'wall s':>8s} {'pred/s':>8s}  (n, exec_acc, scoring s)")
        for mode in args.modes.split(","):
            for jobs in sorted({1, args.jobs}):
                for name, code in codes:
                    wall, printed = run_cold(source, jobs, mode, db_dir, code)
                    print(f"{mode:10s} {jobs:4d} {name:>8s} {wall:8.2f} {count / wall:8.1f}  ({printed})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

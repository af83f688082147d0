"""Cost of hostile rows to the caller: `ftbench score sql` on a corpus of predictions, golds and contexts
that attack the sandbox or the calling process; peak RSS of the main process and of its whole process tree
(pool and sandbox workers), and wall time per row.

    python benchmarks/bench_hostile_rows.py [--jobs 2] [--repeat 2]

Prints one line per figure. No data mirror needed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONTEXT = "CREATE TABLE singer (name VARCHAR, country VARCHAR, age INTEGER)"
GOLD = "SELECT name FROM singer WHERE age > 20"
ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
CTE_BOMB = "WITH " + ",".join(["a0 AS (SELECT 1)"] + [f"a{i} AS (SELECT 1 FROM a{i - 1}, a{i - 1})"
                                                     for i in range(1, 22)]) + " SELECT * FROM a21"


def corpus() -> list[dict[str, str]]:
    predictions = [
        "PRAGMA hard_heap_limit=1", "PRAGMA hard_heap_limit=20000", "PRAGMA soft_heap_limit=12345",
        "PRAGMA temp_store_directory='/tmp'", CTE_BOMB, ENDLESS, "SELECT randomblob(1000000000)",
        "SELECT count(*) FROM " + ", ".join(f"singer s{i}" for i in range(10)), "ATTACH '/etc/passwd' AS p",
        "VACUUM INTO '/tmp/ftbench-bench-copy.db'", "SELECT load_extension('/lib/x86_64-linux-gnu/libc.so.6')",
        "SELECT name FROM singer\x00; DROP TABLE singer", "SELECT " + "(" * 5000 + "1" + ")" * 5000,
        "SELECT name FROM singer WHERE name = '\ud800'", "SELECT " + "1 + " * 25_000_000 + "1",  # 100 MB
    ]
    rows = [{"id": f"p{i}", "context": CONTEXT, "gold": GOLD, "prediction": p} for i, p in enumerate(predictions)]
    golds = [ENDLESS, "SELECT " + "1 + " * 25_000_000 + "1", "SELECT name FROM singer WHERE age = 'NaN'",
             "SELECT name FROM singer WHERE name = '\udfff'"]
    rows += [{"id": f"g{i}", "context": CONTEXT, "gold": g, "prediction": GOLD} for i, g in enumerate(golds)]
    rows.append({"id": "c0", "context": CONTEXT + " " * 300_000, "gold": GOLD, "prediction": GOLD})
    return rows


def _tree_rss_kb(root: int) -> tuple[int, int]:
    """(RSS of ``root``, RSS of ``root`` and all its descendants), in KiB, from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        pid = int(status.parent.name)
        parents[pid] = int(fields["PPid"])
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    tree, frontier = {root}, [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier and pid not in tree]
        tree.update(children)
        frontier = children
    return rss.get(root, 0), sum(rss.get(pid, 0) for pid in tree)


def measure(source: Path, output: Path, jobs: int) -> tuple[float, int, int, str]:
    command = [str(Path(sys.executable).parent / "ftbench"), "score", "sql", "--input", str(source),
               "--output", str(output), "--jobs", str(jobs), "--no-progress"]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_main = peak_tree = 0
    while process.poll() is None:
        main_kb, tree_kb = _tree_rss_kb(process.pid)
        peak_main, peak_tree = max(peak_main, main_kb), max(peak_tree, tree_kb)
        time.sleep(0.05)
    stdout, _ = process.communicate()
    wall = time.perf_counter() - started
    return wall, peak_main, peak_tree, f"exit {process.returncode}; " + (stdout.strip().splitlines() or [""])[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="Copies of the corpus in the input.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "hostile.jsonl"
        rows = corpus() * args.repeat
        source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        size_mb = source.stat().st_size / 2**20
        wall, main_kb, tree_kb, summary = measure(source, Path(folder) / "out.jsonl", args.jobs)
    print(f"hostile rows: {len(rows)} (input {size_mb:.0f} MiB), --jobs {args.jobs}")
    print(f"result: {summary}")
    print(f"wall time: {wall:.2f} s total, {wall / len(rows):.2f} s per row")
    print(f"peak RSS, main process: {main_kb / 1024:.0f} MiB")
    print(f"peak RSS, process tree (pool + sandbox workers): {tree_kb / 1024:.0f} MiB")


if __name__ == "__main__":
    main()

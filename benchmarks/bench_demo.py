"""Wall time of the README's main job, `ftbench demo`, as a user runs it (a fresh process, a fresh folder).

    FTBENCH_DATA_DIR=../shared/data python benchmarks/bench_demo.py [--repeats 3] [--limit 5]

Prints each run's wall time and the demo's own per-stage timestamps, then the median. Target: under 3 minutes
on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(limit: int) -> tuple[float, list[str]]:
    out = Path(tempfile.mkdtemp(prefix="ftbench-bench-demo-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [str(Path(sys.executable).parent / "ftbench"), "demo", "--out", str(out / "demo"), "--limit", str(limit)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    if done.returncode != 0:
        sys.exit(f"ftbench demo failed (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed, [line for line in done.stdout.splitlines() if line.startswith("[")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=5)
    args = parser.parse_args()
    print(f"ftbench demo --limit {args.limit}, {os.cpu_count()} CPU cores")
    times = []
    for index in range(1, args.repeats + 1):
        elapsed, stages = run_once(args.limit)
        times.append(elapsed)
        print(f"run {index}: {elapsed:6.1f} s   stages: " + " | ".join(stages))
    print(f"median {statistics.median(times):.1f} s, max {max(times):.1f} s (target: < 180 s)")


if __name__ == "__main__":
    main()

"""Wall time of the README's main job, `ftbench demo`, as a user runs it (a fresh process, a fresh folder).

    FTBENCH_DATA_DIR=../shared/data python benchmarks/bench_demo.py [--repeats 1] [--keep DIR] [-- DEMO OPTIONS]

Prints the machine's load average before and after (the demo's work is fixed by step count, so a busy machine
only makes it slower), each run's wall time, the demo's own per-stage timestamps and its summary of results, then
the median. Target: under 3 minutes on 2 quiet CPU cores.
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


def run_once(options: list[str], keep: Path | None) -> tuple[float, str]:
    out = keep or Path(tempfile.mkdtemp(prefix="ftbench-bench-demo-")) / "demo"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [str(Path(sys.executable).parent / "ftbench"), "demo", "--out", str(out), "--no-progress", *options]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if keep is None:
        shutil.rmtree(out.parent, ignore_errors=True)
    if done.returncode != 0:
        sys.exit(f"ftbench demo failed (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPU cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="write the (last) demo here and keep it")
    parser.add_argument("options", nargs="*", help="options for `ftbench demo` (after --)")
    args = parser.parse_args()
    print(f"ftbench demo {' '.join(args.options)}; before: {load()}")
    times = []
    for index in range(1, args.repeats + 1):
        elapsed, stdout = run_once(args.options, args.keep.resolve() if args.keep else None)
        times.append(elapsed)
        print(f"run {index}: {elapsed:6.1f} s; {load()}\n" + stdout)
    print(f"median {statistics.median(times):.1f} s, max {max(times):.1f} s (target: < 180 s on 2 quiet cores)")


if __name__ == "__main__":
    main()

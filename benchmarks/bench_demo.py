"""Wall time of the README's main job, `ftbench demo`, as a user runs it (a fresh process, a fresh folder).

    FTBENCH_DATA_DIR=../shared/data python benchmarks/bench_demo.py [--repeats 1] [--keep DIR] [-- DEMO OPTIONS]

Prints the machine's load average before and after (the demo's work is fixed by step count, so a busy machine
only makes it slower), each run's wall time, the demo's own per-stage timestamps and its summary of results, the
seconds each stage took and each recipe's seconds per training step (from its run.json), then the median.
Target: under 3 minutes on 2 quiet CPU cores. ``--ftbench PATH`` times another install's ``ftbench`` (an older
checkout's, say) the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGE = re.compile(r"^\[(\d+)/(\d+), +(\d+) s\] (.*)$", re.MULTILINE)


def run_once(executable: Path, options: list[str], keep: Path | None) -> tuple[float, str]:
    out = keep or Path(tempfile.mkdtemp(prefix="ftbench-bench-demo-")) / "demo"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [str(executable), "demo", "--out", str(out), "--no-progress", *options]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode == 0:
        print(breakdown(done.stdout, elapsed, out))
    if keep is None:
        shutil.rmtree(out.parent, ignore_errors=True)
    if done.returncode != 0:
        sys.exit(f"ftbench demo failed (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def breakdown(stdout: str, elapsed: float, out: Path) -> str:
    """Seconds per stage (from the demo's stage lines) and seconds per training step of each recipe."""
    stages = [(int(match[2]), match[3].split(":")[0]) for match in STAGE.findall(stdout)]
    ends = [start for start, _ in stages[1:]] + [round(elapsed)]
    lines = [f"  stage {start:4d} s +{end - start:4d} s  {name[:70]}"
             for (start, name), end in zip(stages, ends, strict=True)]
    for run_json in sorted(out.glob("recipes/*/run.json")):
        record = json.loads(run_json.read_text(encoding="utf-8"))
        lines.append(f"  recipe {run_json.parent.name:<5} {record['steps']} steps in {record['wall_time_s']:.1f} s: "
                     f"{record['wall_time_s'] / record['steps']:.3f} s/step")
    return "\n".join(lines)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPU cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="write the (last) demo here and keep it")
    parser.add_argument("--ftbench", type=Path, default=Path(sys.executable).parent / "ftbench",
                        help="the ftbench executable to time (default: this environment's)")
    parser.add_argument("options", nargs="*", help="options for `ftbench demo` (after --)")
    args = parser.parse_args()
    print(f"ftbench demo {' '.join(args.options)}; before: {load()}")
    times = []
    for index in range(1, args.repeats + 1):
        elapsed, stdout = run_once(args.ftbench.resolve(), args.options,
                                   args.keep.resolve() if args.keep else None)
        times.append(elapsed)
        print(f"run {index}: {elapsed:6.1f} s; {load()}\n" + stdout)
    print(f"median {statistics.median(times):.1f} s, max {max(times):.1f} s (target: < 180 s on 2 quiet cores)")


if __name__ == "__main__":
    main()

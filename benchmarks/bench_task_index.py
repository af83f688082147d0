"""How long lm-eval takes to index tasks: all built-ins plus ours, versus our folder alone (`ftbench eval`).

    python benchmarks/bench_task_index.py
"""

from __future__ import annotations

import time

from lm_eval.tasks import TaskManager

from ftbench.lmeval import tasks_dir


def seconds(**options: object) -> tuple[float, int]:
    started = time.perf_counter()
    manager = TaskManager(**options)  # type: ignore[arg-type]
    return time.perf_counter() - started, len(manager.all_tasks)


def main() -> None:
    ours = str(tasks_dir())
    for label, options in (("built-ins + ftbench (plain lm_eval)", {"include_path": ours}),
                           ("ftbench only (ftbench eval)", {"include_path": ours, "include_defaults": False})):
        elapsed, count = seconds(**options)
        print(f"{label:38s} {elapsed:6.2f} s  {count:6d} names indexed")


if __name__ == "__main__":
    main()

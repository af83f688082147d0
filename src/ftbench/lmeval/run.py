"""``ftbench eval``: lm-eval's own CLI, with our tasks available and no scan of lm-eval's 14k YAMLs
when only our tasks are asked for.

Everything after ``ftbench eval`` goes to lm-eval unchanged; we only swap in a TaskManager that knows
where our task folders are.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ftbench.lmeval import TASK_NAMES, is_installed_in_lm_eval, tasks_dir


def requested_tasks(argv: Sequence[str]) -> list[str]:
    """Task names given to ``--tasks`` (comma-separated, ``--tasks=a,b`` or ``--tasks a,b``)."""
    names: list[str] = []
    for i, arg in enumerate(argv):
        if arg in ("--tasks", "-t") and i + 1 < len(argv):
            names += argv[i + 1].split(",")
        elif arg.startswith("--tasks="):
            names += arg.split("=", 1)[1].split(",")
    return [name.strip() for name in names if name.strip()]


def task_manager_options(tasks: Sequence[str], ours: Path) -> dict[str, Any]:
    """How to build lm-eval's TaskManager so that ``tasks`` resolve.

    Only our tasks: index our folder alone (a fraction of a second instead of ~12 s). Otherwise keep
    lm-eval's built-ins, and add our folder unless it already lies inside them (wheel install).
    """
    only_ours = bool(tasks) and all(name in TASK_NAMES for name in tasks)
    if only_ours:
        return {"include_path": [ours], "include_defaults": False}
    return {"include_path": [] if is_installed_in_lm_eval(ours) else [ours], "include_defaults": True}


def _patch_task_manager(options: dict[str, Any]) -> None:
    import lm_eval.tasks

    # Patch lm-eval's own class once per call, never a previous patch (runs may repeat in one process).
    base = getattr(lm_eval.tasks.TaskManager, "ftbench_original", lm_eval.tasks.TaskManager)

    class FtbenchTaskManager(base):  # type: ignore[misc,valid-type]
        ftbench_original = base

        def __init__(self, *args: Any, include_path: Any = None, include_defaults: bool = True,
                     **kwargs: Any) -> None:
            paths = [*_as_list(include_path), *options["include_path"]]
            super().__init__(*args, include_path=paths or None,
                             include_defaults=include_defaults and options["include_defaults"], **kwargs)

    lm_eval.tasks.TaskManager = FtbenchTaskManager


def _as_list(include_path: Any) -> list[Any]:
    if include_path is None:
        return []
    if isinstance(include_path, (list, tuple)):
        return list(include_path)
    return str(include_path).split(":") if isinstance(include_path, str) else [include_path]


def _register_models() -> None:
    """Make ftbench's lm-eval model classes (e.g. the OpenAI chat fix) available to ``--model``."""
    try:
        from ftbench.lmeval.openai_chat import register_models
    except ImportError:  # the module needs the `openai` extra only when used; registration is optional
        return
    register_models()


def main(argv: Sequence[str]) -> int:
    """Run lm-eval's CLI on ``argv`` with our tasks available; returns the exit code."""
    from lm_eval.__main__ import cli_evaluate

    _register_models()
    _patch_task_manager(task_manager_options(requested_tasks(argv), tasks_dir()))
    saved = sys.argv
    sys.argv = ["lm_eval", *argv]
    try:
        cli_evaluate()
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        sys.argv = saved
    return 0

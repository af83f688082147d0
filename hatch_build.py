"""Hatch build hook: the wheel also places ftbench's task files in ``lm_eval/tasks/ftbench/``.

lm-eval 0.4.13 has no task plugin hook; its TaskManager indexes every YAML below its own ``lm_eval/tasks/`` folder,
so this copy is what makes a bare ``lm_eval --tasks spider_sql`` work after ``pip install ftbench``. It is made at
build time from the one source, ``src/ftbench/tasks/`` (package data of ``ftbench.tasks``), so the two cannot
differ. Editable builds get no copy: lm-eval would read it instead of the checkout, and an edited YAML would be
silently ignored; from a checkout, use ``ftbench eval`` or ``--include_path "$(ftbench tasks-dir)"``.

The files are copied to a scratch folder and force-included from there: hatch drops a force-included source that
lies inside the project from its normal place, which would take the YAMLs out of the ``ftbench`` package.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

TASKS = Path("src/ftbench/tasks")
LM_EVAL_COPY = "lm_eval/tasks/ftbench"


def task_files(tasks: Path) -> list[Path]:
    """Every task file below ``tasks`` (YAMLs, READMEs, ``utils.py``), relative to it; no ``__init__.py``
    (lm-eval's folder needs none) nor bytecode."""
    return [path.relative_to(tasks) for path in sorted(tasks.rglob("*"))
            if path.is_file() and path.suffix in (".yaml", ".md", ".py") and path.name != "__init__.py"
            and "__pycache__" not in path.parts]


class LmEvalTasksHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "lm-eval-tasks"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version != "standard":
            return
        tasks, self.staging = Path(self.root) / TASKS, Path(tempfile.mkdtemp(prefix="ftbench-lm-eval-tasks-"))
        for relative in task_files(tasks):
            (self.staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tasks / relative, self.staging / relative)
            build_data["force_include"][str(self.staging / relative)] = f"{LM_EVAL_COPY}/{relative.as_posix()}"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        staging = getattr(self, "staging", None)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)

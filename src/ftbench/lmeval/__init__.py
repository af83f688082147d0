"""The glue lm-eval calls: where our task YAMLs live, dataset loaders, prompt, answer-extraction and metric hooks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: Every task and group name our folders define.
TASK_NAMES: tuple[str, ...] = ("spider_sql", "spider_sql_chat", "viggo", "viggo_chat", "ftbench")


def tasks_dir() -> Path:
    """The folder holding our task YAMLs: the ``ftbench.tasks`` package (package data), which the ``lm_eval.tasks``
    entry point names — ``src/ftbench/tasks/`` of the checkout in an editable install. Give it to lm-eval as
    ``--include_path`` (``ftbench eval`` does)."""
    import ftbench.tasks

    return Path(ftbench.tasks.__file__).parent


def lm_eval_copy() -> Path:
    """Where a wheel install also places our task files, inside lm-eval's own tasks folder (which lm-eval 0.4.13
    indexes by itself); generated from :func:`tasks_dir` at build time (``hatch_build.py``)."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("lm-eval is not installed")
    return Path(spec.origin).parent / "tasks" / "ftbench"


def installed_in_lm_eval() -> bool:
    """True when lm-eval finds our tasks with no ``--include_path`` (a wheel install; not an editable one)."""
    return (lm_eval_copy() / "spider_sql" / "spider_sql.yaml").is_file()

"""The glue lm-eval calls: where our task YAMLs live, dataset loaders, prompt and metric hooks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: Every task and group name our folders define.
TASK_NAMES: tuple[str, ...] = ("spider_sql", "spider_sql_chat", "viggo", "viggo_chat", "ftbench")


def tasks_dir() -> Path:
    """The folder holding our task YAMLs: inside lm-eval's own tasks folder when installed from a wheel,
    else the checkout's ``lm_eval_tasks/`` (editable installs, running from source)."""
    installed = _lm_eval_tasks_root() / "ftbench"
    if (installed / "spider_sql").is_dir():
        return installed
    checkout = Path(__file__).resolve().parents[3] / "lm_eval_tasks"
    if (checkout / "spider_sql").is_dir():
        return checkout
    raise FileNotFoundError(f"ftbench task YAMLs not found in {installed} nor {checkout}; reinstall ftbench")


def package_tasks_dir() -> Path:
    """The folder of the ``ftbench.tasks`` package, which the ``lm_eval.tasks`` entry point names; it holds the
    YAMLs after a wheel install (only an ``__init__.py`` in a checkout)."""
    import ftbench.tasks

    return Path(ftbench.tasks.__file__).parent


def is_installed_in_lm_eval(path: Path) -> bool:
    """True when ``path`` lies inside lm-eval's own tasks folder (indexed by default)."""
    return path.resolve().is_relative_to(_lm_eval_tasks_root().resolve())


def _lm_eval_tasks_root() -> Path:
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("lm-eval is not installed")
    return Path(spec.origin).parent / "tasks"

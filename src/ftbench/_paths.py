"""Paths users give in environment variables, resolved once against the caller's working directory."""

from __future__ import annotations

import os
from pathlib import Path

#: The local mirror of the datasets (see :func:`ftbench.data.data_dir`).
DATA_DIR_VARIABLE = "FTBENCH_DATA_DIR"
#: Environment variables that name a folder.
PATH_VARIABLES = (DATA_DIR_VARIABLE,)


def env_path(name: str) -> Path | None:
    """The path in environment variable ``name``, ``~`` expanded and absolute (a relative one is taken from
    this process's working directory), or None when it is unset or blank."""
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().absolute() if value else None


def where(path: Path | str) -> str:
    """``path`` as an error about a missing file names it: a relative one with the folder it was looked for in
    (the same command run from another folder reads another file)."""
    return str(path) if Path(path).expanduser().is_absolute() else f"{path} (looked for in {Path.cwd()})"


def absolute_path_env() -> None:
    """Make each of :data:`PATH_VARIABLES` absolute in ``os.environ`` (resolved against this process's
    working directory), so subprocesses started from other folders read the same files."""
    for name in PATH_VARIABLES:
        path = env_path(name)
        if path is not None:
            os.environ[name] = str(path)

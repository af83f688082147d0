"""Paths users give in environment variables, resolved once against the caller's working directory."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variables that name a folder.
PATH_VARIABLES = ("FTBENCH_DATA_DIR",)


def absolute_path_env() -> None:
    """Make each of :data:`PATH_VARIABLES` absolute in ``os.environ`` (resolved against this process's
    working directory), so subprocesses started from other folders read the same files."""
    for name in PATH_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            os.environ[name] = str(Path(value).expanduser().absolute())

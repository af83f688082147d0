"""Which judge mode decides a row: the configured one, or ``context`` for a row without a real database.

Light on purpose: the caller records the mode even for rows refused before the sandbox sees them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ftbench.sql._types import JudgeConfig, JudgeMode


def effective_mode(config: JudgeConfig, db_id: str | None) -> JudgeMode:
    """The configured mode, or ``context`` for a row without a real database."""
    if config.judge == "context" or not real_paths(config, db_id):
        return "context"
    return config.judge


def real_paths(config: JudgeConfig, db_id: str | None) -> tuple[Path, ...]:
    """The row's real databases: every ``.sqlite`` in ``<db_dir>/<db_id>/``."""
    return _sqlite_files(config.db_dir, db_id) if config.db_dir is not None and db_id else ()


@lru_cache(maxsize=256)
def _sqlite_files(db_dir: Path, db_id: str) -> tuple[Path, ...]:
    if Path(db_id).name != db_id or db_id in (".", ".."):
        return ()  # a db_id that tries to leave the folder
    return tuple(sorted((db_dir / db_id).glob("*.sqlite")))

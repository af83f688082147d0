"""The one reader of a training script's YAML ``--config`` file (LoRA and OpenAI), with the same errors for both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ftbench._paths import where
from ftbench.errors import InputError


def read_config_mapping(path: Path, *, empty_ok: bool = False) -> dict[str, Any]:
    """The mapping of config keys in ``path``; an empty file is an empty mapping only when ``empty_ok``.
    Raises :class:`InputError` naming the file when it is missing, unreadable, not YAML or not a mapping."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise InputError(f"{where(path)}: config file not found") from err
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise InputError(f"{path}: cannot read as a YAML config ({err})") from err
    if loaded is None and empty_ok:
        return {}
    if not isinstance(loaded, dict):
        raise InputError(f"{path}: expected a YAML mapping of config keys, got {type(loaded).__name__}")
    return {str(key): value for key, value in loaded.items()}

"""The OpenAI fine-tune configuration: one typed dataclass, read from a YAML file (``training/configs/openai_*.yaml``);
the command line fills in or overrides its values.

Every key a file may hold is a field of :class:`OpenAIRunConfig`; anything else, or a value of the wrong type, is an
:class:`~ftbench.errors.InputError` naming the file, so that a typo never silently changes a paid run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftbench.errors import InputError
from ftbench.finetune._config_file import read_config_mapping

TASKS = ("spider_sql", "viggo")
_INTS = ("n_epochs", "seed")
_PATHS = ("train_file", "validation_file", "out")


@dataclass(frozen=True)
class OpenAIRunConfig:
    """What to fine-tune on and how; ``None`` leaves the choice to the command line, then to OpenAI."""

    task: str | None = None
    train_split: str | None = None
    validation_split: str | None = None
    train_file: Path | None = None
    validation_file: Path | None = None
    model: str | None = None
    n_epochs: int | None = None  # None: OpenAI's default heuristic
    suffix: str | None = None
    seed: int | None = None
    out: Path | None = None  # run folder: run.json and events.jsonl

    def splits(self) -> list[tuple[str, Path]]:
        """(split, JSONL file) for each of train and validation that names both."""
        pairs = ((self.train_split, self.train_file), (self.validation_split, self.validation_file))
        return [(split, path) for split, path in pairs if split and path]


def config_keys() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(OpenAIRunConfig))


def load_config(path: Path | None) -> OpenAIRunConfig:
    """The config in ``path`` (``None``: an empty one), every key and value checked."""
    if path is None:
        return OpenAIRunConfig()
    data = read_config_mapping(path, empty_ok=True)
    unknown = sorted(set(map(str, data)) - set(config_keys()))
    if unknown:
        raise InputError(f"{path}: unknown config key(s) {', '.join(unknown)}; known: {', '.join(config_keys())}")
    return OpenAIRunConfig(**{str(key): _value(str(key), value, path) for key, value in data.items()})


def _value(key: str, value: Any, path: Path) -> Any:
    if value is None:
        return None
    if key in _INTS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{path}: {key}={value!r} is not a whole number")
        return value
    if not isinstance(value, str):
        raise InputError(f"{path}: {key}={value!r} is not text")
    if key == "task" and value not in TASKS:
        raise InputError(f"{path}: task={value!r} is not one of {', '.join(TASKS)}")
    return Path(value) if key in _PATHS else value

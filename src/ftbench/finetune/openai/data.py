"""OpenAI chat fine-tuning files: one ``{"messages": [system, user, assistant]}`` object per line.

The messages come only from :mod:`ftbench.prompts` (the same functions the ``*_chat`` lm-eval tasks use),
so for the study's data the files match the study's OpenAI files message for message.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ftbench import prompts
from ftbench._jsonl import JsonlLine, jsonl_lines
from ftbench.data import SPIDER_SQL_SPLITS, VIGGO_SPLITS, load_spider_sql, load_viggo
from ftbench.errors import InputError

Messages = list[prompts.Message]


def spider_sql_chats(split: str) -> list[Messages]:
    return [prompts.sql_chat_messages(ex.question, ex.context, ex.answer) for ex in load_spider_sql(split)]


def viggo_chats(split: str) -> list[Messages]:
    return [prompts.viggo_chat_messages(ex.target, ex.meaning_representation) for ex in load_viggo(split)]


#: Task name -> (builder of its chat examples, its splits).
CHAT_TASKS: dict[str, tuple[Callable[[str], list[Messages]], tuple[str, ...]]] = {
    "spider_sql": (spider_sql_chats, SPIDER_SQL_SPLITS),
    "viggo": (viggo_chats, VIGGO_SPLITS),
}


@dataclass(frozen=True)
class PreparedFile:
    """A JSONL file written by :func:`write_chat_jsonl`."""

    path: Path
    n_examples: int
    sha256: str


def chat_examples(task: str, split: str) -> list[Messages]:
    """Chat-format training examples of ``task`` (``spider_sql`` or ``viggo``) and ``split``."""
    if task not in CHAT_TASKS:
        raise InputError(f"unknown task {task!r}; choose one of {', '.join(CHAT_TASKS)}")
    build, splits = CHAT_TASKS[task]
    if split not in splits:
        raise InputError(f"{task} has no split {split!r}; choose one of {', '.join(splits)}")
    return build(split)


def write_chat_jsonl(examples: Iterable[Messages], path: Path) -> PreparedFile:
    """Write ``{"messages": …}`` lines (UTF-8, no ASCII escaping) and return the file's size and digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"messages": messages}, ensure_ascii=False) + "\n" for messages in examples]
    data = "".join(lines).encode("utf-8")
    path.write_bytes(data)
    return PreparedFile(path, len(lines), hashlib.sha256(data).hexdigest())


def read_jsonl(path: Path) -> list[JsonlLine]:
    """Every non-blank line of ``path``, parsed; unparsable lines carry the reason instead of failing the file."""
    return list(jsonl_lines(path, "training file"))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()

"""Training examples for LoRA runs, built only from ``ftbench.data`` and ``ftbench.prompts``.

The training text of an example is exactly ``completion_training_text(prompt, answer)``: the text the study trained
on and the prompt the ``spider_sql``/``viggo`` tasks evaluate. trl appends the tokenizer's EOS token, as the study's
``add_eos_token=True`` tokenizer did.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftbench import prompts
from ftbench.data import (
    SqlExample,
    ViggoExample,
    load_spider_sql,
    load_viggo,
    read_spider_sql_file,
    read_viggo_file,
)
from ftbench.errors import DataError

if TYPE_CHECKING:
    from datasets import Dataset


@dataclass(frozen=True)
class TrainingExample:
    """One prompt and the completion the model learns to write after it."""

    prompt: str
    completion: str

    @property
    def text(self) -> str:
        """The full training text: prompt, completion and the study's trailing newline."""
        return prompts.completion_training_text(self.prompt, self.completion)


def sql_training_example(example: SqlExample) -> TrainingExample:
    return TrainingExample(prompts.sql_completion_prompt(example.question, example.context), example.answer)


def viggo_training_example(example: ViggoExample) -> TrainingExample:
    return TrainingExample(prompts.viggo_completion_prompt(example.target), example.meaning_representation)


def task_examples(task: str, split: str, file: str | None = None, limit: int | None = None) -> list[TrainingExample]:
    """Examples of ``task`` from ``split`` of the study's data, or from ``file`` in the same format."""
    if task == "spider_sql":
        rows = read_spider_sql_file(Path(file), split) if file else load_spider_sql(split)
        examples = [sql_training_example(row) for row in rows[:limit]]
    else:
        viggo_rows = read_viggo_file(Path(file)) if file else load_viggo(split)
        examples = [viggo_training_example(row) for row in viggo_rows[:limit]]
    if not examples:
        raise DataError(f"{task}: {file or f'split {split!r}'} holds no examples")
    return examples


def to_dataset(examples: list[TrainingExample], loss: str) -> Dataset:
    """A trl dataset: ``text`` rows (loss on the whole sequence, as the study) or ``prompt``/``completion`` rows
    (loss on the completion only). In both forms prompt + completion is the same training text."""
    from datasets import Dataset

    if loss == "full":
        return Dataset.from_dict({"text": [e.text for e in examples]})
    completions = [e.text[len(e.prompt):] for e in examples]
    return Dataset.from_dict({"prompt": [e.prompt for e in examples], "completion": completions})


def check_fits(texts: list[str], tokenizer: Any, max_length: int) -> None:
    """DataError when a training text (plus the EOS trl appends) is longer than ``max_length`` tokens."""
    lengths = [len(ids) + 1 for ids in tokenizer(texts)["input_ids"]]
    too_long = [i for i, n in enumerate(lengths) if n > max_length]
    if too_long:
        raise DataError(f"{len(too_long)} example(s) (first: row {too_long[0]}, {lengths[too_long[0]]} tokens) exceed "
                        f"max_length={max_length}; padding-free batches without packing are not truncated: raise "
                        "max_length, set packing=true, or drop those rows")

"""What the task YAMLs call (through their thin ``utils.py``): datasets, prompts, the answer-extraction filter,
metrics.

Docs are plain dicts built from :mod:`ftbench.data` examples; prompts come only from :mod:`ftbench.prompts`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from ftbench import prompts
from ftbench.data import EVAL_SPLITS, load_spider_sql, load_viggo
from ftbench.errors import InputError

Doc = dict[str, Any]
_log = logging.getLogger(__name__)


def spider_sql_docs(**metadata: Any) -> Any:
    """Evaluation split of spider_sql as a ``datasets.DatasetDict`` (lm-eval ``custom_dataset``).

    lm-eval's ``--metadata '{"db_dir": DIR, "judge": MODE}'`` arrives here; every doc carries the judge
    it will be scored with (and the samples file records it)."""
    split, judging = EVAL_SPLITS["spider_sql"], _judging(metadata)
    return _dataset_dict(split, [{**asdict(example), **judging} for example in load_spider_sql(split)])


def spider_sql_chat_docs(**metadata: Any) -> Any:
    """As :func:`spider_sql_docs`, each doc also carrying its chat ``system`` message."""
    split, judging = EVAL_SPLITS["spider_sql"], _judging(metadata)
    docs = [{**asdict(ex), **judging, "system": prompts.sql_system_message(ex.context)}
            for ex in load_spider_sql(split)]
    return _dataset_dict(split, docs)


def _judging(metadata: dict[str, Any]) -> dict[str, str]:
    """``{"judge", "db_dir"}`` from lm-eval metadata: ``test-suite`` when a ``db_dir`` is given, else
    ``context`` (the judge modes of ``ftbench score sql``); the folder made absolute."""
    from ftbench.sql import JUDGE_MODES

    db_dir = metadata.get("db_dir")
    judge = metadata.get("judge") or ("test-suite" if db_dir else "context")
    if judge not in JUDGE_MODES:
        raise InputError(f"metadata judge must be one of {', '.join(JUDGE_MODES)}, not {judge!r}")
    if judge != "context" and not db_dir:
        raise InputError(f"metadata judge {judge!r} needs a db_dir (Spider-layout <dir>/<db_id>/*.sqlite)")
    if db_dir and not Path(db_dir).expanduser().is_dir():
        raise InputError(f"metadata db_dir {db_dir!r} is not a folder")
    return {"judge": judge, "db_dir": str(Path(db_dir).expanduser().resolve()) if db_dir else ""}


def viggo_docs(**_metadata: Any) -> Any:
    """Evaluation split of viggo as a ``datasets.DatasetDict`` (lm-eval ``custom_dataset``)."""
    split = EVAL_SPLITS["viggo"]
    return _dataset_dict(split, [asdict(example) for example in load_viggo(split)])


def viggo_chat_docs(**_metadata: Any) -> Any:
    """As :func:`viggo_docs`, each doc also carrying its chat ``system`` message."""
    split = EVAL_SPLITS["viggo"]
    system = prompts.viggo_system_message()
    return _dataset_dict(split, [{**asdict(ex), "system": system} for ex in load_viggo(split)])


def spider_sql_prompt(doc: Doc) -> str:
    return prompts.sql_completion_prompt(doc["question"], doc["context"])


def viggo_prompt(doc: Doc) -> str:
    return prompts.viggo_completion_prompt(doc["target"])


#: The tasks' ``until``. Some servers (``transformers serve``) leave the stop string in the text they
#: return, while lm-eval's in-process backends cut it off; cutting again here scores every backend alike.
STOP_SEQUENCES: tuple[str, ...] = ("\n\n", "###")


def extract_answer(generation: str) -> str:
    """The answer a user would read off a generation: cut at the first stop sequence, code fences dropped,
    lines joined, whitespace trimmed.

    Chat models may wrap the answer in a Markdown code fence or break a long query over several lines,
    which is formatting, not content.
    """
    text = generation.strip()
    for stop in STOP_SEQUENCES:
        text = text.split(stop, 1)[0]
    lines = [line.strip() for line in text.splitlines()]
    if lines and lines[0].startswith("```"):
        lines = lines[1:]
        if "```" in lines:
            lines = lines[: lines.index("```")]
    return " ".join(line for line in lines if line)


def extract_answers(responses: Iterable[list[Any]], _docs: list[Doc]) -> list[list[str]]:
    """lm-eval ``custom`` filter: :func:`extract_answer` of every response, so the samples file's
    ``filtered_resps`` are the answers the metrics scored. Never raises into lm-eval: a response that is not
    text (an API reply without content) reads as no answer."""
    return [[extract_answer(text) if isinstance(text, str) else "" for text in texts] for texts in responses]


def _dataset_dict(split: str, docs: list[Doc]) -> Any:
    import datasets  # lm-eval's dependency; imported late to keep `import ftbench` light

    return datasets.DatasetDict({split: datasets.Dataset.from_list(docs)})


def spider_sql_results(doc: Doc, results: list[str]) -> dict[str, float]:
    """Per-example metrics of the spider_sql tasks (lm-eval ``process_results``), on the answer the task's filter
    extracted.

    Never raises into lm-eval: the model's text is judged (and parsed) only in the sandbox, and a
    failure of the judge itself scores the example wrong and is logged as ``internal``.
    """
    from ftbench.sql import exact_match, judge

    try:
        prediction = results[0]
        config = _judge_config(doc.get("judge") or "context", doc.get("db_dir") or "")
        verdict = judge(doc["answer"], prediction, doc["context"], db_id=doc.get("db_id"), config=config)
        if verdict.error == "internal":
            _log.warning("spider_sql: example scored wrong, the judge failed on it (internal): %s", verdict.detail)
        return {
            "exec_acc": float(verdict.exec_match),
            "exact_match": float(exact_match(doc["answer"], prediction)),
            "valid_sql": float(verdict.valid_sql),
        }
    except Exception as err:  # a metric hook that raises would discard the whole evaluation
        _log.warning("spider_sql: example scored wrong, the judge failed on it (internal): %s: %s",
                     type(err).__name__, str(err)[:200])
        return {"exec_acc": 0.0, "exact_match": 0.0, "valid_sql": 0.0}


@lru_cache(maxsize=8)
def _judge_config(mode: str, db_dir: str) -> Any:
    from ftbench.sql import JudgeConfig

    return JudgeConfig(judge=mode, db_dir=Path(db_dir) if db_dir else None)  # type: ignore[arg-type]


def viggo_results(doc: Doc, results: list[str]) -> dict[str, Any]:
    """Per-example metrics of the viggo tasks, on the answer the task's filter extracted; ``slot_f1`` carries
    (tp, fp, fn) for micro averaging."""
    from ftbench.viggo import score_mr

    score = score_mr(doc["meaning_representation"], results[0])
    return {
        "exact_match": float(score.exact_match),
        "mr_match": float(score.mr_match),
        "slot_f1": (score.tp, score.fp, score.fn),
        "valid_mr": float(score.valid_mr),
    }


def slot_f1(items: list[tuple[int, int, int]]) -> float:
    """Corpus-level micro F1 over slots (lm-eval aggregation of ``slot_f1``)."""
    from ftbench.viggo import micro_f1

    return float(micro_f1(items))

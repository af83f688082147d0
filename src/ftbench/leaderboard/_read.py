"""Read lm-eval output folders: ``OUT/<model>/results_<ts>.json`` and ``samples_<task>_<ts>.jsonl``.

Every problem with a file is an :class:`~ftbench.errors.InputError` that names the file (and the line of a
samples file); a missing samples file is not an error but a warning, since the results still give the scores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftbench._jsonl import jsonl_objects
from ftbench.errors import InputError
from ftbench.leaderboard._tasks import Family, family_of

#: Key of the token usage an API model class records in a request's generation arguments
#: (``ftbench.lmeval.openai_chat.USAGE_KEY``; not imported, since that module needs lm-eval's API extra).
USAGE_KEY = "ftbench_usage"
#: A per-example metric value: 0/1 for mean metrics, (tp, fp, fn) for ``slot_f1``.
Value = float | tuple[int, int, int]


@dataclass(frozen=True)
class Sample:
    """One scored example as lm-eval logged it."""

    key: str  # names the example across prompt forms (spider ``id``, viggo ``gem_id``)
    doc: dict[str, Any]
    #: The answer scored: the task's filter extracted it, lm-eval logged it as ``filtered_resps`` (task versions before
    #: spider_sql 3.0 and viggo 2.0 logged the raw generation there).
    answer: str
    doc_hash: str
    prompt_hash: str
    target_hash: str
    values: dict[str, Value]
    #: (prompt tokens, completion tokens) the API reported for this request, when the model class recorded it.
    usage: tuple[int, int] | None = None


@dataclass(frozen=True)
class TaskRun:
    """One task of one evaluation: its settings, its aggregate scores and (when logged) its samples."""

    variant: str
    family: Family
    results_file: Path
    samples_file: Path | None  # None: lm-eval ran without --log_samples, or the file is gone
    samples: tuple[Sample, ...] | None
    aggregates: dict[str, float]
    n: int
    version: str
    limit: float | None
    generation: dict[str, Any]
    num_fewshot: int
    system_instruction_sha: str | None
    chat_template_sha: str | None
    lm_eval_version: str = "?"
    date: str = "?"  # when lm-eval ran (UTC), from the results file


@dataclass(frozen=True)
class ModelRun:
    """Everything lm-eval wrote for one model folder (``OUT/<model>/``)."""

    model_dir: Path
    model: str  # lm-eval's model type, e.g. ``hf``
    model_args: dict[str, str]
    tasks: dict[str, TaskRun]  # by variant
    warnings: tuple[str, ...] = field(default=())

    @property
    def default_name(self) -> str:
        """A readable name without models.yaml: the model (and adapter) named in ``model_args``."""
        base = self.model_args.get("pretrained") or self.model_args.get("model") or self.model_dir.name
        name = Path(base).name if "/" in base and Path(base).exists() else base
        peft = self.model_args.get("peft") or self.model_args.get("lora_local_path")
        return f"{name} + {Path(peft).name}" if peft else name


def model_dirs(run_dir: Path) -> list[Path]:
    """Folders below ``run_dir`` (itself included) that hold a ``results_*.json``."""
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: not a directory (give lm-eval's --output_path folder)")
    found = sorted({path.parent for path in run_dir.rglob("results_*.json")})
    if not found:
        raise InputError(f"{run_dir}: no lm-eval results_*.json below it (was lm-eval run with --output_path?)")
    return found


def read_model_run(model_dir: Path) -> ModelRun:
    """The newest result of each task in ``model_dir``; older results of the same task are reported as superseded."""
    results = sorted(model_dir.glob("results_*.json"), key=_timestamp)
    tasks: dict[str, TaskRun] = {}
    warnings: list[str] = []
    model, model_args = "", dict[str, str]()
    for results_file in results:
        data = _load_results(results_file)
        model, model_args = _model(data, results_file)
        for variant, task in _task_runs(data, results_file, warnings).items():
            if variant in tasks:
                warnings.append(f"{tasks[variant].results_file}: {variant} superseded by newer {results_file.name}")
            tasks[variant] = task
    return ModelRun(model_dir, model, model_args, tasks, tuple(warnings))


def _timestamp(results_file: Path) -> str:
    return results_file.stem.removeprefix("results_")


def _load_results(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read lm-eval results ({err})") from err
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON (line {err.lineno}: {err.msg}); was lm-eval interrupted?") from err
    if not isinstance(data, dict):
        raise InputError(f"{path}: not an lm-eval results file (a JSON object is expected)")
    for key in ("results", "configs"):
        if not isinstance(data.get(key), dict):
            raise InputError(f"{path}: not an lm-eval results file (no {key!r} object)")
    return data


def _model(data: dict[str, Any], path: Path) -> tuple[str, dict[str, str]]:
    config = data.get("config")
    if not isinstance(config, dict):
        raise InputError(f"{path}: lm-eval results without a 'config' object")
    args = config.get("model_args") or {}
    if isinstance(args, str):  # older lm-eval: "pretrained=x,dtype=y"
        args = dict(part.split("=", 1) for part in args.split(",") if "=" in part)
    return str(config.get("model", "")), {str(key): str(value) for key, value in args.items()}


def _task_runs(data: dict[str, Any], path: Path, warnings: list[str]) -> dict[str, TaskRun]:
    runs: dict[str, TaskRun] = {}
    for variant in data["results"]:
        family = family_of(variant)
        if family is None:
            warnings.append(f"{path}: ignoring task {variant!r} (not an ftbench task)")
            continue
        runs[variant] = _task_run(data, path, variant, family, warnings)
    return runs


def _task_run(data: dict[str, Any], path: Path, variant: str, family: Family, warnings: list[str]) -> TaskRun:
    config = data["configs"].get(variant)
    if not isinstance(config, dict):
        raise InputError(f"{path}: task {variant!r} has results but no entry in 'configs'")
    samples_file = path.with_name(f"samples_{variant}_{_timestamp(path)}.jsonl")
    samples = read_samples(samples_file, family) if samples_file.is_file() else None
    if samples is None:
        warnings.append(f"{samples_file}: missing (run lm-eval with --log_samples); {variant} has no "
                        "confidence intervals or paired tests")
    return TaskRun(
        variant=variant, family=family, results_file=path,
        samples_file=samples_file if samples is not None else None, samples=samples,
        aggregates=_aggregates(data["results"][variant], family, path),
        n=_n_samples(data, variant, samples, path),
        version=str((config.get("metadata") or {}).get("version", data.get("versions", {}).get(variant, "?"))),
        limit=_limit(data), generation=_generation(config, data),
        num_fewshot=int(config.get("num_fewshot") or 0),
        system_instruction_sha=data.get("system_instruction_sha"), chat_template_sha=data.get("chat_template_sha"),
        lm_eval_version=str(data.get("lm_eval_version") or "?"), date=_date(data.get("date")),
    )


def _date(value: Any) -> str:
    """lm-eval's ``date`` (a Unix time) as ``YYYY-MM-DD HH:MM UTC``."""
    from datetime import datetime, timezone

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "?"


def _aggregates(results: dict[str, Any], family: Family, path: Path) -> dict[str, float]:
    scores: dict[str, float] = {}
    for metric in family.metrics:
        value = results.get(f"{metric.name},none")
        if not isinstance(value, (int, float)):
            raise InputError(f"{path}: no numeric '{metric.name},none' in results of {results.get('alias', '?')}")
        scores[metric.name] = float(value)
    return scores


def _n_samples(data: dict[str, Any], variant: str, samples: tuple[Sample, ...] | None, path: Path) -> int:
    if samples is not None:
        return len(samples)
    counts = (data.get("n-samples") or {}).get(variant) or {}
    if "effective" not in counts:
        raise InputError(f"{path}: no n-samples.{variant}.effective and no samples file to count")
    return int(counts["effective"])


def _limit(data: dict[str, Any]) -> float | None:
    limit = data["config"].get("limit")
    return None if limit is None else float(limit)


def _generation(config: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """The task's generation_kwargs with any ``--gen_kwargs`` given on the command line laid over them."""
    settings = dict(config.get("generation_kwargs") or {})
    override = data["config"].get("gen_kwargs")
    if isinstance(override, dict):
        settings.update(override)
    elif isinstance(override, str) and override:
        for part in override.split(","):
            if "=" in part:
                key, value = part.split("=", 1)
                settings[key] = value
    return settings


def read_samples(path: Path, family: Family) -> tuple[Sample, ...]:
    """Samples of one task, in document order; errors name the file and line."""
    samples: dict[str, Sample] = {}
    for where, row in jsonl_objects(path, "samples"):
        sample = _sample(row, family, where)
        if sample.key in samples:
            raise InputError(f"{where}: example {sample.key!r} appears twice")
        samples[sample.key] = sample
    return tuple(samples.values())


def _sample(row: dict[str, Any], family: Family, where: str) -> Sample:
    missing = [key for key in ("doc", "filtered_resps", *(m.name for m in family.metrics)) if key not in row]
    if missing:
        raise InputError(f"{where}: sample lacks {', '.join(missing)}")
    doc = row["doc"]
    key = doc.get(family.doc_key) if isinstance(doc, dict) else None
    if key is None:
        raise InputError(f"{where}: doc has no {family.doc_key!r} to name the example")
    return Sample(key=str(key), doc=doc, answer=str(_first(row["filtered_resps"], where)),
                  doc_hash=str(row.get("doc_hash", "")), prompt_hash=str(row.get("prompt_hash", "")),
                  target_hash=str(row.get("target_hash", "")),
                  values={metric.name: _value(row[metric.name], metric.aggregation, where)
                          for metric in family.metrics}, usage=_usage(row.get("arguments")))


def _usage(arguments: Any) -> tuple[int, int] | None:
    """Token usage that ftbench's API model classes put beside the request's generation arguments
    (``arguments.gen_args_0.arg_1.ftbench_usage``, see :mod:`ftbench.lmeval.openai_chat`)."""
    requests = list(arguments.values()) if isinstance(arguments, dict) else arguments
    for request in requests if isinstance(requests, list) else []:
        found = _request_usage(request)
        if found is not None:
            return found
    return None


def _request_usage(request: Any) -> tuple[int, int] | None:
    parts = list(request.values()) if isinstance(request, dict) else request if isinstance(request, list) else []
    for part in parts:
        usage = part.get(USAGE_KEY) if isinstance(part, dict) else None
        if isinstance(usage, dict):
            prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
            if isinstance(prompt, int) and isinstance(completion, int):
                return prompt, completion
    return None


def _first(responses: Any, where: str) -> Any:
    if not isinstance(responses, list) or not responses:
        raise InputError(f"{where}: filtered_resps is not a non-empty list")
    return responses[0]


def _value(raw: Any, aggregation: str, where: str) -> Value:
    if aggregation == "micro_f1":
        if isinstance(raw, list) and len(raw) == 3 and all(isinstance(x, (int, float)) for x in raw):
            return (int(raw[0]), int(raw[1]), int(raw[2]))
        raise InputError(f"{where}: slot_f1 must be [tp, fp, fn], got {raw!r}")
    if not isinstance(raw, (int, float)) or raw not in (0, 1):
        raise InputError(f"{where}: metric value must be 0 or 1, got {raw!r}")
    return float(raw)

"""Who each run is and what it cost: ``models.yaml`` entries and the cost columns they lead to.

``models.yaml`` names each evaluated run::

    models:
      - name: CodeLlama-34B + LoRA            # display name; one name on a SQL run and a ViGGO run = one model
        results: runs/codellama-lora-spider   # lm-eval --output_path folder (or its model subfolder)
        kind: lora                            # lora | openai | base
        base_model: codellama/CodeLlama-34b-hf
        adapter: out/codellama34b_spider/adapter
        run_json: out/codellama34b_spider/run.json
      - name: GPT-3.5 fine-tuned
        results: runs/gpt35-spider
        kind: openai
        model_id: ft:gpt-3.5-turbo-0613:acme::abc123
        trained_tokens: 1498750               # cost inputs given directly, when there is no run.json
      - name: CodeLlama-34B + LoRA (vLLM)
        results: runs/codellama-lora-viggo-served
        serve_throughput: 12.5                # queries/s measured (benchmarks/bench_served_eval.py)
        serve_price_per_hour: 0.475           # $/hour of the machine that served them (default: one A40)
        serve_device: 1× A40

Paths are relative to the file. Cost comes from, in order: ``training_usd``; ``run_json`` (a LoRA or OpenAI
``run.json``; a LoRA run is re-priced when ``price_per_gpu_hour`` is given); ``gpu_hours`` × ``price_per_gpu_hour``
(default the study's A40 price); ``trained_tokens`` × ``price_per_1k_tokens`` (default the dated price of
``model_id`` / ``base_model``). ``kind: full`` marks a full-parameter fine-tune.

Serving 1,000 queries costs, in order: ``inference_usd`` (hand-typed: the dollars the evaluated queries cost,
an override); the prompt and completion tokens an OpenAI-compatible model class recorded per request (see
:mod:`ftbench.lmeval.openai_chat`) × the dated input/output price of the fine-tuned model;
``1000 / serve_throughput`` seconds × ``serve_price_per_hour``.

Without ``models.yaml``, a LoRA run's ``run.json`` is found beside the adapter lm-eval loaded
(``<output_dir>/adapter`` → ``<output_dir>/run.json``, as ``training/lora_sft.py`` writes it).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from ftbench.errors import InputError
from ftbench.finetune.record import OpenAIRunRecord, read_run_json, record_cost
from ftbench.leaderboard._read import ModelRun, TaskRun
from ftbench.pricing import A40_PRICE_PER_HOUR, PriceOverride, hours_unit, price_for, training_cost

Kind = Literal["lora", "full", "openai", "base"]
KINDS: tuple[Kind, ...] = ("lora", "full", "openai", "base")
_OPENAI_MODELS = frozenset({"openai-chat-completions", "ftbench-openai-chat", "openai-completions"})


@dataclass(frozen=True)
class ModelSpec:
    """One ``models.yaml`` entry (paths resolved against the file's folder)."""

    name: str
    results: Path
    kind: Kind | None = None
    base_model: str | None = None
    adapter: str | None = None
    model_id: str | None = None
    run_json: Path | None = None
    training_usd: float | None = None
    gpu_hours: float | None = None
    price_per_gpu_hour: float | None = None
    trained_tokens: int | None = None
    price_per_1k_tokens: float | None = None
    inference_usd: float | None = None
    serve_throughput: float | None = None  # queries per second, measured
    serve_price_per_hour: float | None = None  # $/hour of what served them; default one A40
    serve_device: str | None = None


@dataclass(frozen=True)
class CostInfo:
    """The cost columns of one run; ``None`` where unknown. ``basis`` says where the figures come from."""

    training_usd: float | None = None
    gpu_hours: float | None = None  # device-hours: GPU-hours, or CPU core-hours when ``hours_unit`` says so
    trained_tokens: int | None = None
    inference_usd: float | None = None
    basis: str = "no cost information"
    hours_unit: str = "GPU-h"
    run_json: Path | None = None  # the training record the figures come from


@dataclass(frozen=True)
class ServingCost:
    """What 1,000 queries of one task cost this model; ``None`` when unknown, with the basis either way."""

    per_1k_usd: float | None = None
    basis: str = "no serving cost information"


_FIELDS = {f.name for f in fields(ModelSpec)}
_NUMBERS = ("training_usd", "gpu_hours", "price_per_gpu_hour", "price_per_1k_tokens", "inference_usd",
            "serve_throughput", "serve_price_per_hour")


def read_models_file(path: Path) -> list[ModelSpec]:
    """Parse ``models.yaml``; every problem names the file and the entry."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read ({err})") from err
    except yaml.YAMLError as err:
        raise InputError(f"{path}: not valid YAML ({err})") from err
    entries = data.get("models") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{path}: expected a top-level 'models:' list with one entry per run")
    specs = [_spec(entry, path, index) for index, entry in enumerate(entries, 1)]
    seen: dict[Path, str] = {}
    for spec in specs:
        if spec.results in seen:
            raise InputError(f"{path}: {spec.results} is named twice ({seen[spec.results]!r} and {spec.name!r})")
        seen[spec.results] = spec.name
    return specs


def _spec(entry: Any, path: Path, index: int) -> ModelSpec:
    where = f"{path}: models[{index}]"
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected a mapping with at least 'name' and 'results'")
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_FIELDS))})")
    for key in ("name", "results"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise InputError(f"{where}: {key!r} is required (a non-empty string)")
    kind = entry.get("kind")
    if kind is not None and kind not in KINDS:
        raise InputError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    values: dict[str, Any] = dict(entry)
    for key in _NUMBERS:
        values[key] = _number(entry.get(key), f"{where}.{key}")
    tokens = _number(entry.get("trained_tokens"), f"{where}.trained_tokens")
    values["trained_tokens"] = None if tokens is None else int(tokens)
    values["results"] = (path.parent / entry["results"]).resolve()
    if not values["results"].exists():
        raise InputError(f"{where}: results folder {values['results']} does not exist")
    if entry.get("run_json") is not None:
        values["run_json"] = (path.parent / str(entry["run_json"])).resolve()
        if not values["run_json"].is_file():
            raise InputError(f"{where}: run_json {values['run_json']} does not exist")
    for key in ("base_model", "adapter", "model_id", "serve_device"):
        if values.get(key) is not None:
            values[key] = str(values[key])
    return ModelSpec(**values)


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InputError(f"{where}: expected a non-negative number, got {value!r}")
    return float(value)


def infer_kind(run: ModelRun, spec: ModelSpec | None) -> Kind:
    """``models.yaml``'s kind, else what lm-eval's model arguments show (an adapter, an ``ft:`` model)."""
    if spec is not None and spec.kind is not None:
        return spec.kind
    args = run.model_args
    if run.model in _OPENAI_MODELS or str(args.get("model", "")).startswith("ft:"):
        return "openai"
    if args.get("peft") or args.get("lora_local_path"):
        return "lora"
    return "base"


def find_run_json(run: ModelRun) -> Path | None:
    """The training ``run.json`` of the adapter lm-eval loaded: in the adapter folder or beside it."""
    adapter = run.model_args.get("peft") or run.model_args.get("lora_local_path")
    if not adapter:
        return None
    for candidate in (Path(adapter) / "run.json", Path(adapter).parent / "run.json"):
        if candidate.is_file():
            return candidate
    return None


def resolve_cost(run: ModelRun, spec: ModelSpec | None) -> CostInfo:
    """The cost columns of a run from its ``models.yaml`` entry and/or training ``run.json``."""
    spec = spec or ModelSpec(name="", results=run.model_dir)
    inference = spec.inference_usd
    if spec.training_usd is not None:
        return CostInfo(spec.training_usd, spec.gpu_hours, spec.trained_tokens, inference, "training_usd given")
    run_json = spec.run_json or find_run_json(run)
    if run_json is not None:
        return replace(_from_run_json(run_json, spec, inference), run_json=run_json)
    if spec.gpu_hours is not None:
        price = spec.price_per_gpu_hour if spec.price_per_gpu_hour is not None else A40_PRICE_PER_HOUR
        return CostInfo(spec.gpu_hours * price, spec.gpu_hours, None, inference,
                        f"{spec.gpu_hours:g} GPU-hours × ${price:g}/GPU-hour")
    if spec.trained_tokens is not None:
        return _from_tokens(spec.trained_tokens, _openai_model(run, spec), spec.price_per_1k_tokens, inference)
    return CostInfo(inference_usd=inference)


def _from_run_json(path: Path, spec: ModelSpec, inference: float | None) -> CostInfo:
    record = read_run_json(path)
    if isinstance(record, OpenAIRunRecord):
        return _from_openai_record(record, path, spec, inference)
    cost = record_cost(record, spec.price_per_gpu_hour)
    unit = hours_unit(cost.gpu_name)
    device = f"{cost.gpu_count} CPU cores" if unit == "CPU-h" else f"{cost.gpu_count}× {cost.gpu_name}"
    return CostInfo(cost.cost_usd, cost.gpu_hours, None, inference,
                    f"{cost.gpu_hours:.3g} {unit} on {device} × ${cost.price_per_gpu_hour:g}/{unit[:-2]}-hour "
                    f"({path.name})", unit)


def _from_openai_record(record: OpenAIRunRecord, path: Path, spec: ModelSpec, inference: float | None) -> CostInfo:
    tokens = record.trained_tokens
    if tokens is None:
        raise InputError(f"{path}: OpenAI run without trained_tokens (status {record.status!r}); "
                         "is the job finished? `training/openai_finetune.py status` updates it")
    if spec.price_per_1k_tokens is None and record.cost_usd is not None:
        basis = str((record.cost or {}).get("basis") or f"cost_usd of {path}")
        return CostInfo(float(record.cost_usd), None, tokens, inference, basis)
    model = str(record.fine_tuned_model or record.config.get("model") or "")
    return _from_tokens(tokens, model, spec.price_per_1k_tokens, inference)


def _from_tokens(tokens: int, model: str, price_per_1k: float | None, inference: float | None) -> CostInfo:
    price = price_for(model or "unknown", PriceOverride(training_per_1k=price_per_1k))
    cost = training_cost(tokens, price)
    return CostInfo(cost.usd, None, tokens, inference, cost.basis)


def serving_cost(task: TaskRun, run: ModelRun, spec: ModelSpec | None) -> ServingCost:
    """$ per 1,000 queries of ``task``: hand-typed ``inference_usd``, else measured throughput × $/hour (a served
    open model), else the recorded token usage × the dated price of the model."""
    spec = spec or ModelSpec(name="", results=run.model_dir)
    if spec.inference_usd is not None and task.n:
        return ServingCost(1000 * spec.inference_usd / task.n,
                           f"inference_usd ${spec.inference_usd:g} given for {task.n:,} queries")
    if spec.serve_throughput:
        price = A40_PRICE_PER_HOUR if spec.serve_price_per_hour is None else spec.serve_price_per_hour
        device = spec.serve_device or "one A40"
        return ServingCost(1000 / spec.serve_throughput / 3600 * price,
                           f"{spec.serve_throughput:g} queries/s measured on {device} × ${price:g}/hour")
    usage = [s.usage for s in task.samples or () if s.usage is not None]
    return _from_usage(usage, _openai_model(run, spec)) if usage else ServingCost()


def _from_usage(usage: list[tuple[int, int]], model: str) -> ServingCost:
    prompt, completion = sum(u[0] for u in usage), sum(u[1] for u in usage)
    tokens = f"{prompt / len(usage):,.0f} prompt + {completion / len(usage):,.0f} completion tokens per query"
    try:
        price = price_for(model or "unknown")
    except InputError:
        return ServingCost(None, f"{tokens} (recorded); no price known for {model or 'the model'}")
    if price.input_per_1k is None or price.output_per_1k is None:
        return ServingCost(None, f"{tokens} (recorded); no usage price for {price.model}")
    usd = (prompt * price.input_per_1k + completion * price.output_per_1k) / 1000
    return ServingCost(1000 * usd / len(usage),
                       f"{tokens} (recorded) × ${price.input_per_1k:g}/${price.output_per_1k:g} per 1K in/out "
                       f"({price.model} fine-tuned, {price.provenance})")


def _openai_model(run: ModelRun, spec: ModelSpec) -> str:
    return spec.model_id or spec.base_model or run.model_args.get("model", "")

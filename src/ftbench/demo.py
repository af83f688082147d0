"""``ftbench demo``: the main job on an embedded default, offline on a laptop CPU in about a minute.

It runs the study's pipeline top to bottom on a tiny model:

1. build the tiny model (:mod:`ftbench.tiny`): a random Llama and a tokenizer trained on the task data;
2. LoRA-train one adapter per task, briefly (:mod:`ftbench.finetune.lora`): ``lora/<task>/{adapter,run.json}``;
3. evaluate the base model in-process (lm-eval ``hf``) on both tasks;
4. evaluate each adapter in-process on its task (lm-eval ``hf`` with ``peft=``);
5. merge each adapter, serve the merged model (``transformers serve`` on CPU) and evaluate it over the endpoint
   (lm-eval ``local-completions``): greedy decoding of the same weights, so the same answers as step 4;
6. write ``models.yaml`` and the leaderboard (:mod:`ftbench.leaderboard`).

Layout of the output folder: ``tiny-model/``, ``lora/<task>/``, ``merged/<task>/``, ``lm-eval/base/``,
``lm-eval/{lora-hf,lora-served}/<task>/``, ``serve-<task>.log``, ``models.yaml``, ``report/``.

If serving fails, the leaderboard is still written from the in-process results and the error names what was
kept. The model is random: its scores are noise; the point is that every stage runs.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ftbench import serve
from ftbench.errors import FtbenchError, InputError, MissingDependency
from ftbench.lmeval.run import main as run_lm_eval
from ftbench.tiny import build_tiny_model, corpus_from_data

if TYPE_CHECKING:
    from ftbench.finetune.lora import LoraRunConfig, TrainResult
    from ftbench.leaderboard import Report

DEMO_TASKS = ("spider_sql", "viggo")
STAGES = 6
#: Written first into the output folder: a rerun clears only folders that carry it.
MARKER = ".ftbench-demo"
#: Modules the demo needs beyond the base install, and the install spec that brings each.
EXTRAS = {"peft": "ftbench[train]", "trl": "ftbench[train]", "fastapi": "transformers[serving]",
          "uvicorn": "transformers[serving]", "aiohttp": "lm_eval[api]", "tenacity": "lm_eval[api]"}

Say = Callable[[str], None]


class EvaluationFailed(FtbenchError):
    """lm-eval exited non-zero, crashed against the server, or wrote no results."""


class DemoIncomplete(FtbenchError):
    """A late stage failed; what the earlier stages wrote is kept, and the message says where."""

    def __init__(self, message: str, cause: FtbenchError) -> None:
        super().__init__(message)
        self.exit_code = cause.exit_code


@dataclass(frozen=True)
class DemoConfig:
    out_dir: Path
    limit: int = 5  # examples per task in each evaluation
    tasks: tuple[str, ...] = DEMO_TASKS
    train_steps: int = 30  # per adapter, 8 examples a step
    port: int | None = None  # None: any free port
    health_timeout_s: float = 120.0


@dataclass(frozen=True)
class DemoLayout:
    """Where each stage writes, below the output folder."""

    root: Path

    @property
    def model_dir(self) -> Path:
        return self.root / "tiny-model"

    @property
    def models_file(self) -> Path:
        return self.root / "models.yaml"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    def lora_dir(self, task: str) -> Path:
        return self.root / "lora" / task

    def merged_dir(self, task: str) -> Path:
        return self.root / "merged" / task

    def eval_dir(self, *parts: str) -> Path:
        return self.root.joinpath("lm-eval", *parts)

    def serve_log(self, task: str) -> Path:
        return self.root / f"serve-{task}.log"

    def owned(self) -> list[Path]:
        """Everything a demo run writes (a rerun removes these, and nothing else)."""
        return [self.model_dir, self.root / "lora", self.root / "merged", self.eval_dir(), self.models_file,
                self.report_dir, *self.root.glob("serve-*.log")]


@dataclass(frozen=True)
class Evaluation:
    """One lm-eval run, as the leaderboard's ``models.yaml`` lists it (one name across tasks = one model)."""

    name: str
    kind: str  # base | lora
    tasks: tuple[str, ...]
    results_dir: Path  # lm-eval --output_path
    base_model: Path
    adapter: Path | None = None
    run_json: Path | None = None


@dataclass(frozen=True)
class DemoResult:
    model_dir: Path
    adapters: dict[str, TrainResult]  # by task
    evaluations: tuple[Evaluation, ...]
    models_file: Path
    report: Report
    wall_time_s: float


def run_demo(config: DemoConfig, say: Say = lambda _: None) -> DemoResult:
    """Every stage in order, each announced through ``say``; errors are FtbenchError subclasses."""
    started = time.monotonic()
    layout = prepare_out_dir(config.out_dir)
    require_extras()
    stage = _stage_counter(say, started)
    stage("building the tiny model (random Llama, tokenizer trained on the task data)")
    model_dir = build_tiny_model(layout.model_dir, corpus_from_data())
    stage(f"LoRA-training one adapter per task ({config.train_steps} steps each)")
    adapters = {task: train_adapter(demo_lora_config(model_dir, task, layout.lora_dir(task), config.train_steps))
                for task in config.tasks}
    stage(f"evaluating the base model in-process on {', '.join(config.tasks)} (limit {config.limit})")
    evaluations = [evaluate_base(model_dir, config, layout)]
    stage("evaluating each adapter in-process on its task (lm-eval hf, peft=)")
    evaluations += [evaluate_adapter(model_dir, task, adapters[task], config, layout) for task in config.tasks]
    stage("merging each adapter, serving it with `transformers serve`, evaluating over the endpoint")
    served, failure = evaluate_all_served(model_dir, adapters, config, layout)
    stage("writing the leaderboard")
    report = write_leaderboard(layout, [*evaluations, *served])
    if failure is not None:
        raise _incomplete(failure, layout, report)
    return DemoResult(model_dir, adapters, (*evaluations, *served), layout.models_file, report,
                      time.monotonic() - started)


def _stage_counter(say: Say, started: float) -> Say:
    """``say`` with the stage number and the seconds elapsed so far in front."""
    count = iter(range(1, STAGES + 1))
    return lambda text: say(f"[{next(count)}/{STAGES}, {time.monotonic() - started:3.0f} s] {text}")


def prepare_out_dir(out_dir: Path) -> DemoLayout:
    """A new or empty folder, or a previous demo's (whose outputs are removed); refuses any other folder."""
    layout = DemoLayout(out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not (out_dir / MARKER).is_file():
            raise InputError(f"{out_dir} is not empty and was not written by `ftbench demo`; "
                             "choose a new folder with --out")
        for path in layout.owned():
            _remove(path)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text("written by `ftbench demo`; a rerun replaces its outputs in this folder\n",
                                  encoding="utf-8")
    return layout


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def require_extras() -> None:
    """Fail in a second, not after training, when training, serving or lm-eval's API models cannot run."""
    missing = [module for module in EXTRAS if importlib.util.find_spec(module) is None]
    if missing:
        specs = " ".join(sorted({f"'{EXTRAS[module]}'" for module in missing}))
        raise MissingDependency(f"ftbench demo trains, serves and evaluates over HTTP, and {', '.join(missing)} "
                                f"{'is' if len(missing) == 1 else 'are'} not installed: pip install 'ftbench[demo]' "
                                f"(or {specs})")


def demo_lora_config(model_dir: Path, task: str, output_dir: Path, steps: int) -> LoraRunConfig:
    """training/configs/tiny_cpu.yaml, built in code (the wheel does not ship training/): seconds on a CPU."""
    from ftbench.finetune.lora_config import LoraRunConfig

    return LoraRunConfig(
        base_model=str(model_dir), task=task, output_dir=str(output_dir), train_limit=8 * steps, eval_limit=16,
        torch_dtype="float32", mixed_precision="fp32", gradient_checkpointing=False,
        per_device_train_batch_size=8, gradient_accumulation_steps=1, per_device_eval_batch_size=8,
        # A random 0.2M-parameter model needs a larger step size than the study's 3e-4 to move at all.
        learning_rate=1e-2, warmup_steps=3, max_steps=steps, seed=0,
        eval_steps=max(1, steps // 3), save_steps=steps, logging_steps=max(1, steps // 3),
    )


def train_adapter(lora_config: LoraRunConfig) -> TrainResult:
    from ftbench.finetune.lora import train

    return train(lora_config)


def evaluate_base(model_dir: Path, config: DemoConfig, layout: DemoLayout) -> Evaluation:
    evaluation = Evaluation("tiny base (hf)", "base", config.tasks, layout.eval_dir("base"), model_dir)
    run_evaluation(_hf_args(f"pretrained={model_dir},dtype=float32"), evaluation, config.limit)
    return evaluation


def evaluate_adapter(model_dir: Path, task: str, trained: TrainResult, config: DemoConfig,
                     layout: DemoLayout) -> Evaluation:
    evaluation = Evaluation("tiny + LoRA (hf)", "lora", (task,), layout.eval_dir("lora-hf", task), model_dir,
                            trained.adapter_dir, trained.run_json)
    run_evaluation(_hf_args(f"pretrained={model_dir},peft={trained.adapter_dir},dtype=float32"), evaluation,
                   config.limit)
    return evaluation


def _hf_args(model_args: str) -> list[str]:
    return ["--model", "hf", "--model_args", model_args, "--batch_size", "1"]


def evaluate_all_served(model_dir: Path, adapters: dict[str, TrainResult], config: DemoConfig,
                        layout: DemoLayout) -> tuple[list[Evaluation], FtbenchError | None]:
    """The served evaluations that succeeded, and the failure that stopped the rest (None if none did)."""
    done: list[Evaluation] = []
    for task, trained in adapters.items():
        try:
            done.append(evaluate_served(model_dir, task, trained, config, layout))
        except FtbenchError as failure:
            return done, failure
    return done, None


def evaluate_served(model_dir: Path, task: str, trained: TrainResult, config: DemoConfig,
                    layout: DemoLayout) -> Evaluation:
    """Merge the adapter, serve the merged model on CPU, evaluate it over HTTP; the server stops in any case."""
    from ftbench.finetune.lora import merge_adapter

    merged = merge_adapter(trained.adapter_dir, layout.merged_dir(task), base_model=str(model_dir))
    spec = serve.ServeSpec(base_model=str(merged), engine="transformers", port=config.port or free_port())
    evaluation = Evaluation("tiny + LoRA (served)", "lora", (task,), layout.eval_dir("lora-served", task),
                            model_dir, trained.adapter_dir, trained.run_json)
    log = layout.serve_log(task)
    process = serve.start_server(spec, log)
    try:
        serve.wait_healthy(process, spec.base_url, log, config.health_timeout_s)
        _evaluate_endpoint(served_args(spec, merged), evaluation, config.limit, log)
    finally:
        serve.stop_server(process)
    return evaluation


def served_args(spec: serve.ServeSpec, model: Path) -> list[str]:
    """lm-eval's completions client with text prompts and the local tokenizer (no hub, no tiktoken)."""
    return ["--model", "local-completions", "--model_args",
            f"model={model},base_url={spec.base_url}/completions,tokenizer={model},tokenized_requests=False,"
            "num_concurrent=2,max_retries=1"]


def _evaluate_endpoint(model_args: Sequence[str], evaluation: Evaluation, limit: int, log: Path) -> None:
    try:
        run_evaluation(model_args, evaluation, limit)
    except FtbenchError:
        raise
    except Exception as err:  # lm-eval's HTTP client gives up with its own errors when the server misbehaves
        raise EvaluationFailed(f"lm-eval against the server failed ({type(err).__name__}: {err}); "
                               f"server log: {log}") from err


def free_port() -> int:
    """A TCP port nothing listens on now (the server binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_evaluation(model_args: Sequence[str], evaluation: Evaluation, limit: int) -> Path:
    """lm-eval (what ``ftbench eval`` runs) on the evaluation's tasks, samples logged, into its results folder."""
    argv = [*model_args, "--tasks", ",".join(evaluation.tasks), "--limit", str(limit), "--log_samples",
            "--output_path", str(evaluation.results_dir)]
    with _quiet_lm_eval():
        code = run_lm_eval(argv)
    if code != 0:
        raise EvaluationFailed(f"lm-eval exited with code {code} evaluating {evaluation.name} on "
                               f"{', '.join(evaluation.tasks)}; see its messages above")
    if not any(evaluation.results_dir.rglob("results_*.json")):
        raise EvaluationFailed(f"lm-eval wrote no results_*.json below {evaluation.results_dir}")
    return evaluation.results_dir


@contextmanager
def _quiet_lm_eval() -> Iterator[None]:
    """lm-eval's INFO lines would bury the demo's stages; its warnings still show, and LMEVAL_LOG_LEVEL wins."""
    saved = os.environ.get("LMEVAL_LOG_LEVEL")
    os.environ["LMEVAL_LOG_LEVEL"] = saved or "WARNING"
    try:
        yield
    finally:
        if saved is None:
            del os.environ["LMEVAL_LOG_LEVEL"]


def write_models_file(layout: DemoLayout, evaluations: Sequence[Evaluation]) -> Path:
    """The leaderboard's ``models.yaml``: display names, kinds and provenance, paths relative to the file."""
    def rel(path: Path) -> str:
        return os.path.relpath(path, layout.root)

    entries = [{"name": e.name, "results": rel(e.results_dir), "kind": e.kind, "base_model": rel(e.base_model),
                **({"adapter": rel(e.adapter)} if e.adapter else {}),
                **({"run_json": rel(e.run_json)} if e.run_json else {})} for e in evaluations]
    layout.models_file.write_text(yaml.safe_dump({"models": entries}, sort_keys=False), encoding="utf-8")
    return layout.models_file


def write_leaderboard(layout: DemoLayout, evaluations: Sequence[Evaluation]) -> Report:
    from ftbench.leaderboard import build_leaderboard

    models_file = write_models_file(layout, evaluations)
    return build_leaderboard([], layout.report_dir, models_file=models_file, progress=False)


def _incomplete(failure: FtbenchError, layout: DemoLayout, report: Report) -> DemoIncomplete:
    return DemoIncomplete(
        f"the served evaluation failed: {failure}\n"
        f"kept: adapters and run.json in {layout.root / 'lora'}, lm-eval results in {layout.eval_dir()}, "
        f"report {report.html} (and {report.markdown.name})", failure)

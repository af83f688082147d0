"""The ``ftbench`` command: thin click wrappers over the library. Errors become a message and an exit code."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

from ftbench.errors import EXIT_OK, run_reporting_errors

if TYPE_CHECKING:
    from ftbench.scoring import ScoreReport

F = TypeVar("F", bound=Callable[..., Any])


def _friendly_errors(command: F) -> F:
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        code = run_reporting_errors(lambda: command(*args, **kwargs))
        if code != EXIT_OK:
            sys.exit(code)

    return wrapper  # type: ignore[return-value]


@click.group()
@click.version_option(package_name="ftbench")
def main() -> None:
    """ftbench: fine-tune an open model or a closed one? Decide with numbers."""
    from ftbench._paths import absolute_path_env

    absolute_path_env()  # resolved once, here, so every subprocess we start reads the same folder


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                "help_option_names": []})
@click.argument("lm_eval_args", nargs=-1, type=click.UNPROCESSED)
@_friendly_errors
def eval(lm_eval_args: tuple[str, ...]) -> None:
    """Run lm-eval with ftbench's tasks available; all arguments go to lm-eval (try `ftbench eval -h`).

    Example: ftbench eval --model hf --model_args pretrained=DIR --tasks spider_sql,viggo --limit 5
    """
    from ftbench.lmeval.run import main as run_lm_eval

    sys.exit(run_lm_eval(list(lm_eval_args)))


@main.command("tasks-dir")
def tasks_dir_command() -> None:
    """Print the folder holding ftbench's task YAMLs (for lm-eval's --include_path)."""
    from ftbench.lmeval import tasks_dir

    click.echo(str(tasks_dir()))


@main.group()
def score() -> None:
    """Score saved predictions (JSONL) without a model; the last stdout line is a JSON summary."""


_input = click.option("--input", "input_path", type=click.Path(path_type=Path), required=True,
                      help="JSONL with one prediction per line.")
_output = click.option("--output", "output_path", type=click.Path(path_type=Path), required=True,
                       help="JSONL to write: each input row plus its scores, streamed as scored.")
_progress = click.option("--progress/--no-progress", default=True, show_default=True,
                         help="Progress bar on stderr.")
_resume = click.option("--resume", is_flag=True,
                       help="Keep the rows already in --output (same id and input) and score only the others.")


def _finish(report: ScoreReport) -> None:
    """Warnings on stderr, the summary as the last stdout line, and the report's exit code."""
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(json.dumps(report.summary))
    if report.exit_code:
        sys.exit(report.exit_code)


@score.command("viggo")
@_input
@_output
@_progress
@_resume
@_friendly_errors
def score_viggo(input_path: Path, output_path: Path, progress: bool, resume: bool) -> None:
    """Score ViGGO meaning representations: rows {gold, prediction}."""
    from ftbench.scoring import ScoreRun, score_file
    from ftbench.viggo import ViggoScorer

    _finish(score_file(ViggoScorer(), ScoreRun(input_path, output_path, jobs=1, progress=progress, resume=resume)))


@score.command("sql")
@_input
@_output
@click.option("--db-dir", type=click.Path(path_type=Path, file_okay=False, exists=True, resolve_path=True),
              default=None, help="Spider-layout folder <dir>/<db_id>/*.sqlite with the rows' real databases.")
@click.option("--judge", "judge_mode", type=click.Choice(["context", "test-suite", "real-db"]), default=None,
              help="Which databases decide: synthesized from the context; the real database plus fuzzed ones "
                   "with its schema; the real database alone (rows without one: context, counted as no_real_db). "
                   "[default: test-suite with --db-dir, else context]")
@click.option("--real-db-only", is_flag=True, help="Alias of --judge real-db.")
@click.option("--num-dbs", type=click.IntRange(min=1), default=None, help="Synthesized databases per example.")
@click.option("--timeout", type=click.FloatRange(min=0.01), default=None, help="Per-query timeout in seconds.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the synthesized databases.")
@click.option("--jobs", type=click.IntRange(min=1), default=os.cpu_count() or 1, show_default="all cores",
              help="Worker processes.")
@_progress
@_resume
@_friendly_errors
def score_sql(input_path: Path, output_path: Path, db_dir: Path | None, judge_mode: str | None, real_db_only: bool,
              num_dbs: int | None, timeout: float | None, seed: int, jobs: int, progress: bool, resume: bool) -> None:
    """Score SQL predictions: rows {context, gold, prediction} (optional db_id, id).

    Exit codes: 0 done; 2 bad input, options or output; 3 some row could not be judged (error
    'internal', named on stderr); 130 interrupted (the rows scored so far are kept; --resume continues).
    """
    from ftbench.scoring import ScoreRun, score_file
    from ftbench.sql import JudgeConfig, SqlScorer

    mode = _judge_mode(db_dir, judge_mode, real_db_only)
    config = JudgeConfig(seed=seed, db_dir=db_dir, judge=mode)
    if num_dbs is not None:
        config = replace(config, n_databases=num_dbs)
    if timeout is not None:
        config = replace(config, timeout_s=timeout)
    run = ScoreRun(input_path, output_path, jobs=jobs, progress=progress, resume=resume)
    _finish(score_file(SqlScorer(config), run))


def _judge_mode(db_dir: Path | None, judge_mode: str | None,
                real_db_only: bool) -> Literal["context", "test-suite", "real-db"]:
    if real_db_only and judge_mode not in (None, "real-db"):
        raise click.UsageError(f"--real-db-only contradicts --judge {judge_mode}")
    mode = "real-db" if real_db_only else judge_mode or ("test-suite" if db_dir is not None else "context")
    if mode != "context" and db_dir is None:
        raise click.UsageError("--real-db-only needs --db-dir" if real_db_only else f"--judge {mode} needs --db-dir")
    return mode  # type: ignore[return-value]


@main.command("merge-adapter")
@click.argument("adapter_dir", type=click.Path(path_type=Path, file_okay=False))
@click.argument("out_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--base-model", default=None, help="Base model (default: the one named in the adapter's config).")
@_friendly_errors
def merge_adapter_command(adapter_dir: Path, out_dir: Path, base_model: str | None) -> None:
    """Fold a LoRA adapter into its base model and write the merged model (for engines without LoRA)."""
    from ftbench.finetune.lora import merge_adapter

    click.echo(str(merge_adapter(adapter_dir, out_dir, base_model=base_model)))


@main.command()
@click.argument("base_model")
@click.argument("engine_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- ENGINE_ARGS...]")
@click.option("--adapter", "adapters", multiple=True, metavar="NAME=PATH",
              help="A LoRA adapter to serve under NAME (repeat for several tasks' adapters); PATH may hold = or ,.")
@click.option("--engine", type=click.Choice(["vllm", "transformers"]), default="vllm", show_default=True,
              help="vllm (GPU, LoRA) or transformers (CPU fallback, serves a merged model).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--dtype", default="auto", show_default=True)
@click.option("--tensor-parallel-size", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--chat-template", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Jinja chat template for vLLM, for a base model without one (needed by the *_chat tasks).")
@click.option("--health-timeout", type=click.FloatRange(min=1), default=900, show_default=True,
              help="Seconds to wait for the server to answer /health.")
@click.option("--log", "log_file", type=click.Path(path_type=Path, dir_okay=False),
              default=Path("ftbench-out/serve.log"), show_default=True, help="Server output goes here.")
@click.option("--dry-run", is_flag=True, help="Print the server command and the lm-eval commands; start nothing.")
@_friendly_errors
def serve(base_model: str, engine_args: tuple[str, ...], adapters: tuple[str, ...], engine: str, host: str,
          port: int, dtype: str, tensor_parallel_size: int, chat_template: Path | None, health_timeout: float,
          log_file: Path, dry_run: bool) -> None:
    """Serve BASE_MODEL (with LoRA adapters) behind an OpenAI-compatible API for lm-eval.

    Anything after `--` goes to the engine unchanged, e.g.
    `ftbench serve BASE --adapter sql=DIR -- --max-model-len 4096 --gpu-memory-utilization 0.9`.
    """
    import shlex

    from ftbench import serve as serving

    spec = serving.ServeSpec(base_model=base_model, adapters=tuple(serving.read_adapter(a) for a in adapters),
                             engine=engine, host=host, port=port, dtype=dtype,  # type: ignore[arg-type]
                             tensor_parallel_size=tensor_parallel_size, chat_template=chat_template,
                             extra_args=engine_args)
    serving.check_adapters(spec)
    serving.check_extra_args(spec)
    chat = chat_template is not None or serving.has_chat_template(base_model)

    def show_commands() -> None:
        click.echo(f"serving at {spec.base_url} (Ctrl-C stops it); evaluate with:")
        for model in serving.served_model_names(spec):
            for line in serving.lm_eval_commands(spec, model, tokenizer=base_model, chat=bool(chat)):
                click.echo(f"  {line}")
        if not chat:
            why = ("has no chat template and vLLM refuses chat requests without one" if chat is False
                   else "could not be checked for a chat template (its tokenizer could not be read)")
            click.echo(f"  (no chat-task commands: {base_model} {why}; pass --chat-template FILE to evaluate "
                       "spider_sql_chat and viggo_chat)")

    if dry_run:
        click.echo(shlex.join(serving.server_command(spec)))
        show_commands()
        return
    click.echo(f"starting: {shlex.join(serving.server_command(spec))}\nlog: {log_file}", err=True)
    sys.exit(serving.serve_until_interrupted(spec, log_file, health_timeout, show_commands))


@main.command()
@click.argument("run_dirs", nargs=-1, type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--models", "models_file", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="models.yaml naming each run (display name, kind, base model, adapter or model id, cost).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=Path("leaderboard"),
              show_default=True, help="Folder for leaderboard.{md,html,csv}, pairs.csv and the plots.")
@click.option("--breakdown/--no-breakdown", default=True, show_default=True,
              help="Judge SQL predictions again for error classes; count ViGGO function confusions.")
@_progress
@_friendly_errors
def leaderboard(run_dirs: tuple[Path, ...], models_file: Path | None, out_dir: Path, breakdown: bool,
                progress: bool) -> None:
    """Compare lm-eval runs: scores with 95% CIs, paired McNemar tests, cost, plots, error breakdown.

    RUN_DIRS are lm-eval --output_path folders (run with --log_samples for intervals and paired tests).
    The last stdout line is a JSON summary of the scores by group and model.
    """
    from ftbench.leaderboard import build_leaderboard

    if not run_dirs and models_file is None:
        raise click.UsageError("give lm-eval output folders, --models models.yaml, or both")
    report = build_leaderboard(list(run_dirs), out_dir, models_file, breakdown=breakdown, progress=progress)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"report: {report.html}\n        {report.markdown}\ntables: {report.csv}, {report.pairs_csv}")
    click.echo(f"plots:  {', '.join(str(path) for path in report.plots)}")
    click.echo(report.summary)


@main.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=Path("ftbench-out/demo"),
              show_default=True, help="Output folder (new, empty, or a previous demo's, which is replaced).")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True,
              help="Examples per task in each evaluation.")
@click.option("--base-steps", type=click.IntRange(min=1), default=375, show_default=True,
              help="Training steps of the shared base (from scratch).")
@click.option("--steps", "recipe_steps", type=click.IntRange(min=1), default=175, show_default=True,
              help="Training steps of each recipe (full fine-tuning, LoRA r=8) from the base.")
@click.option("--serve-limit", type=click.IntRange(min=0), default=10, show_default=True,
              help="ViGGO examples evaluated over HTTP against the served LoRA recipe (0: do not serve).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars on stderr.")
@click.option("--side-by-side/--in-turn", "side_by_side", default=None,
              help="Train and evaluate the two recipes at once, one process each on its share of the cores, or "
                   "one after the other on every core. Default: side by side on 2 or more cores, unless the load "
                   "average is already twice the core count.")
@_friendly_errors
def demo(out_dir: Path, limit: int, base_steps: int, recipe_steps: int, serve_limit: int, progress: bool,
         side_by_side: bool | None) -> None:
    """The main job on a model trained here from scratch, offline on two CPU cores in about three minutes.

    Trains a 0.91M-parameter Llama from scratch, fine-tunes it two ways (full fine-tuning and LoRA r=8),
    evaluates both through lm-eval on spider_sql and viggo, checks the served path (transformers' server),
    and writes the leaderboard. Data comes from $FTBENCH_DATA_DIR when set (no network), else from the
    Hugging Face hub.
    """
    from ftbench.demo import DemoConfig, exit_without_collecting, run_demo, summary_lines

    config = DemoConfig(out_dir=out_dir, limit=limit, base_steps=base_steps, recipe_steps=recipe_steps,
                        serve_limit=serve_limit, progress=progress, side_by_side=side_by_side)
    result = run_demo(config, say=click.echo)
    click.echo("")
    for line in summary_lines(result):
        click.echo(line)
    for warning in result.report.warnings:
        click.echo(f"warning:  {warning}", err=True)
    click.echo(f"done in {result.wall_time_s:.0f} s; the report is in {result.report.out_dir}:")
    click.echo(f"report:   {result.report.html}\n          {result.report.markdown}")
    exit_without_collecting()

"""``ftbench eval``: lm-eval's own arguments, with ftbench's tasks and model classes available.

The arguments are parsed by lm-eval's own parser and checked by its ``EvaluatorConfig``. When only ftbench tasks are
asked for, the run goes through lm-eval's Python API: a ``TaskManager`` that indexes our task folder alone (a
fraction of a second instead of lm-eval's ~14k built-in YAMLs, `benchmarks/bench_task_index.py`) handed to
``simple_evaluate(task_manager=…)``, results saved by lm-eval's ``EvaluationTracker`` as its CLI saves them.
Anything else (other tasks, ``ls``/``validate``, W&B/Trackio/Hub logging) runs lm-eval's CLI, with our folder as
``--include_path`` where lm-eval does not index it by itself (editable installs). Nothing of lm-eval is patched;
only :func:`lm_eval_bars_off` swaps the progress-bar class its modules call, and :func:`environment_report_once`
and :func:`git_describe_quietly` the provenance it records, for the duration of a run.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ftbench.errors import InputError
from ftbench.lmeval import TASK_NAMES, installed_in_lm_eval, tasks_dir


def task_manager_options(tasks: Sequence[str], ours: Path, include_path: str | None = None) -> dict[str, Any]:
    """``TaskManager`` arguments under which ``tasks`` resolve: our folder (and the user's ``--include_path``);
    lm-eval's built-ins only when a task outside ours is asked for."""
    paths = [ours, *([Path(include_path)] if include_path else [])]
    only_ours = bool(tasks) and all(name in TASK_NAMES for name in tasks)
    return {"include_path": paths, "include_defaults": not only_ours}


def main(argv: Sequence[str]) -> int:
    """Run lm-eval on ``argv`` with our tasks available; returns the exit code."""
    _register_models()
    return _exit_code(lambda: _run(list(argv)))


def _run(argv: list[str]) -> None:
    args = _parse(argv)
    if getattr(args, "command", None) != "run":  # lm-eval's help, `ls` or `validate`
        return _lm_eval_cli(argv, include_ours=bool(argv))
    config = _config(args)
    tasks = _task_list(config.tasks)
    if tasks and all(name in TASK_NAMES for name in tasks) and not _logs_elsewhere(config):
        return _evaluate(config, tasks)
    return _lm_eval_cli(argv, include_ours=any(name in TASK_NAMES for name in tasks))


def _parse(argv: list[str]) -> Any:
    """lm-eval's own command-line parser on ``argv`` (``run`` implied, as for ``lm_eval``)."""
    from lm_eval._cli import HarnessCLI  # the parser lm_eval's console script uses; exits on -h and bad options

    with _argv(["lm_eval", *argv]):
        return HarnessCLI().parse_args()


def _config(args: Any) -> Any:
    from lm_eval.config.evaluate_config import EvaluatorConfig

    try:
        return EvaluatorConfig.from_cli(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        raise InputError(f"lm-eval arguments: {err}") from err


def _task_list(tasks: Any) -> list[str]:
    names = tasks.split(",") if isinstance(tasks, str) else [part for task in tasks or [] for part in task.split(",")]
    return [name.strip() for name in names if name.strip()]


def _logs_elsewhere(config: Any) -> bool:
    """W&B, Trackio, the Hub or a config dump: left to lm-eval's CLI, which does them."""
    hub = {key for key in config.hf_hub_log_args if key != "output_path"}
    return bool(config.wandb_args or config.trackio_args or hub or config.show_config)


def _evaluate(config: Any, tasks: list[str]) -> None:
    """lm-eval's ``simple_evaluate`` with a TaskManager of our folder; results and samples saved, table printed
    (what lm-eval's ``run`` command does)."""
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import make_table, setup_logging

    setup_logging()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    manager = TaskManager(**task_manager_options(tasks, tasks_dir(), config.include_path),
                          metadata=config.metadata or {})
    tracker = EvaluationTracker(output_path=config.output_path) if config.output_path else EvaluationTracker()
    results = simple_evaluate(task_manager=manager, evaluation_tracker=tracker, tasks=tasks,
                              **_evaluate_arguments(config))
    if results is None:  # not the main process of a distributed run
        return
    samples: dict[str, Any] | None = results.pop("samples") if config.log_samples else None
    tracker.save_results_aggregated(results=results, samples=samples)
    for task_name, task_samples in (samples or {}).items():
        tracker.save_results_samples(task_name=task_name, samples=task_samples)
    print(f"{config.model} ({json.dumps(config.model_args, default=str)}), gen_kwargs: ({config.gen_kwargs}), "
          f"limit: {config.limit}, num_fewshot: {config.num_fewshot}, batch_size: {config.batch_size}")
    print(make_table(results))
    if "groups" in results:
        print(make_table(results, "groups"))


def _evaluate_arguments(config: Any) -> dict[str, Any]:
    """``simple_evaluate`` keywords from lm-eval's config, as lm-eval's ``run`` command passes them."""
    seeds = config.seed or [None] * 4
    cache = config.cache_requests or {}
    return {
        "model": config.model, "model_args": config.model_args, "num_fewshot": config.num_fewshot,
        "batch_size": config.batch_size, "max_batch_size": config.max_batch_size, "device": config.device,
        "use_cache": config.use_cache, "cache_requests": cache.get("cache_requests", False),
        "rewrite_requests_cache": cache.get("rewrite_requests_cache", False),
        "delete_requests_cache": cache.get("delete_requests_cache", False),
        "limit": config.limit, "samples": config.samples, "check_integrity": config.check_integrity,
        "write_out": config.write_out, "log_samples": config.log_samples,
        "system_instruction": config.system_instruction, "apply_chat_template": config.apply_chat_template,
        "fewshot_as_multiturn": config.fewshot_as_multiturn, "gen_kwargs": config.gen_kwargs,
        "verbosity": config.verbosity, "predict_only": config.predict_only,
        "random_seed": seeds[0], "numpy_random_seed": seeds[1], "torch_random_seed": seeds[2],
        "fewshot_random_seed": seeds[3], "confirm_run_unsafe_code": config.confirm_run_unsafe_code,
        "metadata": config.metadata,
    }


def _lm_eval_cli(argv: list[str], include_ours: bool) -> None:
    """lm-eval's CLI on ``argv``, with ``--include_path`` our folder when lm-eval does not index it by itself."""
    from lm_eval.__main__ import cli_evaluate

    extra: list[str] = []
    if include_ours and not installed_in_lm_eval():
        if any(arg == "--include_path" or arg.startswith("--include_path=") for arg in argv):
            raise InputError("lm-eval takes one --include_path, and ftbench's tasks need theirs here (an editable "
                             "install does not place them inside lm-eval): evaluate ftbench's tasks in a run of "
                             "their own, or install ftbench from a wheel")
        extra = ["--include_path", str(tasks_dir())]
    with _argv(["lm_eval", *argv, *extra]):
        cli_evaluate()


@contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    """``sys.argv`` set for the duration of a ``with`` block (lm-eval's parser reads it)."""
    saved, sys.argv = sys.argv, argv
    try:
        yield
    finally:
        sys.argv = saved


def _exit_code(run: Callable[[], None]) -> int:
    try:
        run()
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    return 0


#: lm-eval's modules that draw progress bars in the runs ftbench starts: requests, the hf model, the API models.
BAR_MODULES = ("lm_eval.api.task", "lm_eval.api.model", "lm_eval.models.huggingface", "lm_eval.models.api_models")


def import_lm_eval() -> None:
    """Load lm-eval's evaluator and the model classes ftbench runs (seconds of imports), ahead of a first run."""
    import importlib

    for name in ("lm_eval.evaluator", "lm_eval.loggers", "lm_eval.tasks", *BAR_MODULES):
        importlib.import_module(name)


@contextmanager
def lm_eval_bars_off() -> Iterator[None]:
    """No progress bars from lm-eval for the duration of a ``with`` block.

    lm-eval's model classes pass ``disable=`` to tqdm themselves, which wins over tqdm's ``TQDM_DISABLE`` (tqdm
    reads that once, when it loads, as a default), and ``simple_evaluate`` has no switch for them. So for the
    duration, the ``tqdm`` (and ``tqdm_asyncio``) that lm-eval's modules call is a subclass whose bars are off."""
    from tqdm import tqdm

    import_lm_eval()
    swapped = [(module, attribute, value) for name, module in list(sys.modules.items())
               if name == "lm_eval" or name.startswith("lm_eval.")
               for attribute, value in vars(module).items()
               if isinstance(value, type) and issubclass(value, tqdm)]
    for module, attribute, value in swapped:
        setattr(module, attribute, _silent(value))
    try:
        yield
    finally:
        for module, attribute, value in swapped:
            setattr(module, attribute, value)


#: This process's environment report, once made (see :func:`environment_report_once`).
_ENVIRONMENT_REPORT: list[str] = []


@contextmanager
def environment_report_once() -> Iterator[None]:
    """torch's environment report, which lm-eval writes into every results file (``pretty_env_info``), made once
    per process for the duration of a ``with`` block. Making it runs pip, conda and nvidia-smi (~1.3 s here);
    the demo's processes run several evaluations each, in one environment. lm-eval imports the function from
    ``torch.utils.collect_env`` when it calls it, so for the duration that module's function is one that makes
    the report the first time and then returns the same text."""
    from torch.utils import collect_env

    make = collect_env.get_pretty_env_info

    def once() -> str:
        if not _ENVIRONMENT_REPORT:
            _ENVIRONMENT_REPORT.append(make())
        return _ENVIRONMENT_REPORT[0]

    collect_env.get_pretty_env_info = once
    try:
        yield
    finally:
        collect_env.get_pretty_env_info = make


@contextmanager
def git_describe_quietly() -> Iterator[None]:
    """lm-eval's record of the git commit (``git_hash`` in every results file) without git's "fatal: not a git
    repository" on the terminal when the run starts outside one (``ftbench demo`` in a fresh folder printed it):
    for the duration of a ``with`` block, the function lm-eval's evaluator calls is one that runs the same command,
    ``git describe --always``, with git's messages discarded, and falls back the same way."""
    import lm_eval.evaluator as evaluator

    own = evaluator.get_git_commit_hash
    evaluator.get_git_commit_hash = _git_commit_hash
    try:
        yield
    finally:
        evaluator.get_git_commit_hash = own


def _git_commit_hash() -> str | None:
    import subprocess

    from lm_eval.loggers.utils import get_commit_from_path

    try:
        described = subprocess.check_output(["git", "describe", "--always"], stderr=subprocess.DEVNULL)
    except (subprocess.CalledProcessError, FileNotFoundError):
        return get_commit_from_path(os.getcwd())  # type: ignore[no-any-return]
    return described.strip().decode()


def _silent(bar: type[Any]) -> type[Any]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        bar.__init__(self, *args, **kwargs)

    return type(bar.__name__, (bar,), {"__init__": __init__})


def _register_models() -> None:
    """Make ftbench's lm-eval model classes (e.g. the OpenAI chat fix) available to ``--model``."""
    try:
        from ftbench.lmeval.openai_chat import register_models
    except ImportError:  # the module needs the `openai` extra only when used; registration is optional
        return
    register_models()

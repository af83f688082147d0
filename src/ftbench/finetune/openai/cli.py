"""Fine-tune an OpenAI model on the study's data, with the prompts the chat tasks are evaluated with.

The command line of ``training/openai_finetune.py``: it reads arguments (and the typed config of
:mod:`ftbench.finetune.openai.config`) and prints; the rest of :mod:`ftbench.finetune.openai` does the work. Needs
``pip install 'ftbench[openai]'``; the key is read from ``OPENAI_API_KEY`` only, and never printed or stored.

The study's SQL run, redone on a model OpenAI fine-tunes today (the configs and ``--model`` default to
gpt-4.1-mini-2025-04-14; the study's gpt-3.5-turbo-0613 can no longer be fine-tuned, and ``submit`` refuses it
before uploading anything; ``estimate --model gpt-3.5-turbo-0613`` still prices it at the Aug-2023 rate)::

    python training/openai_finetune.py prepare  --config training/configs/openai_spider.yaml
    python training/openai_finetune.py validate --config training/configs/openai_spider.yaml
    python training/openai_finetune.py estimate --config training/configs/openai_spider.yaml
    python training/openai_finetune.py submit   --config training/configs/openai_spider.yaml
    # interrupted (Ctrl-C, lost connection)? the job keeps running; pick it up without paying twice:
    python training/openai_finetune.py resume   --out ftbench-out/openai/spider
    python training/openai_finetune.py status   ftjob-abc123
    python training/openai_finetune.py cancel   ftjob-abc123 --out ftbench-out/openai/spider

Without a config: ``prepare --task viggo --split train --output viggo.jsonl``, then
``submit --train viggo.jsonl --model gpt-4o-mini --out ftbench-out/openai/viggo`` (undated aliases are priced as
their dated model). ``submit`` and ``resume``
write ``OUT/run.json`` (job id, ``fine_tuned_model``, ``trained_tokens``, wall time, cost from the dated
price table) and ``OUT/events.jsonl``. Exit codes: 2 bad input, 4 missing package, 5 API error,
6 missing/rejected key, 7 job failed or cancelled, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ftbench.errors import InputError, run_reporting_errors
from ftbench.finetune.openai import jobs
from ftbench.finetune.openai.config import config_keys, load_config
from ftbench.finetune.openai.data import chat_examples, read_jsonl, write_chat_jsonl
from ftbench.finetune.openai.estimate import estimate_fine_tune, format_estimate
from ftbench.finetune.openai.run import load_run
from ftbench.finetune.openai.tokens import TokenCounter, model_limits, token_counter
from ftbench.finetune.openai.validate import format_report, validate_lines
from ftbench.finetune.record import OpenAIRunRecord, write_run_json
from ftbench.openai_client import RetryPolicy, make_api
from ftbench.pricing import OPENAI_PRICES, PriceOverride, price_for

DEFAULT_MODEL = jobs.DEFAULT_MODEL


# --- arguments ------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openai_finetune.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _prepare_parser(sub.add_parser("prepare", help="write chat-format JSONL from ftbench.prompts"))
    _file_parser(sub.add_parser("validate", help="OpenAI's format checks, with counts and line numbers"))
    _prices(_file_parser(sub.add_parser("estimate", help="tokens, default epochs and cost before paying")))
    _submit_parser(sub.add_parser("submit", help="upload, create the job, follow it, write run.json"))
    status = sub.add_parser("status", help="print a job's status and latest events")
    status.add_argument("job_id")
    status.add_argument("--events", type=int, default=10, help="how many recent events to show")
    _connection(status)
    resume = _follow(sub.add_parser("resume", help="follow an existing job to the end (never creates one)"))
    resume.add_argument("job_id", nargs="?", help="default: the job recorded in OUT/run.json")
    cancel = sub.add_parser("cancel", help="cancel a job (and record it in OUT/run.json if given)")
    cancel.add_argument("job_id")
    cancel.add_argument("--out", type=Path, help="run folder to update")
    _connection(cancel)
    return parser


def _prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML naming task, splits and files (training/configs/)")
    p.add_argument("--task", choices=("spider_sql", "viggo"))
    p.add_argument("--split", help="spider_sql: train|val; viggo: train|validation|test")
    p.add_argument("--output", type=Path, help="JSONL to write")


def _file_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("file", nargs="?", type=Path, help="chat JSONL (default: the config's train_file)")
    p.add_argument("--config", type=Path, help="YAML naming the files and model")
    p.add_argument("--model", help=f"base model (default {DEFAULT_MODEL}); sets the tokenizer and token limit")
    p.add_argument("--n-epochs", type=int, help="default: what OpenAI would pick for this many examples")
    p.add_argument("--tokenizer", choices=("auto", "tiktoken", "estimate"), default="auto",
                   help="auto: tiktoken when its encoding files load, else the 4-chars-per-token estimate")
    return p


def _prices(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    known = ", ".join(OPENAI_PRICES)
    p.add_argument("--training-price", type=float, help=f"USD per 1K trained tokens (table: {known})")
    p.add_argument("--input-price", type=float, help="USD per 1K input tokens of the fine-tuned model")
    p.add_argument("--output-price", type=float, help="USD per 1K output tokens of the fine-tuned model")
    return p


def _connection(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--base-url", help="API base URL (default: $OPENAI_BASE_URL, else OpenAI's)")
    p.add_argument("--backoff-base", type=float, default=1.0, help="first retry delay in seconds (doubles)")
    p.add_argument("--max-attempts", type=int, default=8, help="attempts per request on 429/5xx/timeouts")
    return p


def _follow(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    _prices(_connection(p))
    p.add_argument("--out", type=Path, help="run folder for run.json and events.jsonl")
    p.add_argument("--poll-interval", type=float, default=10.0, help="seconds between polls (grows when idle)")
    p.add_argument("--max-poll-interval", type=float, default=120.0, help="longest wait between polls")
    return p


def _submit_parser(p: argparse.ArgumentParser) -> None:
    _follow(p)
    p.add_argument("--config", type=Path, help="YAML naming task, files, model and hyperparameters")
    p.add_argument("--train", dest="train_file", type=Path, help="training JSONL")
    p.add_argument("--validation", dest="validation_file", type=Path, help="validation JSONL (optional)")
    p.add_argument("--model", help=f"base model to fine-tune (default {DEFAULT_MODEL})")
    p.add_argument("--n-epochs", type=int, help="default: OpenAI's choice")
    p.add_argument("--suffix", help="up to 64 characters added to the fine-tuned model's name")
    p.add_argument("--seed", type=int, help="OpenAI's training seed")
    p.add_argument("--task", help="recorded in run.json")


def merged(args: argparse.Namespace) -> argparse.Namespace:
    """Arguments with the config's values filled in where the command line left them unset."""
    config = load_config(getattr(args, "config", None))
    for key in config_keys():
        if getattr(args, key, None) is None:
            setattr(args, key, getattr(config, key))
    if hasattr(args, "file") and args.file is None:
        args.file = getattr(args, "train_file", None)
    return args


def _log_to_stderr() -> logging.Handler:
    """Our retry notices on stderr for this call; the HTTP libraries' own request logs stay off."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger = logging.getLogger("ftbench")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


# --- commands -------------------------------------------------------------------------------------------

def cmd_prepare(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    targets = []
    if args.task and args.split:
        default = Path(f"ftbench-out/openai/{args.task}_{args.split}.jsonl")
        targets.append((args.task, args.split, args.output or default))
    elif config.task:
        targets += [(config.task, split, path) for split, path in config.splits()]
    if not targets:
        raise InputError("give --task and --split (and --output), or --config")
    for task, split, output in targets:
        prepared = write_chat_jsonl(chat_examples(task, split), output)
        print(f"{prepared.path}: {prepared.n_examples} examples ({task} {split}), sha256 {prepared.sha256}")


def _counter(args: argparse.Namespace, model: str) -> TokenCounter:
    counter = token_counter(model, args.tokenizer)
    if counter.warning:
        print(f"warning: {counter.warning}", file=sys.stderr)
    return counter


def _required_file(args: argparse.Namespace) -> Path:
    if args.file is None:
        raise InputError("give a JSONL file (or --config with train_file)")
    return Path(args.file)


def cmd_validate(args: argparse.Namespace) -> None:
    model = args.model or DEFAULT_MODEL
    files = [f for f in (_required_file(args), getattr(args, "validation_file", None)) if f is not None]
    counter = _counter(args, model)
    failed = []
    for path in files:
        report = validate_lines(read_jsonl(path), counter, model_limits(model).example_token_limit)
        print("\n".join(format_report(report, str(path))))
        failed += [] if report.ok else [str(path)]
    if failed:
        raise InputError(f"{', '.join(failed)}: fix the errors above before submitting")


def cmd_estimate(args: argparse.Namespace) -> None:
    model = args.model or DEFAULT_MODEL
    price = price_for(model, _override(args))
    counter = _counter(args, model)
    path = _required_file(args)
    estimate = estimate_fine_tune(read_jsonl(path), model, counter, price, args.n_epochs, source=str(path))
    print("\n".join(format_estimate(estimate)))
    print(f"price: {price.model}, {price.provenance} ({price.source})")


def _override(args: argparse.Namespace) -> PriceOverride:
    return PriceOverride(args.training_price, args.input_price, args.output_price)


def _session(args: argparse.Namespace) -> jobs.Session:
    api = make_api(args.base_url, RetryPolicy(max_attempts=args.max_attempts, base_s=args.backoff_base))
    poll = jobs.PollPolicy(getattr(args, "poll_interval", 10.0), getattr(args, "max_poll_interval", 120.0))
    return jobs.Session(api, poll, [jobs.Printer()], _override(args) if hasattr(args, "training_price") else None)


def cmd_submit(args: argparse.Namespace) -> None:
    if args.train_file is None or args.out is None:
        raise InputError("give --train FILE and --out DIR (or --config)")
    model = args.model or DEFAULT_MODEL
    price_for(model, _override(args))  # fail before uploading when no price is known
    spec = jobs.JobSpec(model, args.train_file, args.validation_file, args.n_epochs, args.suffix, args.seed,
                        args.task)
    _check_files_before_paying(spec)
    _report(jobs.submit(_session(args), spec, args.out), args.out)


def _check_files_before_paying(spec: jobs.JobSpec) -> None:
    """The format checks (no token counts: over-long examples are only a warning, see `validate`)."""
    for path in filter(None, (spec.training_file, spec.validation_file)):
        report = validate_lines(read_jsonl(path))
        if not report.ok:
            print("\n".join(format_report(report, str(path))), file=sys.stderr)
            raise InputError(f"{path} fails OpenAI's format checks; nothing was uploaded")


def cmd_resume(args: argparse.Namespace) -> None:
    out = args.out or (Path(f"ftbench-out/openai/{args.job_id}") if args.job_id else None)
    if out is None:
        raise InputError("give a job id or --out DIR holding a run.json")
    _report(jobs.resume(_session(args), args.job_id, out), out)


def cmd_status(args: argparse.Namespace) -> None:
    session = _session(args)
    job = jobs.retrieve(session.api, args.job_id)
    for event in jobs.recent_events(session.api, args.job_id)[-args.events:]:
        jobs.Printer(sys.stdout).on_event(event)
    tokens = f", trained_tokens {job.trained_tokens:,}" if job.trained_tokens is not None else ""
    print(f"job {job.id}: {job.status}, model {job.model}, fine_tuned_model {job.fine_tuned_model}{tokens}")
    if job.error:
        print(jobs.describe_failure(job, []))


def cmd_cancel(args: argparse.Namespace) -> None:
    session = _session(args)
    job = jobs.cancel(session.api, args.job_id)
    print(f"job {job.id}: {job.status}")
    run = load_run(args.out) if args.out else None
    if run is not None and run.job_id == job.id:
        jobs.update_run(run, job)
        write_run_json(args.out, run)


def _report(run: OpenAIRunRecord, out: Path) -> None:
    cost = run.cost or {}
    amount = f"${cost['usd']:,.2f}" if isinstance(cost.get("usd"), float) else "unknown"
    print(f"fine_tuned_model: {run.fine_tuned_model}")
    print(f"trained_tokens: {run.trained_tokens}; cost: {amount} ({cost.get('basis')})")
    print(f"run record: {out / 'run.json'}")


COMMANDS = {"prepare": cmd_prepare, "validate": cmd_validate, "estimate": cmd_estimate, "submit": cmd_submit,
            "resume": cmd_resume, "status": cmd_status, "cancel": cmd_cancel}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = _log_to_stderr()
    out = getattr(args, "out", None) or "DIR"
    try:
        return run_reporting_errors(
            lambda: COMMANDS[args.command](merged(args)),
            interrupted=f"a submitted job keeps running at OpenAI; follow it with `resume --out {out}` (its id is in "
                        f"{out}/run.json; stop it with `cancel JOB_ID`)")
    finally:
        logging.getLogger("ftbench").removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())

"""End-to-end evaluation throughput over a served OpenAI-compatible endpoint, at several concurrencies.

Measures what a user waits for: lm-eval's `local-completions` client generating the task's requests
against the server (prompt building and scoring excluded), in examples per second.

    # CPU, tiny model (what our machines can run): builds the model and starts `transformers serve`
    FTBENCH_DATA_DIR=../shared/data python benchmarks/bench_served_eval.py --engine transformers --limit 32
    # GPU: a running vLLM server (`ftbench serve codellama/CodeLlama-34b-hf --adapter sql=ADAPTER`)
    python benchmarks/bench_served_eval.py --base-url http://127.0.0.1:8000/v1 --model sql \
        --tokenizer codellama/CodeLlama-34b-hf --limit 568
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["transformers"], help="start a server on the tiny model")
    parser.add_argument("--base-url", help="an already running server, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--model", help="model name the server expects (adapter name or base model)")
    parser.add_argument("--tokenizer", help="tokenizer for lm-eval (defaults to --model)")
    parser.add_argument("--task", default="spider_sql")
    parser.add_argument("--limit", type=int, default=32)
    parser.add_argument("--concurrency", default="1,4,16")
    return parser.parse_args()


def load_requests(task_name: str, limit: int) -> list[Any]:
    from lm_eval.tasks import TaskManager

    from ftbench.lmeval import tasks_dir

    task = TaskManager(include_path=str(tasks_dir()), include_defaults=False).load([task_name])["tasks"][task_name]
    task.build_all_requests(limit=limit)
    return list(task.instances)


def examples_per_second(base_url: str, model: str, tokenizer: str, requests: list[Any], concurrency: int) -> float:
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    lm = LocalCompletionsAPI(model=model, base_url=f"{base_url}/completions", tokenizer=tokenizer,
                             tokenized_requests=False, num_concurrent=concurrency, max_retries=1)
    started = time.perf_counter()
    outputs = lm.generate_until(requests, disable_tqdm=True)
    elapsed = time.perf_counter() - started
    if len(outputs) != len(requests):
        raise RuntimeError(f"got {len(outputs)} generations for {len(requests)} requests")
    return len(requests) / elapsed


@contextmanager
def tiny_server() -> Iterator[tuple[str, str]]:
    from ftbench import serve
    from ftbench.tiny import build_tiny_model, corpus_from_data

    with tempfile.TemporaryDirectory() as tmp:
        model = str(build_tiny_model(Path(tmp) / "model", corpus_from_data(limit=200)))
        spec = serve.ServeSpec(base_model=model, engine="transformers", port=serve.free_port())
        process = serve.start_server(spec, Path(tmp) / "serve.log")
        try:
            serve.wait_healthy(process, spec.base_url, Path(tmp) / "serve.log", timeout_s=180)
            yield spec.base_url, model
        finally:
            serve.stop_server(process)


def main() -> None:
    args = parse_args()
    requests = load_requests(args.task, args.limit)
    levels = [int(level) for level in args.concurrency.split(",")]
    with tiny_server() if args.engine else _existing(args.base_url, args.model) as (base_url, model):
        print(f"task={args.task} examples={len(requests)} server={base_url} model={model}")
        for level in levels:
            rate = examples_per_second(base_url, model, args.tokenizer or model, requests, level)
            print(f"num_concurrent={level:>3}  {rate:8.2f} examples/s")


@contextmanager
def _existing(base_url: str | None, model: str | None) -> Iterator[tuple[str, str]]:
    if not base_url or not model:
        raise SystemExit("give --engine transformers, or --base-url and --model of a running server")
    yield base_url, model


if __name__ == "__main__":
    main()

"""``ftbench demo``: the main job on an embedded default that runs offline on a laptop CPU.

Builds the tiny model, evaluates it through lm-eval on both tasks with a small limit, and reports the
scores and where lm-eval wrote its results and samples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftbench.errors import FtbenchError
from ftbench.lmeval.run import main as run_lm_eval
from ftbench.tiny import build_tiny_model, corpus_from_data

DEMO_TASKS = ("spider_sql", "viggo")


@dataclass(frozen=True)
class DemoConfig:
    out_dir: Path
    limit: int = 5
    tasks: tuple[str, ...] = DEMO_TASKS


@dataclass(frozen=True)
class DemoResult:
    model_dir: Path
    results_file: Path
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)


def run_demo(config: DemoConfig) -> DemoResult:
    """Build the tiny model and evaluate it; raises FtbenchError if lm-eval fails."""
    model_dir = build_tiny_model(config.out_dir / "tiny-model", corpus_from_data())
    eval_dir = config.out_dir / "lm-eval"
    code = run_lm_eval(_lm_eval_args(model_dir, eval_dir, config))
    if code != 0:
        raise FtbenchError(f"lm-eval exited with code {code}; see its messages above")
    results_file = newest_results_file(eval_dir)
    return DemoResult(model_dir, results_file, _scores(results_file))


def _lm_eval_args(model_dir: Path, eval_dir: Path, config: DemoConfig) -> list[str]:
    return ["--model", "hf", "--model_args", f"pretrained={model_dir},dtype=float32",
            "--tasks", ",".join(config.tasks), "--limit", str(config.limit), "--batch_size", "1",
            "--log_samples", "--output_path", str(eval_dir)]


def newest_results_file(eval_dir: Path) -> Path:
    """The ``results_*.json`` lm-eval wrote last below ``eval_dir``."""
    found = sorted(eval_dir.rglob("results_*.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FtbenchError(f"lm-eval wrote no results_*.json below {eval_dir}")
    return found[-1]


def _scores(results_file: Path) -> dict[str, dict[str, Any]]:
    results = json.loads(results_file.read_text(encoding="utf-8"))["results"]
    return {task: {key.split(",")[0]: value for key, value in metrics.items()
                   if "," in key and "_stderr" not in key}
            for task, metrics in results.items()}

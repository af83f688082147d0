"""Helpers for tests that run the real lm-eval CLI in a subprocess and read what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ftbench.lmeval import installed_in_lm_eval, tasks_dir

from .conftest import mirror_dir

BIN = Path(sys.executable).parent


def run_cli(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a console script of this environment offline, failing the test with its output if it fails."""
    env = {**os.environ, "FTBENCH_DATA_DIR": str(mirror_dir()), "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{argv[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def run_clis(runs: list[tuple[list[str], Path]], timeout: float = 600) -> list[subprocess.CompletedProcess[str]]:
    """:func:`run_cli` on each ``(argv, cwd)`` of ``runs`` at once: independent runs, each mostly one core's work
    (imports, lm-eval, judging), share the machine's cores instead of waiting for one another."""
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = [pool.submit(run_cli, argv, cwd, timeout) for argv, cwd in runs]
        return [future.result() for future in futures]


def include_path_args() -> list[str]:
    """``--include_path`` only where the tasks are not installed inside lm-eval (editable installs)."""
    return [] if installed_in_lm_eval() else ["--include_path", str(tasks_dir())]


def hf_args(model: Path) -> list[str]:
    return ["--model", "hf", "--model_args", f"pretrained={model},dtype=float32", "--batch_size", "1"]


def evaluate_adapter(model: Path, adapter: Path, out: Path, limit: int = 2) -> dict[str, Any]:
    """lm-eval ``hf`` on ``viggo`` (``limit`` examples) with the peft ``adapter`` on ``model``: the task's results.

    Through ``ftbench eval``: lm-eval's ``hf`` model and ``simple_evaluate``, as bare ``lm_eval`` runs them, without
    indexing lm-eval's ~14k built-in task YAMLs (~15 s a run here); bare ``lm_eval`` on our tasks is ``hf_run``'s."""
    run_cli(["ftbench", "eval", "--model", "hf", "--model_args", f"pretrained={model},peft={adapter},dtype=float32",
             "--tasks", "viggo", "--limit", str(limit), "--batch_size", "1", "--output_path", str(out)],
            cwd=out.parent, timeout=300)
    results, _ = read_outputs(out)
    return dict(results["results"]["viggo"])


def read_outputs(out_dir: Path) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """(results json, {task: samples}) of the single run below ``out_dir``."""
    [results_file] = out_dir.rglob("results_*.json")
    samples = {path.name.split("_20")[0].removeprefix("samples_"): _jsonl(path)
               for path in out_dir.rglob("samples_*.jsonl")}
    return json.loads(results_file.read_text()), samples


def answers(samples: list[dict[str, Any]]) -> list[str]:
    """The answers scored, in document order (the task's filter extracted them from the generations)."""
    return [s["filtered_resps"][0] for s in sorted(samples, key=lambda s: s["doc_id"])]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]

"""The facts a LoRA run's ``run.json`` (:class:`~ftbench.finetune.record.LoraRunRecord`) needs: git hash, device,
wall time across resumes, loss curves.

Wall time counts the sessions that produced the kept steps: each checkpoint stores the time spent up to it, and a
resumed run starts its clock from there. Under ``accelerate launch`` every rank holds one device, so the devices a run
held are its world size and GPU-hours = wall time × world size; only rank 0 writes the record.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from ftbench.finetune.record import LoraRunRecord
from ftbench.pricing import A40_PRICE_PER_HOUR, CPU, CPU_PRICE_PER_CORE_HOUR, GpuCost, gpu_cost

WALL_TIME_FILE = "ftbench_wall_time.json"


def git_hash(start: Path | None = None) -> str | None:
    """HEAD of the checkout holding ``start`` (default: this package), suffixed ``-dirty`` with local edits."""
    where = start or Path(__file__).resolve().parent
    head = _git(where, "rev-parse", "HEAD")
    if head is None:
        return None
    dirty = _git(where, "status", "--porcelain", "--untracked-files=no")
    return f"{head}-dirty" if dirty else head


def _git(where: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def device_name() -> str:
    """The name of this rank's CUDA device, or "cpu"."""
    import torch

    if torch.cuda.is_available():
        return str(torch.cuda.get_device_name(local_rank()))
    return CPU


def local_rank() -> int:
    """This process's index on its machine under ``accelerate launch``/``torchrun`` (``LOCAL_RANK``), else 0."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def device_info(world_size: int = 1) -> tuple[str, int]:
    """(name, count) of the devices in use: one CUDA device per rank, or ("cpu", cores used by torch × ranks)."""
    import torch

    name = device_name()
    if name != CPU:
        return name, world_size
    return CPU, max(1, int(torch.get_num_threads())) * world_size


def build_cost(wall_time_s: float, price_per_gpu_hour: float | None = None, world_size: int = 1) -> GpuCost:
    """The run's device-hours and cost: GPUs at ``price_per_gpu_hour``, CPU cores at the CPU core-hour price."""
    name, count = device_info(world_size)
    gpu_price = A40_PRICE_PER_HOUR if price_per_gpu_hour is None else price_per_gpu_hour
    price = CPU_PRICE_PER_CORE_HOUR if name == CPU else gpu_price
    return gpu_cost(wall_time_s, count, price, name)


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str] = {}
    for name in ("torch", "transformers", "peft", "trl", "accelerate", "bitsandbytes"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


class WallClock:
    """Seconds spent on a run, carried across resumes through a small file in each checkpoint."""

    def __init__(self, previous_s: float = 0.0) -> None:
        self.previous_s = previous_s
        self.started = time.monotonic()

    @classmethod
    def resuming(cls, checkpoint: Path | None) -> WallClock:
        stored = checkpoint / WALL_TIME_FILE if checkpoint else None
        if stored is None or not stored.is_file():
            return cls()
        return cls(float(json.loads(stored.read_text(encoding="utf-8"))["wall_time_s"]))

    def elapsed_s(self) -> float:
        return self.previous_s + time.monotonic() - self.started

    def save(self, checkpoint: Path) -> None:
        (checkpoint / WALL_TIME_FILE).write_text(json.dumps({"wall_time_s": self.elapsed_s()}), encoding="utf-8")


def loss_curves(log_history: list[dict[str, Any]]) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """(train loss, eval loss) points from a Trainer's log history, one per logged step."""
    train = [{"step": row["step"], "loss": row["loss"]} for row in log_history if "loss" in row]
    evaluation = [{"step": row["step"], "eval_loss": row["eval_loss"]} for row in log_history if "eval_loss" in row]
    return train, evaluation


def build_record(config: dict[str, Any], adapter_dir: Path, state: Any, wall_time_s: float,
                 resumed_from: Path | None, price_per_gpu_hour: float, world_size: int = 1) -> LoraRunRecord:
    """Assemble the record from the trainer's final ``state`` (a ``transformers.TrainerState``); ``world_size`` is
    the number of ranks (``TrainingArguments.world_size``), each holding one device (CPU runs count cores)."""
    cost = build_cost(wall_time_s, price_per_gpu_hour, world_size)
    train, evaluation = loss_curves(state.log_history)
    per_device = int(config["per_device_train_batch_size"])
    return LoraRunRecord(
        config=config, git_hash=git_hash(), adapter_dir=str(adapter_dir), steps=int(state.global_step),
        max_steps=int(state.max_steps), tokens_seen=int(state.num_input_tokens_seen),
        wall_time_s=cost.wall_time_s, gpu_name=cost.gpu_name, gpu_count=cost.gpu_count, world_size=world_size,
        per_device_train_batch_size=per_device,
        global_batch_size=per_device * int(config["gradient_accumulation_steps"]) * world_size,
        gpu_hours=cost.gpu_hours,
        price_per_gpu_hour=cost.price_per_gpu_hour, cost_usd=cost.cost_usd,
        resumed_from=str(resumed_from) if resumed_from else None,
        train_loss_curve=train, eval_loss_curve=evaluation, versions=library_versions(),
    )

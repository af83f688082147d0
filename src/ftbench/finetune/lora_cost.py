"""GPU-hours and dollar cost of a LoRA run, from its wall time, device count and a $/GPU-hour price.

The leaderboard reads the same figures back from a run's ``run.json`` with :func:`cost_from_run_json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ftbench.errors import InputError
from ftbench.finetune.record import LoraRunRecord, read_run_json

#: The study's price: one NVIDIA A40 at $0.475 per hour.
A40_PRICE_PER_HOUR = 0.475
#: A run on CPU is priced per core-hour (never as A40 hours): the on-demand price of a 2-vCPU cloud machine, halved.
CPU_PRICE_PER_CORE_HOUR = 0.08925 / 2
CPU_PRICE_SOURCE = "AWS EC2 c7i.large (2 vCPU) on-demand, us-east-1, $0.08925/hour (price list of 2024)"
#: ``gpu_name`` of a run that trained on CPU; its ``gpu_count`` is the cores used and its hours are CPU-hours.
CPU = "cpu"


@dataclass(frozen=True)
class GpuCost:
    """What a run held and what it cost. A CPU run counts as one device, so its figures are never silently 0."""

    gpu_name: str
    gpu_count: int
    wall_time_s: float
    gpu_hours: float
    price_per_gpu_hour: float
    cost_usd: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gpu_cost(wall_time_s: float, gpu_count: int, price_per_gpu_hour: float = A40_PRICE_PER_HOUR,
             gpu_name: str = "unknown") -> GpuCost:
    """GPU-hours = wall hours × devices held; cost = GPU-hours × price."""
    if wall_time_s < 0 or gpu_count < 1 or price_per_gpu_hour < 0:
        raise InputError(f"cannot price a run with wall_time_s={wall_time_s}, gpu_count={gpu_count}, "
                         f"price_per_gpu_hour={price_per_gpu_hour}")
    gpu_hours = wall_time_s / 3600.0 * gpu_count
    return GpuCost(gpu_name=gpu_name, gpu_count=gpu_count, wall_time_s=wall_time_s, gpu_hours=gpu_hours,
                   price_per_gpu_hour=price_per_gpu_hour, cost_usd=gpu_hours * price_per_gpu_hour)


def hours_unit(gpu_name: str | None) -> str:
    """How a run's device-hours are labelled: ``CPU-h`` for CPU runs, else ``GPU-h``."""
    return "CPU-h" if gpu_name == CPU else "GPU-h"


def cost_from_run_json(path: Path, price_per_gpu_hour: float | None = None) -> GpuCost:
    """The cost recorded in a LoRA ``run.json``, re-priced at ``price_per_gpu_hour`` when given."""
    record = read_run_json(path)
    if not isinstance(record, LoraRunRecord):
        raise InputError(f"{path}: the run.json of an OpenAI fine-tune has no GPU-hours to price")
    return record_cost(record, price_per_gpu_hour)


def record_cost(record: LoraRunRecord, price_per_gpu_hour: float | None = None) -> GpuCost:
    """The cost in a LoRA record, re-priced at ``price_per_gpu_hour`` when given."""
    price = record.price_per_gpu_hour if price_per_gpu_hour is None else price_per_gpu_hour
    return gpu_cost(record.wall_time_s, record.gpu_count, price, record.gpu_name)

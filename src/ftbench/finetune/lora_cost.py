"""GPU-hours and dollar cost of a LoRA run, from its wall time, device count and a $/GPU-hour price.

The leaderboard reads the same figures back from a run's ``run.json`` with :func:`cost_from_run_json`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ftbench.errors import InputError

#: The study's price: one NVIDIA A40 at $0.475 per hour.
A40_PRICE_PER_HOUR = 0.475
#: A run on CPU is priced per core-hour (never as A40 hours): the on-demand price of a 2-vCPU cloud machine, halved.
CPU_PRICE_PER_CORE_HOUR = 0.08925 / 2
CPU_PRICE_SOURCE = "AWS EC2 c7i.large (2 vCPU) on-demand, us-east-1, $0.08925/hour (price list of 2024)"
#: ``gpu_name`` of a run that trained on CPU; its ``gpu_count`` is the cores used and its hours are CPU-hours.
CPU = "cpu"
_COST_KEYS = ("gpu_name", "gpu_count", "wall_time_s", "gpu_hours", "price_per_gpu_hour", "cost_usd")


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
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: cannot read run.json ({err})") from err
    return cost_from_record(record, path, price_per_gpu_hour)


def cost_from_record(record: dict[str, Any], path: Path, price_per_gpu_hour: float | None = None) -> GpuCost:
    """The cost in an already-read LoRA ``run.json`` (``path`` names it in errors), re-priced when asked."""
    missing = [key for key in _COST_KEYS if key not in record]
    if missing:
        raise InputError(f"{path}: run.json lacks {', '.join(missing)}; is it a LoRA run record?")
    price = record["price_per_gpu_hour"] if price_per_gpu_hour is None else price_per_gpu_hour
    return gpu_cost(float(record["wall_time_s"]), int(record["gpu_count"]), float(price), str(record["gpu_name"]))

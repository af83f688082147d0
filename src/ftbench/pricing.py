"""What a training run costs: dated prices and the arithmetic that turns usage into dollars.

Every price names what it prices, the date it took effect and where it was published, because prices change
and a cost without its date cannot be compared.

- **Device-hours** (LoRA and the demo's runs): GPU-hours = wall hours × devices held, priced per GPU-hour
  (:data:`HOUR_PRICES`: the study's A40 at $0.475/hour by default, ``price_per_gpu_hour`` in a run config
  otherwise); a run on CPU counts the cores it used and is priced per *core*-hour, never as GPU hours.
- **Tokens** (OpenAI): fine-tuning is billed by *trained tokens* (tokens per epoch × epochs, reported by the job as
  ``trained_tokens``); using the fine-tuned model is billed per input and output token (:data:`OPENAI_PRICES`).
  The study paid $11.99 (SQL) and $26.05 (ViGGO) for gpt-3.5-turbo-0613 fine-tunes in Aug–Sep 2023: 1,498,750
  and 3,256,250 trained tokens at $0.008 per 1K.

The leaderboard prices both kinds with these functions, so it compares like with like.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from ftbench.errors import InputError

PRICING_PAGE = "https://openai.com/api/pricing"


# --- device-hours ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HourPrice:
    """The price of one device (or one CPU core) for one hour, in US dollars, as of ``effective``."""

    device: str
    usd_per_hour: float
    effective: str  # when the price was quoted (ISO date, or the month/year its source gives)
    source: str


#: Device-hour prices. The A40's is the study's (what its LoRA runs were priced at); the CPU core-hour is the
#: on-demand price of a 2-vCPU cloud machine, halved.
HOUR_PRICES: dict[str, HourPrice] = {
    price.device: price
    for price in (
        HourPrice("NVIDIA A40", 0.475, "2023-08",
                  "the 2023 study: CodeLlama-34B + LoRA on one A40 at $0.475/GPU-hour"),
        HourPrice("cpu core", 0.08925 / 2, "2024",
                  "AWS EC2 c7i.large (2 vCPU) on-demand, us-east-1, $0.08925/hour (price list of 2024)"),
    )
}
#: The study's price: one NVIDIA A40 at $0.475 per hour (the default GPU-hour price).
A40_PRICE_PER_HOUR = HOUR_PRICES["NVIDIA A40"].usd_per_hour
#: A run on CPU is priced per core-hour (never as A40 hours).
CPU_PRICE_PER_CORE_HOUR = HOUR_PRICES["cpu core"].usd_per_hour
CPU_PRICE_SOURCE = HOUR_PRICES["cpu core"].source
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


# --- tokens ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenPrice:
    """Fine-tuning prices of one OpenAI base model, in US dollars per 1,000 tokens, as of ``effective``."""

    model: str
    effective: str  # ISO date the price took effect; "" for a price given on the command line
    training_per_1k: float
    input_per_1k: float | None  # using the fine-tuned model: prompt tokens
    output_per_1k: float | None  # using the fine-tuned model: completion tokens
    source: str
    overridden: bool = False  # some values replaced on the command line

    @property
    def provenance(self) -> str:
        if not self.effective:
            return "price given on the command line"
        return f"price of {self.effective}" + (", overridden on the command line" if self.overridden else "")


@dataclass(frozen=True)
class Cost:
    """An amount with the sentence that explains it (usage × unit price, which price, from when)."""

    usd: float
    basis: str


def _per_1m(model: str, effective: str, training: float, usage_in: float, usage_out: float,
            source: str) -> TokenPrice:
    return TokenPrice(model, effective, training / 1000, usage_in / 1000, usage_out / 1000, source)


_DEVDAY_2023 = "https://openai.com/blog/new-models-and-developer-products-announced-at-devday"

#: Fine-tuning prices by base model (newest first within a family). Check the pricing page before relying on
#: the recent ones; override any of them on the command line.
OPENAI_PRICES: dict[str, TokenPrice] = {
    price.model: price
    for price in (
        # The study's runs (Aug–Sep 2023): the launch prices of GPT-3.5 Turbo fine-tuning.
        TokenPrice("gpt-3.5-turbo-0613", "2023-08-22", 0.008, 0.012, 0.016,
                   "https://openai.com/blog/gpt-3-5-turbo-fine-tuning-and-api-updates"),
        TokenPrice("gpt-3.5-turbo-1106", "2023-11-06", 0.008, 0.003, 0.006, _DEVDAY_2023),
        TokenPrice("gpt-3.5-turbo-0125", "2024-01-25", 0.008, 0.003, 0.006, PRICING_PAGE),
        _per_1m("gpt-4o-mini-2024-07-18", "2024-07-23", 3.00, 0.30, 1.20,
                "https://openai.com/index/gpt-4o-mini-advancing-cost-efficient-intelligence/"),
        _per_1m("gpt-4o-2024-08-06", "2024-08-20", 25.00, 3.75, 15.00,
                "https://openai.com/index/gpt-4o-fine-tuning/"),
        _per_1m("gpt-4.1-2025-04-14", "2025-04-14", 25.00, 3.00, 12.00, PRICING_PAGE),
        _per_1m("gpt-4.1-mini-2025-04-14", "2025-04-14", 5.00, 0.80, 3.20, PRICING_PAGE),
        _per_1m("gpt-4.1-nano-2025-04-14", "2025-04-14", 1.50, 0.20, 0.80, PRICING_PAGE),
    )
}


@dataclass(frozen=True)
class PriceOverride:
    """Prices given on the command line (USD per 1K tokens); ``None`` keeps the table's value."""

    training_per_1k: float | None = None
    input_per_1k: float | None = None
    output_per_1k: float | None = None

    def is_empty(self) -> bool:
        return self.training_per_1k is None and self.input_per_1k is None and self.output_per_1k is None


def base_model(model: str) -> str:
    """The base model of a fine-tuned model id: ``ft:gpt-3.5-turbo-0613:acme::abc123`` -> ``gpt-3.5-turbo-0613``."""
    return model.split(":")[1] if model.startswith("ft:") and model.count(":") >= 2 else model


def dated_model(model: str) -> str:
    """An undated alias (``gpt-4o-mini``) as the newest dated model of the price table it names
    (``gpt-4o-mini-2024-07-18``); a dated or unknown name is returned as it is."""
    if model in OPENAI_PRICES:
        return model
    dated = re.compile(re.escape(model) + r"-(\d{4}-\d{2}-\d{2}|\d{4})")
    matches = [price for name, price in OPENAI_PRICES.items() if dated.fullmatch(name)]
    return max(matches, key=lambda price: price.effective).model if matches else model


def price_for(model: str, override: PriceOverride | None = None) -> TokenPrice:
    """The dated price of ``model`` (a base or ``ft:`` id, or an undated alias), with command-line overrides."""
    name = dated_model(base_model(model))
    override = override or PriceOverride()
    price = OPENAI_PRICES.get(name)
    if price is None:
        if override.training_per_1k is None:
            known = ", ".join(OPENAI_PRICES)
            raise InputError(f"no fine-tuning price known for {name!r} (known: {known}); "
                             "give one with --training-price USD_PER_1K_TOKENS")
        return TokenPrice(name, "", override.training_per_1k, override.input_per_1k, override.output_per_1k,
                          "command line")
    return _apply(price, override)


def _apply(price: TokenPrice, override: PriceOverride) -> TokenPrice:
    if override.is_empty():
        return price
    changes = {key: value for key, value in vars(override).items() if value is not None}
    return replace(price, overridden=True, **changes)


def training_cost(trained_tokens: int, price: TokenPrice) -> Cost:
    """Cost of a fine-tuning job from the ``trained_tokens`` it reports (or an estimate of them)."""
    usd = round(trained_tokens * price.training_per_1k / 1000, 2)
    basis = (f"{trained_tokens:,} trained tokens × ${price.training_per_1k:g}/1K "
             f"({price.model}, {price.provenance})")
    return Cost(usd, basis)


def usage_cost(input_tokens: int, output_tokens: int, price: TokenPrice) -> Cost:
    """Cost of calling the fine-tuned model (an evaluation run) from its token usage."""
    if price.input_per_1k is None or price.output_per_1k is None:
        raise InputError(f"no usage price known for fine-tuned {price.model}; give --input-price and --output-price")
    usd = round((input_tokens * price.input_per_1k + output_tokens * price.output_per_1k) / 1000, 2)
    basis = (f"{input_tokens:,} input tokens × ${price.input_per_1k:g}/1K + {output_tokens:,} output tokens × "
             f"${price.output_per_1k:g}/1K ({price.model} fine-tuned, {price.provenance})")
    return Cost(usd, basis)

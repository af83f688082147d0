"""Before paying: tokens per example and in total, the epochs OpenAI would pick, and the expected bill."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ftbench._jsonl import JsonlLine
from ftbench.errors import InputError
from ftbench.finetune.openai.tokens import TokenCounter, TokenStats, default_epochs, model_limits, token_stats
from ftbench.pricing import Cost, TokenPrice, training_cost


@dataclass(frozen=True)
class FineTuneEstimate:
    """What a job on these examples would train on and cost."""

    model: str
    stats: TokenStats
    n_epochs: int
    epochs_chosen_by: str  # "you" or "OpenAI's default heuristic"
    billed_tokens: int
    cost: Cost
    exact_tokens: bool
    encoding: str


def example_token_counts(lines: Sequence[JsonlLine], counter: TokenCounter, source: str = "file") -> list[int]:
    """Token count of each example; a line without a ``messages`` list stops the count, named as ``SOURCE:LINE``."""
    counts = []
    for line in lines:
        messages: Any = line.value.get("messages") if isinstance(line.value, dict) else None
        if not isinstance(messages, list):
            problem = line.error or "no 'messages' list"
            raise InputError(f"{source}:{line.number}: {problem}; `validate {source}` lists every problem")
        counts.append(counter.count_messages(messages))
    return counts


def estimate_fine_tune(lines: Sequence[JsonlLine], model: str, counter: TokenCounter, price: TokenPrice,
                       n_epochs: int | None = None, source: str = "file") -> FineTuneEstimate:
    """Estimate for ``model``; ``n_epochs=None`` means OpenAI's default for this many examples."""
    counts = example_token_counts(lines, counter, source)
    stats = token_stats(counts, model_limits(model).example_token_limit)
    epochs = n_epochs if n_epochs is not None else default_epochs(stats.n_examples)
    billed = stats.billed_per_epoch * epochs
    return FineTuneEstimate(
        model=model, stats=stats, n_epochs=epochs,
        epochs_chosen_by="you" if n_epochs is not None else "OpenAI's default heuristic",
        billed_tokens=billed, cost=training_cost(billed, price), exact_tokens=counter.exact,
        encoding=counter.encoding,
    )


def format_estimate(estimate: FineTuneEstimate) -> list[str]:
    s = estimate.stats
    approx = "" if estimate.exact_tokens else "~"
    how = f"{estimate.encoding}" if estimate.exact_tokens else f"estimated, {estimate.encoding} unavailable"
    return [
        f"examples: {s.n_examples}",
        f"tokens per example ({how}): min {approx}{s.min}, median {approx}{s.median:g}, "
        f"mean {approx}{s.mean:.1f}, max {approx}{s.max}",
        f"tokens in file: {approx}{s.total:,}; over the {s.limit:,}-token limit of {estimate.model}: {s.over_limit}",
        f"epochs: {estimate.n_epochs} (chosen by {estimate.epochs_chosen_by})",
        f"billed tokens: {approx}{estimate.billed_tokens:,}",
        f"cost: {approx}${estimate.cost.usd:,.2f} = {estimate.cost.basis}",
    ]

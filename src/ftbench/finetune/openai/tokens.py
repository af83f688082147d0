"""Token counts of chat examples, OpenAI's default epoch count, and what a fine-tune will be billed.

Counting follows the OpenAI Cookbook notebook "Data preparation and analysis for chat model fine-tuning"
(``examples/Chat_finetuning_data_prep.ipynb``): per message 3 tokens of framing plus its encoded content
(and 1 per ``name``), plus 3 tokens priming the reply. Encodings come from tiktoken, which downloads them
on first use. Where it cannot (offline, as on our CI machines), counts fall back to OpenAI's rule of thumb
of **4 characters per token** (help.openai.com, "What are tokens and how to count them?") with the same
framing, and the counter says so. It is a budget, not a bill: on the study's training files it comes out
14% above the tokens OpenAI billed (estimated 1,713,546 vs 1,498,750 billed for SQL, 3,723,267 vs
3,256,250 for ViGGO, 3 epochs each), and other text (other languages, long identifiers) can fall either side.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ftbench.errors import InputError, MissingDependency

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3

# OpenAI's default epoch heuristic (same Cookbook notebook, "Cost Estimation"): 3 epochs, scaled so that
# examples × epochs lies within [100, 25,000], and never outside [1, 25] epochs.
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25

TokenizerMode = Literal["auto", "tiktoken", "estimate"]
Loader = Callable[[str], Any]  # encoding name -> object with .encode(str) -> list[int]


@dataclass(frozen=True)
class ModelLimits:
    """Tokenizer and per-example training context of a base model (longer examples are truncated)."""

    encoding: str
    example_token_limit: int


#: Base models and their training limits, as documented when each became fine-tunable.
MODEL_LIMITS: dict[str, ModelLimits] = {
    "gpt-3.5-turbo-0613": ModelLimits("cl100k_base", 4_096),
    "gpt-3.5-turbo-1106": ModelLimits("cl100k_base", 16_385),
    "gpt-3.5-turbo-0125": ModelLimits("cl100k_base", 16_385),
    "gpt-4o-mini-2024-07-18": ModelLimits("o200k_base", 65_536),
    "gpt-4o-2024-08-06": ModelLimits("o200k_base", 65_536),
    "gpt-4.1-2025-04-14": ModelLimits("o200k_base", 65_536),
    "gpt-4.1-mini-2025-04-14": ModelLimits("o200k_base", 65_536),
    "gpt-4.1-nano-2025-04-14": ModelLimits("o200k_base", 65_536),
}


def model_limits(model: str) -> ModelLimits:
    """Limits of ``model``; unknown models get the GPT-4o family's encoding and a 16,385-token limit."""
    return MODEL_LIMITS.get(model, ModelLimits("o200k_base", 16_385))


@dataclass(frozen=True)
class TokenCounter:
    """Counts tokens of chat examples; ``exact`` is False when counts are the 4-characters-per-token estimate."""

    encoding: str
    exact: bool
    warning: str | None
    _count_text: Callable[[str], int]

    def count_text(self, text: str) -> int:
        return self._count_text(text)

    def count_messages(self, messages: Sequence[dict[str, Any]]) -> int:
        total = REPLY_PRIMING_TOKENS
        for message in messages:
            total += TOKENS_PER_MESSAGE
            for key, value in message.items():
                if isinstance(value, str):
                    total += self.count_text(value) + (TOKENS_PER_NAME if key == "name" else 0)
        return total


def estimate_text_tokens(text: str) -> int:
    """The documented offline estimate: one token per 4 characters, rounded up."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimating_counter(encoding: str, reason: str | None = None) -> TokenCounter:
    warning = None
    if reason is not None:
        warning = (f"tiktoken could not load the {encoding} encoding ({reason}); token counts are ESTIMATES "
                   f"at {CHARS_PER_TOKEN} characters per token (OpenAI's rule of thumb), good for budgeting, "
                   "not billing. Run once with network access (or set TIKTOKEN_CACHE_DIR to a folder holding "
                   "the encoding files) for exact counts.")
    return TokenCounter(encoding, False, warning, estimate_text_tokens)


def token_counter(model: str, mode: TokenizerMode = "auto", loader: Loader | None = None) -> TokenCounter:
    """A counter for ``model``: tiktoken when its encoding loads, else the estimate (``auto``).

    ``tiktoken`` fails instead of estimating; ``estimate`` never touches tiktoken. ``loader`` replaces
    ``tiktoken.get_encoding`` (tests).
    """
    encoding = model_limits(model).encoding
    if mode == "estimate":
        return estimating_counter(encoding)
    try:
        encoder = (loader or _tiktoken_loader())(encoding)
    except MissingDependency as err:
        if mode == "tiktoken":
            raise
        return estimating_counter(encoding, str(err))
    except Exception as err:  # tiktoken raises network, OS and hash errors; all mean "no encoding here"
        if mode == "tiktoken":
            raise InputError(f"tiktoken could not load the {encoding} encoding: {_short(err)}") from err
        return estimating_counter(encoding, _short(err))
    return TokenCounter(encoding, True, None, lambda text: len(encoder.encode(text, disallowed_special=())))


def _tiktoken_loader() -> Loader:
    try:
        import tiktoken
    except ImportError as err:
        raise MissingDependency("tiktoken is not installed (pip install 'ftbench[openai]')") from err
    loader: Loader = tiktoken.get_encoding
    return loader


def _short(err: Exception) -> str:
    """The error's type, plus its text when short (network errors run to several hundred characters)."""
    text = str(err).strip()
    hint = " — offline?" if isinstance(err, OSError) else ""
    return f"{type(err).__name__}{hint}" if not text or len(text) > 100 else f"{type(err).__name__}: {text}"


def default_epochs(n_examples: int) -> int:
    """The epoch count OpenAI picks when ``n_epochs`` is left to it (see the module docstring)."""
    if n_examples <= 0:
        raise InputError("no training examples")
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


@dataclass(frozen=True)
class TokenStats:
    """Per-example token counts of a file and what one epoch over it is billed."""

    n_examples: int
    total: int
    min: int
    max: int
    mean: float
    median: float
    limit: int
    over_limit: int  # examples longer than ``limit`` (truncated by OpenAI)
    billed_per_epoch: int  # sum of min(limit, tokens)


def token_stats(counts: Sequence[int], limit: int) -> TokenStats:
    if not counts:
        raise InputError("no training examples")
    return TokenStats(
        n_examples=len(counts), total=sum(counts), min=min(counts), max=max(counts),
        mean=statistics.fmean(counts), median=statistics.median(counts), limit=limit,
        over_limit=sum(count > limit for count in counts),
        billed_per_epoch=sum(min(limit, count) for count in counts),
    )

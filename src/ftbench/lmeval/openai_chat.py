"""lm-eval model classes that send OpenAI chat endpoints the request the task asks for.

lm-eval 0.4.13's ``openai-chat-completions`` treats any model name containing "5", "o1", "o3" or "o4" as a
reasoning model: it drops ``stop`` and forces ``temperature=1``. ``gpt-3.5-turbo`` and every
``ft:gpt-3.5-turbo-0613:…`` fine-tune match, so they would be evaluated sampled and without stop sequences.
These classes build the payload themselves, for any model name:

- ``temperature`` 0 (greedy) unless the task's ``generation_kwargs`` set ``do_sample: true``;
- ``stop``: the task's ``until`` (OpenAI accepts at most 4; extra ones are dropped with a warning);
- ``max_tokens``: the task's ``max_gen_toks`` (or the ``max_gen_toks`` model argument), sent as
  ``max_completion_tokens`` to o-series and GPT-5 models, which refuse ``max_tokens``;
- ``seed`` and any other generation kwargs the task gives, passed through.

Registered names (call :func:`register_models`; ``ftbench eval`` does it before lm-eval reads ``--model``):

- ``ftbench-openai-chat``: OpenAI's endpoint; the key comes from ``OPENAI_API_KEY`` and is required;
- ``ftbench-chat-completions``: any OpenAI-compatible ``base_url=…/v1/chat/completions`` (vLLM,
  ``transformers serve``…); ``OPENAI_API_KEY`` is sent when set.

Both need ``--apply_chat_template`` (the ``*_chat`` tasks put the system prompt in the doc's ``description``)::

    OPENAI_API_KEY=… ftbench eval --model ftbench-openai-chat \\
        --model_args model=ft:gpt-3.5-turbo-0613:acme::abc123 \\
        --tasks spider_sql_chat --apply_chat_template --log_samples --output_path ftbench-out/eval/openai-spider

Each request's token usage (the API's ``usage``: ``prompt_tokens``, ``completion_tokens``) is recorded in the
logged sample, beside the request's generation arguments (``arguments.gen_args_0.arg_1.ftbench_usage``), where
the leaderboard reads it to price 1,000 queries.

The key is read from the environment only, never put in ``model_args`` (which lm-eval writes into its
results), and scrubbed from lm-eval's request-failure log lines.
"""

from __future__ import annotations

import logging
import os
import re
from functools import cached_property
from typing import Any

from lm_eval.models.openai_completions import LocalChatCompletion

from ftbench.errors import InputError
from ftbench.openai_client import API_KEY_ENV, api_key_from_env, redact
from ftbench.pricing import base_model

OPENAI_CHAT_URL = "https://api.openai.com/v1/chat/completions"
MAX_STOP_SEQUENCES = 4  # OpenAI's limit on ``stop``

#: lm-eval ``--model`` names and the classes they load (lazily, through lm-eval's registry).
MODEL_NAMES: dict[str, str] = {
    "ftbench-openai-chat": f"{__name__}:OpenAIChat",
    "ftbench-chat-completions": f"{__name__}:ChatCompletions",
}

#: Where a request's token usage is kept in its generation arguments (read by ftbench.leaderboard).
USAGE_KEY = "ftbench_usage"

log = logging.getLogger(__name__)


class UsageText(str):
    """A generated text that carries the token usage of the request that produced it."""

    usage: dict[str, int] | None = None


def with_usage(answers: list[Any], outputs: Any) -> list[Any]:
    """``answers`` (one per choice, outputs in order) with each response's ``usage`` on its first answer."""
    tagged, position = list(answers), 0
    for output in outputs if isinstance(outputs, list) else [outputs]:
        choices = len(output.get("choices") or [None]) if isinstance(output, dict) else 1
        usage = output.get("usage") if isinstance(output, dict) else None
        if position < len(tagged) and isinstance(tagged[position], str) and isinstance(usage, dict):
            text = UsageText(tagged[position])
            text.usage = {key: int(usage[key]) for key in ("prompt_tokens", "completion_tokens")
                          if isinstance(usage.get(key), int)}
            tagged[position] = text
        position += choices
    return tagged


def record_usage(requests: list[Any], answers: list[Any]) -> None:
    """Put each answer's usage into its request's generation arguments, which lm-eval logs with the sample."""
    for request, answer in zip(requests, answers, strict=False):
        usage = getattr(answer, "usage", None)
        arguments: Any = getattr(request, "args", ())
        if usage and len(arguments) > 1 and isinstance(arguments[1], dict):
            arguments[1][USAGE_KEY] = usage


def register_models() -> None:
    """Make ``--model ftbench-openai-chat`` and ``--model ftbench-chat-completions`` known to lm-eval.

    Idempotent; call it before lm-eval resolves ``--model`` (``ftbench eval`` does).
    """
    from lm_eval.api.registry import model_registry

    for name, target in MODEL_NAMES.items():
        if name not in model_registry:
            model_registry.register(name, target=target)


def stop_sequences(until: Any) -> list[str]:
    """The task's ``until`` as OpenAI's ``stop`` list (at most 4)."""
    stops = [until] if isinstance(until, str) else list(until or [])
    if not all(isinstance(stop, str) for stop in stops):
        raise InputError(f"generation_kwargs.until must be text or a list of text, got {until!r}")
    if len(stops) > MAX_STOP_SEQUENCES:
        log.warning("OpenAI accepts %d stop sequences; sending %r, dropping %r", MAX_STOP_SEQUENCES,
                    stops[:MAX_STOP_SEQUENCES], stops[MAX_STOP_SEQUENCES:])
    return stops[:MAX_STOP_SEQUENCES]


def chat_payload(model: str, messages: Any, gen_kwargs: dict[str, Any], default_max_tokens: int,
                 seed: int | None) -> dict[str, Any]:
    """The JSON body of one chat-completions request (pure: tested without a server)."""
    if not (isinstance(messages, list) and all(isinstance(m, dict) for m in messages)):
        raise InputError("chat models need the prompt as messages: add --apply_chat_template")
    options = dict(gen_kwargs)
    sampling = bool(options.pop("do_sample", False))
    temperature = options.pop("temperature", 0.0)
    max_tokens = options.pop("max_tokens", None) or options.pop("max_gen_toks", None) or default_max_tokens
    options.pop("max_gen_toks", None)
    stop = stop_sequences(options.pop("until", None))
    payload: dict[str, Any] = {"model": model, "messages": messages, "temperature": temperature if sampling else 0.0,
                               "max_tokens": int(max_tokens), **options}
    if seed is not None:
        payload["seed"] = seed
    if stop:
        payload["stop"] = stop
    if needs_max_completion_tokens(model):
        payload["max_completion_tokens"] = payload.pop("max_tokens")
    return payload


#: model_args that would carry a secret; lm-eval writes model_args verbatim into results files and logs.
SECRET_ARGUMENTS = ("api_key", "openai_api_key", "key", "token", "authorization")


def refuse_key_arguments(model_args: dict[str, Any]) -> None:
    """Raise when a key is given in ``model_args`` (it would land in lm-eval's results and stdout)."""
    given = [name for name in model_args if name.lower() in SECRET_ARGUMENTS]
    if given:
        raise InputError(f"do not put a key in --model_args ({', '.join(given)}): lm-eval writes model_args into "
                         f"its results files; export {API_KEY_ENV} instead, it is read from the environment")


def needs_max_completion_tokens(model: str) -> bool:
    """o-series and GPT-5 models (and their ``ft:`` fine-tunes) refuse ``max_tokens``: they take
    ``max_completion_tokens``, which also bounds their hidden reasoning tokens."""
    return re.match(r"(o\d|gpt-5)", base_model(model)) is not None


class _RedactKey(logging.Filter):
    """Scrubs the key (and anything shaped like one) from lm-eval's log lines, which quote server replies."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secret)
        record.args = None
        return True


class ChatCompletions(LocalChatCompletion):  # type: ignore[misc]  # lm-eval ships no type hints
    """Any OpenAI-compatible chat endpoint (``base_url`` = the full ``…/v1/chat/completions`` URL)."""

    def __init__(self, base_url: str | None = None, **kwargs: Any) -> None:
        refuse_key_arguments(kwargs)
        if not base_url:
            raise InputError("ftbench-chat-completions needs base_url=http://HOST:PORT/v1/chat/completions")
        kwargs.setdefault("tokenizer_backend", None)
        kwargs.setdefault("tokenized_requests", False)
        super().__init__(base_url=base_url, **kwargs)
        if self.api_key:
            logging.getLogger("lm_eval.models.api_models").addFilter(_RedactKey(self.api_key))

    @cached_property
    def api_key(self) -> str:
        return os.environ.get(API_KEY_ENV, "").strip()

    @cached_property
    def header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    @cached_property
    def eos_string(self) -> str | None:
        return None  # chat endpoints end turns themselves; stop sequences come only from the task

    def _create_payload(self, messages: Any, generate: bool = False, gen_kwargs: dict[str, Any] | None = None,
                        seed: int | None = 1234, eos: str | None = None, **kwargs: Any) -> dict[str, Any]:
        return chat_payload(self.model, messages, gen_kwargs or {}, self._max_gen_toks, seed)

    def parse_generations(self, outputs: Any, **kwargs: Any) -> list[Any]:
        return with_usage(super().parse_generations(outputs, **kwargs), outputs)

    def generate_until(self, requests: Any, disable_tqdm: bool = False) -> list[Any]:
        answers: list[Any] = super().generate_until(requests, disable_tqdm)
        record_usage(list(requests), answers)
        return answers


class OpenAIChat(ChatCompletions):
    """OpenAI's chat endpoint, for base and ``ft:`` models alike; needs ``OPENAI_API_KEY``."""

    def __init__(self, base_url: str = OPENAI_CHAT_URL, **kwargs: Any) -> None:
        api_key_from_env()  # fail before any request, with a message that says how to fix it
        super().__init__(base_url=base_url, **kwargs)

    @cached_property
    def api_key(self) -> str:
        return api_key_from_env()

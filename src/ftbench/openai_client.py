"""The OpenAI client as ftbench uses it: key from the environment only, retries we control, clear errors.

The ``openai`` client's own retries are turned off (``max_retries=0``) so that one policy, with a
configurable base delay, governs every call: rate limits (429, except ``insufficient_quota``), 5xx, timeouts
and dropped connections are retried with exponential backoff and jitter, honouring ``Retry-After``; anything
else becomes an :class:`~ftbench.errors.OpenAIApiError` carrying OpenAI's own reason. The key is never put
in a message, and any text that came back from the server is scrubbed of it before it is shown.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ftbench.errors import ApiKeyError, MissingDependency, OpenAIApiError

API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
_KEY_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_\-]{4})[A-Za-z0-9_\-*.]{4,}")

log = logging.getLogger("ftbench.finetune")
T = TypeVar("T")


def api_key_from_env() -> str:
    """``$OPENAI_API_KEY``, or a clear error saying how to set it (the value is never shown)."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    if not key:
        raise ApiKeyError(f"{API_KEY_ENV} is not set: export {API_KEY_ENV}=<your key> "
                          "(create one at https://platform.openai.com/api-keys); it is read from the environment only")
    return key


def redact(text: str, secret: str | None = None) -> str:
    """``text`` with ``secret`` and anything shaped like an OpenAI key (``sk-…``) masked."""
    if secret:
        text = text.replace(secret, "[REDACTED]")
    return _KEY_PATTERN.sub(r"\1***", text)


def redact_known(text: str) -> str:
    """``text`` with this environment's key (``$OPENAI_API_KEY``) and anything shaped like a key masked:
    every text ftbench writes from the API goes through it. JSON stays JSON (the masks hold no quotes)."""
    return redact(text, os.environ.get(API_KEY_ENV, "").strip() or None)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``base_s × 2^(attempt-1)`` (capped at ``max_s``), ± ``jitter`` of it."""

    max_attempts: int = 8
    base_s: float = 1.0
    max_s: float = 60.0
    jitter: float = 0.25

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        backoff = min(self.max_s, self.base_s * 2 ** (attempt - 1))
        backoff *= 1 + random.uniform(-self.jitter, self.jitter)
        return float(min(self.max_s, max(backoff, retry_after or 0.0)))


@dataclass
class OpenAIApi:
    """An ``openai.OpenAI`` client plus the retry policy and error mapping every call goes through."""

    client: Any
    secret: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` (one API request), retrying transient failures; ``what`` names it in messages."""
        import openai

        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                return fn()
            except openai.APIError as err:
                if not _is_transient(err) or attempt == self.retry.max_attempts:
                    raise self._to_ftbench(what, err, attempt) from None
                delay = self.retry.delay(attempt, _retry_after(err))
                log.warning("%s: %s; retrying in %.2f s (attempt %d of %d)", what, self._reason(err), delay,
                            attempt + 1, self.retry.max_attempts)
                self.sleep(delay)
        raise OpenAIApiError(f"{what}: no attempt made (max_attempts={self.retry.max_attempts})")

    def _reason(self, err: Any) -> str:
        status = getattr(err, "status_code", None)
        message = _error_message(err)
        return redact(f"HTTP {status}: {message}" if status else message, self.secret)

    def _to_ftbench(self, what: str, err: Any, attempt: int) -> OpenAIApiError:
        import openai

        reason = self._reason(err)
        if isinstance(err, openai.AuthenticationError):
            return ApiKeyError(f"{what}: OpenAI rejected the key in {API_KEY_ENV} (invalid, expired or revoked): "
                               f"{reason}")
        if _is_transient(err):
            return OpenAIApiError(f"{what}: gave up after {attempt} attempts; last error: {reason}")
        if getattr(err, "code", None) == "insufficient_quota":
            return OpenAIApiError(f"{what}: your OpenAI account has no quota left (billing): {reason}")
        return OpenAIApiError(f"{what}: {reason}")


def _is_transient(err: Any) -> bool:
    import openai

    if isinstance(err, openai.RateLimitError):
        return getattr(err, "code", None) != "insufficient_quota"
    if isinstance(err, openai.APIStatusError):
        return bool(err.status_code >= 500 or err.status_code == 408)
    return isinstance(err, openai.APIConnectionError)


def _error_message(err: Any) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        code = body.get("code")
        return f"{body['message']}" + (f" [{code}]" if code else "")
    return str(getattr(err, "message", err))


def _retry_after(err: Any) -> float | None:
    response = getattr(err, "response", None)
    headers = getattr(response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        try:
            if value is not None:
                return float(value) * scale
        except ValueError:  # an HTTP date: rare from OpenAI, and our own backoff is a fine substitute
            continue
    return None


def make_api(base_url: str | None = None, retry: RetryPolicy | None = None, timeout_s: float = 120.0) -> OpenAIApi:
    """A client for ``base_url`` (default: ``$OPENAI_BASE_URL`` or OpenAI) with the key from the environment."""
    try:
        import openai
    except ImportError as err:
        raise MissingDependency("the openai package is needed: pip install 'ftbench[openai]'") from err
    key = api_key_from_env()
    url = base_url or os.environ.get(BASE_URL_ENV) or None
    client = openai.OpenAI(api_key=key, base_url=url, max_retries=0, timeout=timeout_s)
    return OpenAIApi(client=client, secret=key, retry=retry or RetryPolicy())

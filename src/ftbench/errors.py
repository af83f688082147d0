"""User-facing errors. The CLI turns each into a one-line message and the exit code it carries."""

from __future__ import annotations


class FtbenchError(Exception):
    """Base class of every error a user can cause or fix; never a bug."""

    exit_code = 1


class DataError(FtbenchError):
    """A dataset file is missing, unreadable, or not in the expected shape."""

    exit_code = 3


class InputError(FtbenchError):
    """A file the user handed us (predictions to score, a config) is malformed."""

    exit_code = 2


class MissingDependency(FtbenchError):
    """An optional extra is needed for this command but is not installed."""

    exit_code = 4


class OpenAIApiError(FtbenchError):
    """The OpenAI API refused or failed a request (after retries where retrying makes sense)."""

    exit_code = 5


class ApiKeyError(OpenAIApiError):
    """``OPENAI_API_KEY`` is missing, or the API rejected it (invalid, expired, revoked)."""

    exit_code = 6


class FineTuneFailed(OpenAIApiError):
    """A fine-tuning job ended ``failed`` or ``cancelled``; the message carries OpenAI's error and events."""

    exit_code = 7


class InsufficientMemory(FtbenchError):
    """The chosen model will not fit in the memory of the device it would train on."""

    exit_code = 8

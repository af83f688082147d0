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

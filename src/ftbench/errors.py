"""User-facing errors and every exit code ftbench ends with.

The ``ftbench`` CLI and the scripts in ``training/`` turn each error into a one-line message and the exit code
it carries. An error class that sets no ``exit_code`` of its own carries its parent's. The README's table of
exit codes lists, for each code, the classes (and ``EXIT_*`` constants) that define it; a test checks the two
agree, and that no two of them share a code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

#: The command did all it was asked.
EXIT_OK = 0
#: ``ftbench score`` wrote every row, but some could not be judged at all (``error: internal``).
EXIT_UNJUDGED_ROWS = 3
#: The user stopped the run (Ctrl-C), as a shell reports SIGINT; what was finished is kept.
EXIT_INTERRUPTED = 130


class FtbenchError(Exception):
    """Base class of every error a user can cause or fix; never a bug."""

    exit_code = 1


class InputError(FtbenchError):
    """A file or option the user handed us (predictions to score, a config) is malformed."""

    exit_code = 2


class OutputError(InputError):
    """The output cannot be written (a read-only or full disk, a folder, a locked file)."""


class MRParseError(InputError, ValueError):
    """The text is not a ViGGO meaning representation; the message says what is wrong and at which column.

    Also a ``ValueError``: a prediction that does not parse is scored as invalid, not reported.
    """


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


class ServerFailed(FtbenchError):
    """The model server process exited or never became healthy."""

    exit_code = 9


class DataError(FtbenchError):
    """A dataset file is missing, unreadable, or not in the expected shape."""

    exit_code = 10


class SandboxError(FtbenchError):
    """The SQL sandbox worker cannot be started at all (an environment problem, not a prediction's)."""

    exit_code = 11


class EvaluationFailed(FtbenchError):
    """lm-eval exited non-zero, crashed against the server, or wrote no results."""

    exit_code = 12


class Interrupted(FtbenchError):
    """The user stopped the run (Ctrl-C); what was done is kept, and the message says where."""

    exit_code = EXIT_INTERRUPTED


class DemoIncomplete(FtbenchError):
    """A late stage of the demo failed; what the earlier stages wrote is kept, and the message says where.

    Carries the exit code of the error that stopped the stage.
    """

    def __init__(self, message: str, cause: FtbenchError) -> None:
        super().__init__(message)
        self.exit_code = cause.exit_code


def run_reporting_errors(command: Callable[[], object], interrupted: str = "") -> int:
    """Run a command's ``command`` (a script's, or one of ``ftbench``'s) and return the exit code it ends with:
    :data:`EXIT_OK`, or, after one line on stderr, the code of the :class:`FtbenchError` it raised, or
    :data:`EXIT_INTERRUPTED` on Ctrl-C (``interrupted``, when given, says what is kept and how to go on). Any
    other exception is a bug and keeps its traceback."""
    try:
        command()
    except FtbenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"\ninterrupted: {interrupted}" if interrupted else "interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK

"""SQL execution accuracy you can trust.

:func:`judge` (:func:`judge_many` for several at once) runs the gold and the predicted query on several
databases, inside a sandboxed worker process, and compares results with the test-suite rules. The
databases depend on the judge mode: synthesized from the ``CREATE TABLE`` context (``context``), the
real Spider database plus fuzzed databases with its schema (``test-suite``), or the real database alone
(``real-db``).
:class:`SqlScorer` plugs the judge into :func:`ftbench.scoring.score_file`.
"""

from ftbench.errors import SandboxError
from ftbench.sql._judge import SqlPair, judge, judge_many
from ftbench.sql._scorer import SqlScorer
from ftbench.sql._text import exact_match, is_valid_sql
from ftbench.sql._types import ERROR_KINDS, JUDGE_MODES, ErrorKind, JudgeConfig, JudgeMode, SandboxMode, Verdict

__all__ = ["ERROR_KINDS", "JUDGE_MODES", "ErrorKind", "JudgeConfig", "JudgeMode", "SandboxError", "SandboxMode",
           "SqlPair", "SqlScorer", "Verdict", "exact_match", "is_valid_sql", "judge",
           "judge_many"]

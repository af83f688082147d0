"""SQL execution accuracy you can trust.

:func:`judge` runs the gold and the predicted query on several databases synthesized from the
``CREATE TABLE`` context (values harvested from both queries, seeded, cached), and optionally on the
real Spider databases, inside a sandboxed worker process; it compares results with the test-suite
rules. :class:`SqlScorer` plugs the judge into :func:`ftbench.scoring.score_file`.
"""

from ftbench.sql._isolation import SandboxError
from ftbench.sql._judge import judge
from ftbench.sql._scorer import SqlScorer
from ftbench.sql._text import exact_match, is_valid_sql
from ftbench.sql._types import ERROR_KINDS, DbMode, ErrorKind, JudgeConfig, SandboxMode, Verdict

__all__ = ["ERROR_KINDS", "DbMode", "ErrorKind", "JudgeConfig", "SandboxError", "SandboxMode", "SqlScorer", "Verdict",
           "exact_match", "is_valid_sql", "judge"]

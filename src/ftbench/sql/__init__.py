"""SQL execution accuracy you can trust.

:func:`judge` (:func:`judge_many` for several at once) runs the gold and the predicted query on several
databases, inside a sandboxed worker process, and compares results with the test-suite rules. The
databases depend on the judge mode: synthesized from the ``CREATE TABLE`` context (``context``), the
real Spider database plus fuzzed databases with its schema (``test-suite``), or the real database alone
(``real-db``).
:class:`SqlScorer` plugs the judge into :func:`ftbench.scoring.score_file`.

The benchmarks also use the judge's parts directly, in this process and on our own generated cases only:
:func:`open_read_only` and :func:`run_query` (one query on one database), :func:`same_result` (the result
comparison) and :func:`has_top_level_order`; a verdict whose ``detail`` is :data:`TIES_DETAIL` accepted a
prediction that differs from the gold only in how it breaks ties; one whose ``detail`` starts with
:data:`RANKING_DETAIL` refused a prediction that keeps its top rows by other sort values than the gold's.
"""

from ftbench.errors import SandboxError
from ftbench.sql._compare import same_result
from ftbench.sql._exec import Rows, open_read_only, run_query
from ftbench.sql._judge import SqlPair, judge, judge_many
from ftbench.sql._scorer import SqlScorer
from ftbench.sql._text import exact_match, has_top_level_order, is_valid_sql, warm_sandbox
from ftbench.sql._types import (
    ERROR_KINDS,
    JUDGE_MODES,
    RANKING_DETAIL,
    TIES_DETAIL,
    ErrorKind,
    JudgeConfig,
    JudgeMode,
    SandboxMode,
    Verdict,
)

__all__ = ["ERROR_KINDS", "JUDGE_MODES", "RANKING_DETAIL", "TIES_DETAIL", "ErrorKind", "JudgeConfig", "JudgeMode",
           "Rows", "SandboxError", "SandboxMode", "SqlPair", "SqlScorer", "Verdict", "exact_match",
           "has_top_level_order", "is_valid_sql", "judge", "judge_many", "open_read_only", "run_query", "same_result",
           "warm_sandbox"]

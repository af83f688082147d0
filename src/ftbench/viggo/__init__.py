"""ViGGO meaning representations: a bracket-aware parser and the task's scores.

An MR is ``function(attribute[value], ...)``, e.g.
``verify_attribute(name[Little Big Adventure], rating[average], has_multiplayer[no], platforms[PlayStation])``.

Metrics (per example, then averaged over the corpus; ``slot_f1`` is micro-averaged):

- ``exact_match``: ``gold.strip() == prediction.strip()``, the study's character-level comparison.
- ``mr_match``: the prediction parses and has the gold's function and the same attribute→value pairs,
  in any order; values are whitespace-trimmed and compared case-sensitively.
- ``valid_mr``: the prediction parses, its function is a ViGGO function, every attribute is a ViGGO
  attribute, and no attribute repeats.
- ``slot_f1``: slots are the (attribute, value) pairs plus the function as one slot; F1 =
  2·tp / (2·tp + fp + fn) on tp, fp, fn summed over all examples (1.0 only if all three sums are 0).
  An unparseable prediction counts every gold slot as missed and nothing as invented.
"""

from ftbench.errors import MRParseError
from ftbench.viggo._parse import MeaningRepresentation, is_valid_mr, parse_mr
from ftbench.viggo._scorer import ViggoScorer
from ftbench.viggo._scores import FUNCTION_SLOT, ViggoScore, f1_from_counts, micro_f1, score_mr, slot_multiset

__all__ = [
    "FUNCTION_SLOT",
    "MRParseError",
    "MeaningRepresentation",
    "ViggoScore",
    "ViggoScorer",
    "f1_from_counts",
    "is_valid_mr",
    "micro_f1",
    "parse_mr",
    "score_mr",
    "slot_multiset",
]

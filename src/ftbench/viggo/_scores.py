"""Scores of one predicted meaning representation against its gold, and slot F1 over a corpus.

Slots of an MR are its (attribute, value) pairs plus its function, counted as one more slot
``("__function__", function)``. Slots are compared as a multiset of exact (trimmed, case-sensitive)
pairs, so order does not matter and a changed value costs one false positive and one false negative.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from ftbench.errors import MRParseError
from ftbench.viggo._parse import MeaningRepresentation, is_valid_mr, parse_mr

FUNCTION_SLOT = "__function__"


@dataclass(frozen=True)
class ViggoScore:
    """How one prediction compares with its gold MR.

    - ``exact_match``: ``gold.strip() == prediction.strip()`` (the study's character-level comparison).
    - ``mr_match``: the prediction parses, has the gold's function and the same (attribute, value) pairs
      in any order (the same attribute→value mapping; values trimmed, compared case-sensitively).
    - ``valid_mr``: the prediction parses and :func:`is_valid_mr` holds.
    - ``tp``/``fp``/``fn``: slot counts (see the module docstring). An unparseable prediction has
      ``tp = fp = 0`` and ``fn`` = every gold slot.
    """

    exact_match: bool
    mr_match: bool
    valid_mr: bool
    tp: int
    fp: int
    fn: int

    @property
    def slot_f1(self) -> float:
        """This example's slot F1, :func:`f1_from_counts` of its counts."""
        return f1_from_counts(self.tp, self.fp, self.fn)


def slot_multiset(mr: MeaningRepresentation) -> Counter[tuple[str, str]]:
    """The MR's (attribute, value) pairs plus ``(FUNCTION_SLOT, function)``, with multiplicity."""
    return Counter((*mr.slots, (FUNCTION_SLOT, mr.function)))


def score_mr(gold: str, prediction: str) -> ViggoScore:
    """Score ``prediction`` against ``gold`` (see :class:`ViggoScore`).

    Raises :class:`MRParseError` naming the gold when the gold itself does not parse.
    """
    gold_mr = _parse_gold(gold)
    exact = gold.strip() == prediction.strip()
    try:
        predicted = parse_mr(prediction)
    except MRParseError:
        return ViggoScore(exact, mr_match=False, valid_mr=False, tp=0, fp=0, fn=len(gold_mr.slots) + 1)
    gold_slots, predicted_slots = slot_multiset(gold_mr), slot_multiset(predicted)
    tp = (gold_slots & predicted_slots).total()
    return ViggoScore(
        exact_match=exact,
        mr_match=gold_slots == predicted_slots,
        valid_mr=is_valid_mr(predicted),
        tp=tp,
        fp=predicted_slots.total() - tp,
        fn=gold_slots.total() - tp,
    )


def _parse_gold(gold: str) -> MeaningRepresentation:
    try:
        return parse_mr(gold)
    except MRParseError as err:
        raise MRParseError(f"gold MR does not parse: {err}") from err


def f1_from_counts(tp: int, fp: int, fn: int) -> float:
    """F1 = 2·tp / (2·tp + fp + fn), the harmonic mean of precision and recall (0.0 when tp = 0).

    Degenerate case: with no slots at all (tp = fp = fn = 0) nothing was missed or invented, so F1 = 1.0.
    """
    if tp < 0 or fp < 0 or fn < 0:
        raise ValueError(f"slot counts must be non-negative, got tp={tp}, fp={fp}, fn={fn}")
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else 1.0


def micro_f1(scores: Iterable[ViggoScore | tuple[int, int, int]]) -> float:
    """Micro-averaged slot F1: sum tp, fp and fn over all examples, then apply :func:`f1_from_counts`.

    Each item is a :class:`ViggoScore` or a ``(tp, fp, fn)`` triple (a list of three also works, as
    lm-eval may hand back). Degenerate case: 1.0 when the summed tp + fp + fn is 0, which includes an
    empty corpus.
    """
    tp = fp = fn = 0
    for item in scores:
        counts = (item.tp, item.fp, item.fn) if isinstance(item, ViggoScore) else item
        tp, fp, fn = tp + counts[0], fp + counts[1], fn + counts[2]
    return f1_from_counts(tp, fp, fn)

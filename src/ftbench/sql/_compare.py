"""Test-suite comparison of two query results.

Equal when both are empty; otherwise they need the same number of rows and columns and some
permutation of the predicted columns must make the rows equal: as bags, or as sequences when the
gold sorts its result. Ties in the gold's sort keys may come in any order, and a LIMIT cut through a
tie may keep any of the tied rows, so an ordered comparison that fails exactly is retried against the
gold's sort keys (see :func:`ordered_within_ties`); the engine then also asks that the prediction sort by
the gold's values (a ranking by other values that lands in a tie by chance is not a tie broken otherwise).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice, permutations

from ftbench.sql._exec import Row, Rows

_MAX_PERMUTATIONS = 2000
_SIGNIFICANT = 12
_EXACT_INTEGERS = 2**53

Key = tuple[object, ...]


@dataclass(frozen=True)
class KeyedRows:
    """The gold's full sorted result (no LIMIT) with its sort-key values appended to every row."""

    rows: tuple[Row, ...]
    width: int


def normalize(value: object) -> object:
    """Comparable form of a value, by type, as sqlite sees it: integers exactly (no collisions above
    2**53), an integral float as that integer (``COUNT`` 3 and ``SUM`` 3.0 are one number), other floats
    to 12 significant digits (a relative tolerance for AVG and division), text and blobs as they are.

    Text is never read as a number here: ``'007'`` and 7 differ, as they do for sqlite. Where a column
    is numeric, the database's own affinity has already stored its values as numbers."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return _float_key(value)
    return value


def _float_key(number: float) -> object:
    if not math.isfinite(number):
        return ("float", repr(number))  # a tuple: never equal to the text 'inf'
    if number.is_integer() and abs(number) < _EXACT_INTEGERS:
        return int(number)
    return float(f"{number:.{_SIGNIFICANT}g}") + 0.0


def normalized(rows: Sequence[Row]) -> list[Key]:
    return [tuple(normalize(value) for value in row) for row in rows]


def same_result(gold: Rows, prediction: Rows, ordered: bool) -> bool:
    """The test-suite rule, exactly (ties not considered)."""
    if gold.width == prediction.width and _identical(gold.rows, prediction.rows, ordered):
        return True  # values equal as Python compares them are equal as normalized: no need to look closer
    return any(True for _ in matching_permutations(gold, prediction, ordered))


def _identical(gold: tuple[Row, ...], prediction: tuple[Row, ...], ordered: bool) -> bool:
    if ordered or len(gold) < 2:
        return gold == prediction
    return len(gold) == len(prediction) and Counter(gold) == Counter(prediction)


def matching_permutations(gold: Rows, prediction: Rows, ordered: bool) -> Iterator[tuple[int, ...]]:
    """Column permutations (``gold column i <- prediction column p[i]``) that make the results equal."""
    if not gold.rows and not prediction.rows:
        yield ()
        return
    if len(gold.rows) != len(prediction.rows) or gold.width != prediction.width:
        return
    gold_rows, predicted = normalized(gold.rows), normalized(prediction.rows)
    for permutation in column_permutations(gold_rows, predicted, gold.width):
        if _rows_equal(gold_rows, [tuple(row[i] for i in permutation) for row in predicted], ordered):
            yield permutation


def column_permutations(gold: list[Key], predicted: list[Key], width: int) -> Iterator[tuple[int, ...]]:
    """Permutations that pair each gold column with a predicted column holding the same bag of values."""
    gold_bags = [Counter(row[i] for row in gold) for i in range(width)]
    predicted_bags = [Counter(row[i] for row in predicted) for i in range(width)]
    candidates = [[j for j in range(width) if predicted_bags[j] == gold_bags[i]] for i in range(width)]
    yield from islice(_assignments(candidates, 0, ()), _MAX_PERMUTATIONS)  # wide SELECT * could explode


def _assignments(candidates: list[list[int]], index: int, chosen: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    if index == len(candidates):
        yield chosen
        return
    for column in candidates[index]:
        if column not in chosen:
            yield from _assignments(candidates, index + 1, (*chosen, column))


def _rows_equal(gold: list[Key], predicted: list[Key], ordered: bool) -> bool:
    return gold == predicted if ordered else Counter(gold) == Counter(predicted)


def ordered_within_ties(keyed: KeyedRows, gold: Rows, prediction: Rows) -> bool:
    """True when the prediction lists the gold's rows in an order the gold's ORDER BY allows.

    ``keyed`` holds every row the gold would sort, with its sort keys after the gold's columns. The
    prediction must take whole tie groups in order, and at the end (a LIMIT) any rows of the last group.
    """
    if len(gold.rows) != len(prediction.rows) or gold.width != prediction.width:
        return False
    groups = _tie_groups(keyed, gold.width)
    predicted = normalized(prediction.rows)
    # Not column_permutations: with a LIMIT through a tie the two results may share no value at all.
    for permutation in islice(permutations(range(gold.width)), _MAX_PERMUTATIONS):
        if _fits_groups(groups, [tuple(row[i] for i in permutation) for row in predicted]):
            return True
    return False


def _tie_groups(keyed: KeyedRows, width: int) -> list[Counter[Key]]:
    groups: list[Counter[Key]] = []
    previous: Key | None = None
    for row in normalized(keyed.rows):
        key, values = row[width:], row[:width]
        if not groups or key != previous:
            groups.append(Counter())
        groups[-1][values] += 1
        previous = key
    return groups


def _fits_groups(groups: list[Counter[Key]], predicted: list[Key]) -> bool:
    position = 0
    for group in groups:
        if position == len(predicted):
            return True
        size = sum(group.values())
        taken = Counter(predicted[position:position + size])
        if taken - group:  # a row the group does not hold (or holds fewer times)
            return False
        position += min(size, len(predicted) - position)
        if position < len(predicted) and taken != group:
            return False
    return position == len(predicted)

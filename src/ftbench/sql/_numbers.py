"""When the judge takes a literal for a number: one rule for the whole package (query facts, the
affinities and values of synthesized and fuzzed databases).

Results are never compared through it: :mod:`ftbench.sql._compare` compares values by type, as
sqlite does, and never reads text as a number.
"""

from __future__ import annotations


def as_number(value: int | float | str) -> int | float | None:
    """``value`` as a number, or None when it is not one.

    Numbers are kept as they are (``True`` is the int 1). Text is an int when Python's ``int()`` reads
    it, else a float when ``float()`` does: so surrounding blanks, a sign, ``_`` between digits
    (``'1_000'``) and digits of other scripts are accepted, ``'2.50'`` and ``'1e3'`` are floats, and so
    are ``'inf'`` and ``'nan'`` (callers must cope with them); ``''``, ``'7a'`` and ``'0x1F'`` are text.
    """
    if isinstance(value, int | float):
        return value
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return None

"""Parse ViGGO meaning representations: ``function(attribute[value], attribute[value], ...)``.

Values may hold commas, spaces, parentheses and apostrophes (``esrb[M (for Mature)]``,
``genres[action-adventure, shooter]``), so the parser walks the text and tracks bracket depth instead
of splitting on commas. Inside a value, ``[`` and ``]`` nest; parentheses are plain characters.
Function and attribute names are ASCII identifiers; whitespace between tokens is allowed.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from ftbench.errors import MRParseError
from ftbench.prompts import VIGGO_ATTRIBUTES, VIGGO_FUNCTIONS

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KNOWN_FUNCTIONS = frozenset(VIGGO_FUNCTIONS)
_KNOWN_ATTRIBUTES = frozenset(VIGGO_ATTRIBUTES)


@dataclass(frozen=True)
class MeaningRepresentation:
    """A parsed MR: the dialogue-act function and its (attribute, value) slots in source order.

    Values are whitespace-trimmed; nothing else about them is normalised (case and inner spacing kept).
    ``str()`` gives the canonical text ``function(attr[value], attr[value])``.
    """

    function: str
    slots: tuple[tuple[str, str], ...]

    @property
    def attributes(self) -> tuple[str, ...]:
        """Attribute names in source order."""
        return tuple(attribute for attribute, _ in self.slots)

    def __str__(self) -> str:
        body = ", ".join(f"{attribute}[{value}]" for attribute, value in self.slots)
        return f"{self.function}({body})"


class _Cursor:
    """A position in the text being parsed, with helpers that raise positioned errors."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, problem: str) -> MRParseError:
        at = self.pos
        rest = self.text[at:at + 20]
        found = f"found {rest!r}" if rest else "found the end of the text"
        return MRParseError(f"{problem} at column {at + 1}, {found} (in {_shorten(self.text)})")

    def unclosed(self, kind: str, char: str, pos: int) -> MRParseError:
        return MRParseError(f"unbalanced {kind}: the {char!r} at column {pos + 1} is never closed "
                            f"(in {_shorten(self.text)})")

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        """The next non-space character, or "" at the end of the text."""
        self.skip_space()
        return self.text[self.pos:self.pos + 1]

    def expect(self, char: str, problem: str) -> int:
        """Consume ``char`` (after optional space) and return its position, else raise ``problem``."""
        if self.peek() != char:
            raise self.error(problem)
        self.pos += 1
        return self.pos - 1

    def name(self, what: str) -> str:
        self.skip_space()
        match = _NAME.match(self.text, self.pos)
        if match is None:
            raise self.error(f"expected {what}")
        self.pos = match.end()
        return match.group()

    def bracketed_value(self, opened_at: int) -> str:
        """Text up to the ``]`` that closes the ``[`` at ``opened_at`` (the cursor is just past it)."""
        depth = 1
        for index in range(self.pos, len(self.text)):
            depth += {"[": 1, "]": -1}.get(self.text[index], 0)
            if depth == 0:
                value = self.text[self.pos:index]
                self.pos = index + 1
                return value.strip()
        raise self.unclosed("brackets", "[", opened_at)


def _shorten(text: str, limit: int = 400) -> str:
    """``repr`` of ``text``, cut to ``limit`` characters so a rambling model output keeps errors readable."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def parse_mr(text: str) -> MeaningRepresentation:
    """Parse ``function(attr[value], ...)``; surrounding whitespace is ignored.

    Raises :class:`MRParseError` (a ``ValueError``) naming the problem and its 1-based column for empty
    text, a missing function or attribute name, a missing ``(`` or ``)``, an unclosed ``[``, a missing
    comma between slots, or text after the closing ``)``. ``function()`` (no slots) parses.
    """
    if not text.strip():
        raise MRParseError("empty meaning representation")
    cursor = _Cursor(text)
    function = cursor.name("a function name")
    opened_at = cursor.expect("(", "expected '(' after the function name")
    slots = _parse_slots(cursor, opened_at)
    if cursor.peek():
        raise cursor.error("unexpected text after the closing ')'")
    return MeaningRepresentation(function, slots)


def _parse_slots(cursor: _Cursor, opened_at: int) -> tuple[tuple[str, str], ...]:
    slots: list[tuple[str, str]] = []
    if cursor.peek() == ")":
        cursor.pos += 1
        return ()
    while True:
        slots.append(_parse_slot(cursor))
        following = cursor.peek()
        if following == "":
            raise cursor.unclosed("parentheses", "(", opened_at)
        if following not in (",", ")"):
            raise cursor.error("expected ',' or ')' after a slot")
        cursor.pos += 1
        if following == ")":
            return tuple(slots)


def _parse_slot(cursor: _Cursor) -> tuple[str, str]:
    attribute = cursor.name("an attribute name")
    opened_at = cursor.expect("[", f"expected '[' after the attribute name {attribute!r}")
    return attribute, cursor.bracketed_value(opened_at)


def is_valid_mr(mr: MeaningRepresentation | str) -> bool:
    """True when the function is one of ``VIGGO_FUNCTIONS``, every attribute is one of
    ``VIGGO_ATTRIBUTES``, and no attribute appears twice. A string is parsed first (unparseable: False).
    """
    if isinstance(mr, str):
        try:
            mr = parse_mr(mr)
        except MRParseError:
            return False
    attributes = mr.attributes
    known = mr.function in _KNOWN_FUNCTIONS and _KNOWN_ATTRIBUTES.issuperset(attributes)
    return known and max(Counter(attributes).values(), default=1) == 1

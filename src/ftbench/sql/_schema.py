"""Tables and columns of an example, read from its ``CREATE TABLE`` context.

Contexts are hand-made and loose: a table can appear twice with different columns, and the gold query
can use columns the context omits. Names are matched case-insensitively, as sqlite does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_CREATE = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>\"[^\"]+\"|`[^`]+`|\[[^\]]+\]|[\w.$]+)"
                     r"\s*\((?P<body>.*)\)\s*$", re.IGNORECASE | re.DOTALL)
_COLUMN_CONSTRAINT = re.compile(r"\s(?:PRIMARY|NOT|NULL|UNIQUE|DEFAULT|REFERENCES|CHECK|COLLATE|CONSTRAINT|"
                                r"GENERATED|AS)\b", re.IGNORECASE)
_TABLE_CONSTRAINTS = {"PRIMARY", "FOREIGN", "UNIQUE", "CONSTRAINT", "CHECK"}
_NUMERIC_TYPES = ("INT", "REAL", "FLOA", "DOUB", "NUM", "DEC", "BOOL")


@dataclass
class Table:
    """One table: its name as first written and its columns, ``lower name -> (name, declared type)``."""

    name: str
    columns: dict[str, tuple[str, str]] = field(default_factory=dict)

    def add(self, column: str, declared: str = "") -> None:
        self.columns.setdefault(column.lower(), (column, declared))

    def has(self, column: str) -> bool:
        return column.lower() in self.columns


@dataclass
class Schema:
    """All tables of one example, ``lower name -> Table``, in the order they were first seen."""

    tables: dict[str, Table] = field(default_factory=dict)

    def table(self, name: str) -> Table:
        """The table called ``name``, created empty when it is new."""
        return self.tables.setdefault(name.lower(), Table(name))

    def find(self, name: str) -> Table | None:
        return self.tables.get(name.lower())


def parse_context(context: str) -> Schema:
    """Merge every ``CREATE TABLE`` of ``context`` into one schema (repeated tables are unioned)."""
    schema = Schema()
    for statement in context.split(";"):
        match = _CREATE.search(statement.strip())
        if match is None:
            continue
        table = schema.table(_unquote(match["name"]))
        for definition in _split_top_level(match["body"]):
            _add_column(table, definition)
    return schema


def declared_numeric(declared: str) -> bool:
    """sqlite's affinity rules, roughly: INT, REAL, FLOAT, DOUBLE, NUMERIC, DECIMAL, BOOLEAN are numbers."""
    upper = declared.upper()
    return any(marker in upper for marker in _NUMERIC_TYPES) and "CHAR" not in upper


def _add_column(table: Table, definition: str) -> None:
    words = definition.split(None, 1)
    if not words or words[0].upper() in _TABLE_CONSTRAINTS:
        return
    declared = _COLUMN_CONSTRAINT.split(words[1], maxsplit=1)[0].strip() if len(words) > 1 else ""
    table.add(_unquote(words[0]), declared)


def _split_top_level(body: str) -> list[str]:
    """Split on commas outside parentheses, so ``DECIMAL(10, 2)`` stays one type."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(body):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(body[start:index].strip())
            start = index + 1
    parts.append(body[start:].strip())
    return [part for part in parts if part]


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] + name[-1] in ('""', "``", "[]"):
        return name[1:-1]
    return name

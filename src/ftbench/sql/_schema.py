"""Tables, columns and constraints of an example, read from its ``CREATE TABLE`` context.

Contexts are hand-made and loose: a table can appear twice with different columns, and the gold query
can use columns the context omits. Names are matched case-insensitively, as sqlite does. Declared
constraints (PRIMARY KEY, UNIQUE, NOT NULL, REFERENCES / FOREIGN KEY) are kept: a real database's own
schema is read with the same parser (test-suite mode).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

#: A name as sqlite accepts it: double-quoted, backquoted, bracketed, single-quoted, or bare.
_QUOTED_NAME = r"\"[^\"]+\"|`[^`]+`|\[[^\]]+\]|'[^']+'"
_NAME = rf"(?:{_QUOTED_NAME}|[\w$]+)"
_CREATE = re.compile(rf"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>{_QUOTED_NAME}|[\w.$]+)"
                     r"\s*\((?P<body>.*)\)\s*$", re.IGNORECASE | re.DOTALL)
_COLUMN_NAME = re.compile(rf"\s*(?P<name>{_NAME})\s*(?P<rest>.*)$", re.DOTALL)
_COLUMN_CONSTRAINT = re.compile(r"\s(?:PRIMARY|NOT|NULL|UNIQUE|DEFAULT|REFERENCES|CHECK|COLLATE|CONSTRAINT|"
                                r"GENERATED|AS)\b", re.IGNORECASE)
_TABLE_CONSTRAINTS = {"PRIMARY", "FOREIGN", "UNIQUE", "CONSTRAINT", "CHECK"}
_REFERENCES = re.compile(rf"\bREFERENCES\s+(?P<table>{_NAME})\s*(?:\((?P<columns>[^)]*)\))?", re.IGNORECASE)
_KEY_LIST = re.compile(r"^(?:CONSTRAINT\s+\S+\s+)?(?P<kind>PRIMARY\s+KEY|UNIQUE|FOREIGN\s+KEY)\s*"
                       r"\((?P<columns>[^)]*)\)", re.IGNORECASE)
_NUMERIC_TYPES = ("INT", "REAL", "FLOA", "DOUB", "NUM", "DEC", "BOOL")


@dataclass
class Table:
    """One table: its name as first written, its columns ``lower name -> (name, declared type)``, and
    its constraints (lower column names throughout)."""

    name: str
    columns: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: Sets of columns whose values are unique together (the primary key first, when declared).
    unique: list[tuple[str, ...]] = field(default_factory=list)
    primary_key: tuple[str, ...] = ()
    not_null: set[str] = field(default_factory=set)
    #: ``column -> (lower parent table, lower parent column)``; the parent column may be unnamed ("").
    references: dict[str, tuple[str, str]] = field(default_factory=dict)

    def add(self, column: str, declared: str = "") -> None:
        self.columns.setdefault(column.lower(), (column, declared))

    def has(self, column: str) -> bool:
        return column.lower() in self.columns

    def copy(self) -> Table:
        """A copy whose columns and constraints can change without touching this table."""
        return Table(self.name, dict(self.columns), list(self.unique), self.primary_key, set(self.not_null),
                     dict(self.references))


@dataclass
class Schema:
    """All tables of one example, ``lower name -> Table``, in the order they were first seen."""

    tables: dict[str, Table] = field(default_factory=dict)

    def table(self, name: str) -> Table:
        """The table called ``name``, created empty when it is new."""
        return self.tables.setdefault(name.lower(), Table(name))

    def find(self, name: str) -> Table | None:
        return self.tables.get(name.lower())

    def copy(self) -> Schema:
        """A copy that can gain tables and columns without touching this schema (``copy.deepcopy``,
        at a tenth of the cost: a prediction's plan starts from the gold's cached schema)."""
        return Schema({lower: table.copy() for lower, table in self.tables.items()})


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


@lru_cache(maxsize=256)  # asked per column of every plan; a context declares few distinct types
def declared_numeric(declared: str) -> bool:
    """sqlite's affinity rules, roughly: INT, REAL, FLOAT, DOUBLE, NUMERIC, DECIMAL, BOOLEAN are numbers."""
    upper = declared.upper()
    return any(marker in upper for marker in _NUMERIC_TYPES) and "CHAR" not in upper


def _add_column(table: Table, definition: str) -> None:
    words = definition.split(None, 1)
    if not words:
        return
    if words[0].upper() in _TABLE_CONSTRAINTS:
        _add_table_constraint(table, definition)
        return
    match = _COLUMN_NAME.match(definition)
    if match is None:
        return
    rest = match["rest"]
    declared = _COLUMN_CONSTRAINT.split(" " + rest, maxsplit=1)[0].strip()
    column = _unquote(match["name"])
    table.add(column, declared)
    _add_column_constraints(table, column.lower(), rest[len(declared):].upper(), rest)


def _add_column_constraints(table: Table, column: str, upper: str, text: str) -> None:
    if "PRIMARY KEY" in upper:
        _set_primary_key(table, (column,))
    if re.search(r"\bUNIQUE\b", upper):
        table.unique.append((column,))
    if "NOT NULL" in upper:
        table.not_null.add(column)
    reference = _REFERENCES.search(text)
    if reference is not None:
        table.references[column] = _reference_target(reference, 0)


def _add_table_constraint(table: Table, definition: str) -> None:
    match = _KEY_LIST.search(definition)
    if match is None:
        return
    columns = tuple(_unquote(name.strip()).lower() for name in match["columns"].split(",") if name.strip())
    kind = match["kind"].upper()
    if kind.startswith("PRIMARY"):
        _set_primary_key(table, columns)
    elif kind == "UNIQUE":
        table.unique.append(columns)
    elif (reference := _REFERENCES.search(definition[match.end():])) is not None:
        for index, column in enumerate(columns):
            table.references[column] = _reference_target(reference, index)


def _set_primary_key(table: Table, columns: tuple[str, ...]) -> None:
    table.primary_key = columns
    table.unique.insert(0, columns)
    table.not_null.update(columns)  # as the test-suite databases treat them (sqlite itself is laxer)


def _reference_target(reference: re.Match[str], index: int) -> tuple[str, str]:
    parents = [_unquote(name.strip()).lower() for name in (reference["columns"] or "").split(",") if name.strip()]
    return _unquote(reference["table"]).lower(), parents[index] if index < len(parents) else ""


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
    if len(name) >= 2 and name[0] + name[-1] in ('""', "``", "[]", "''"):
        return name[1:-1]
    return name

"""Test-suite databases: fuzzed databases that keep a real database's schema (Zhong, Yu & Klein 2020).

Each fuzzed database is created with the real database's own ``CREATE TABLE`` statements (declared
types, hence sqlite's affinities) and filled with rows that satisfy its primary keys, UNIQUE, NOT NULL
and foreign keys. Values come from the real columns plus the literals the gold and the prediction
compare each column with, and their neighbours; the literals themselves are drawn often, so filters
keep rows. Few values per column, so duplicates and ties occur wherever the schema allows them. A
column holds NULLs in some databases when the real one holds NULLs there (Spider declares almost no
NOT NULL, but its data says which columns are really optional). Some databases have empty tables.

Databases are seeded by (database file, literals, seed, index) and cached as ``serialize()`` bytes: the
predictions of one question that use its literals share the gold's databases (and the gold's results).
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ftbench.sql._cache import bytes_cached
from ftbench.sql._facts import ColumnRef, Literal, QueryFacts, Value, analyze
from ftbench.sql._numbers import as_number
from ftbench.sql._schema import Schema, Table, declared_numeric, parse_context

#: Bytes of fuzzed databases a worker keeps between rows.
FUZZED_CACHE_BYTES = 64_000_000
#: Distinct values read from each real column (a sample of wide columns).
_REAL_VALUES = 200
_NULL_RATES = (0.0, 0.15, 0.0, 0.3, 0.05, 0.0)
_ROW_RANGES = ((4, 10), (2, 5), (8, 18), (3, 8))
_INSERT_ATTEMPTS = 4
#: Largest count bound a crowded database is built for (rows per table).
_MAX_CROWD = 60


@dataclass(frozen=True)
class RealSchema:
    """What a fuzzed database keeps of a real one: its statements, tables in insertion order, values."""

    creates: tuple[str, ...]
    #: Tables (lower names) parents first, so a child's foreign keys can point at inserted rows.
    order: tuple[str, ...]
    values: dict[ColumnRef, tuple[Value, ...]]
    #: Columns whose real values include NULL.
    nullable: frozenset[ColumnRef]
    schema: Schema


@dataclass(frozen=True)
class SuitePlan:
    """One question's fuzzed databases: the real file they copy, and the literals they must contain."""

    path: Path
    #: Per column: values to include (literals and their neighbours) ...
    literals: tuple[tuple[ColumnRef, tuple[Value, ...]], ...]
    #: ... and the literals themselves, drawn often.
    exact: tuple[tuple[ColumnRef, tuple[Value, ...]], ...] = ()
    #: Columns a query joins or lines up in a set operation, ``(column, partner)``: each also draws
    #: some of its partner's real values, so the two meet.
    shared: tuple[tuple[ColumnRef, ColumnRef], ...] = ()
    #: Numbers a query compares a count with (``HAVING count(*) > 10``): some databases are crowded, all
    #: rows of a table alike and one less, as many or one more than such a number, so ``>`` and ``>=`` differ.
    count_bounds: tuple[int, ...] = ()


def suite_plan(path: Path, gold: str, prediction: str) -> SuitePlan:
    """The plan for judging ``prediction`` against ``gold`` on fuzzed copies of ``path``."""
    schema = real_schema(path).schema
    found: dict[ColumnRef, list[Value]] = {}
    exact: dict[ColumnRef, list[Value]] = {}
    pairs: list[tuple[ColumnRef, ColumnRef]] = []
    bounds: set[int] = set()
    for facts in (analyze(gold, schema), analyze(prediction, schema)):
        _harvest(facts, schema, found, exact)
        pairs.extend(facts.joins)
        bounds.update(bound for bound in facts.count_bounds if bound <= _MAX_CROWD)
    for values in (found, exact):
        for (table, column), literals in list(values.items()):
            parent = schema.tables[table].references.get(column)
            if parent is not None:  # a child may only hold its parent's values: the parent gets the literal
                values.setdefault(parent, []).extend(literals)
    shared = tuple(sorted({pair for left, right in pairs for pair in ((left, right), (right, left))
                           if _known(schema, left) and _known(schema, right)}))
    return SuitePlan(path, _frozen(found), _frozen(exact), shared, tuple(sorted(bounds)))


def _known(schema: Schema, ref: ColumnRef) -> bool:
    table = schema.find(ref[0])
    return table is not None and table.has(ref[1])


def _frozen(values: dict[ColumnRef, list[Value]]) -> tuple[tuple[ColumnRef, tuple[Value, ...]], ...]:
    return tuple(sorted((ref, tuple(dict.fromkeys(found))) for ref, found in values.items()))


def _harvest(facts: QueryFacts, schema: Schema, found: dict[ColumnRef, list[Value]],
             exact: dict[ColumnRef, list[Value]]) -> None:
    for (table, column), literals in facts.literals.items():
        known = schema.find(table)
        if known is not None and known.has(column):
            numeric = declared_numeric(known.columns[column][1])
            found.setdefault((table, column), []).extend(
                value for literal in literals for value in _neighbours(literal, numeric))
            exact.setdefault((table, column), []).extend(
                _neighbours(literal, numeric)[0] for literal in literals if literal.op != "like")


def _neighbours(literal: Literal, numeric: bool) -> list[Value]:
    """The literal, and values just around it, so ``<`` and ``<=`` (or two LIKE patterns) differ."""
    value = literal.value
    number = as_number(value)
    if number is not None and (numeric or isinstance(value, int | float)):
        step: int | float = 1 if isinstance(number, int) else 0.5
        return [number, number - step, number + step]
    text = str(value)
    if literal.op == "like":
        bare = text.replace("%", "").replace("_", "")
        return [text.replace("%", "").replace("_", "x"), text.replace("%", "zq").replace("_", "y"), bare.upper()]
    return [text, text.lower(), text.upper()] if text else [text]


@lru_cache(maxsize=64)
def real_schema(path: Path) -> RealSchema:
    """The schema and column values of a real database file, read once per process."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        creates = tuple(sql for (sql,) in connection.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND sql IS NOT NULL "
            "ORDER BY rowid"))
        schema = parse_context(";\n".join(creates))
        values = {(lower, column): _column_values(connection, table.name, table.columns[column][0])
                  for lower, table in schema.tables.items() for column in table.columns}
        nullable = frozenset((lower, column) for lower, table in schema.tables.items() for column in table.columns
                             if column not in table.not_null and _holds_null(connection, table, column))
    finally:
        connection.close()
    return RealSchema(creates, _parents_first(schema), values, nullable, schema)


def _holds_null(connection: sqlite3.Connection, table: Table, column: str) -> bool:
    query = f"SELECT 1 FROM {_quote(table.name)} WHERE {_quote(table.columns[column][0])} IS NULL LIMIT 1"
    try:
        return connection.execute(query).fetchone() is not None
    except sqlite3.Error:
        return False


def _column_values(connection: sqlite3.Connection, table: str, column: str) -> tuple[Value, ...]:
    quoted_table, quoted_column = _quote(table), _quote(column)
    try:
        rows = connection.execute(f"SELECT DISTINCT {quoted_column} FROM {quoted_table} "
                                  f"WHERE {quoted_column} IS NOT NULL LIMIT {_REAL_VALUES}").fetchall()
    except sqlite3.Error:
        return ()
    return tuple(value for (value,) in rows if isinstance(value, int | float | str))


def _parents_first(schema: Schema) -> tuple[str, ...]:
    """Tables ordered so that referenced tables come before the tables referencing them (cycles: as declared)."""
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered or name in visiting or name not in schema.tables:
            return
        visiting.add(name)
        for parent, _column in schema.tables[name].references.values():
            if parent != name:
                visit(parent)
        ordered.append(name)

    for name in schema.tables:
        visit(name)
    return tuple(ordered)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@bytes_cached(FUZZED_CACHE_BYTES, len)
def build_fuzzed(plan: SuitePlan, seed: int, index: int) -> bytes:
    """The ``index``-th fuzzed database of ``plan`` for ``seed``, as sqlite ``serialize()`` bytes."""
    real = real_schema(plan.path)
    rng = random.Random(_stable_seed(plan, seed, index))
    shape = _shape(rng, index, plan)
    connection = sqlite3.connect(":memory:")
    try:
        for create in real.creates:
            connection.execute(create)
        for name in real.order:
            _fill(connection, rng, real, real.schema.tables[name], plan, shape)
        connection.execute("PRAGMA user_version = 1")  # a database without rows serializes too
        connection.commit()
        return connection.serialize()
    finally:
        connection.close()


def _stable_seed(plan: SuitePlan, seed: int, index: int) -> int:
    crowds = (plan.count_bounds,) if plan.count_bounds else ()
    text = repr((plan.path.name, plan.literals, plan.exact, plan.shared, *crowds, seed, index))
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class _Shape:
    """How one fuzzed database is drawn: table sizes, NULL rate (of optional columns), literal rate."""

    rows: tuple[int, int]
    null_rate: float
    literal_rate: float
    #: Chance that a table is left empty.
    empty_rate: float
    #: All rows of a table alike but for their keys (see :attr:`SuitePlan.count_bounds`).
    crowded: bool = False


def _shape(rng: random.Random, index: int, plan: SuitePlan) -> _Shape:
    if plan.count_bounds and index % 6 == 5:
        round_ = index // 6
        rows = plan.count_bounds[round_ % len(plan.count_bounds)] + round_ % 3 - 1
        return _Shape((rows, rows), 0.0, 1.0, 0.0, crowded=True)
    return _Shape(_ROW_RANGES[index % len(_ROW_RANGES)], _NULL_RATES[index % len(_NULL_RATES)],
                  rng.uniform(0.2, 0.6), 0.3 if index % 5 == 4 else 0.0)


def _fill(connection: sqlite3.Connection, rng: random.Random, real: RealSchema, table: Table,
          plan: SuitePlan, shape: _Shape) -> None:
    """Insert rows into one table; a row that breaks a key is retried with fresh draws, then dropped."""
    columns = list(table.columns)
    draws = {column: _column(connection, rng, real, table, column, plan) for column in columns}
    if any(draw.choices == () and column in table.references for column, draw in draws.items()):
        return  # a parent without rows: no row here can satisfy its foreign key
    names = ", ".join(_quote(table.columns[column][0]) for column in columns)
    statement = f"INSERT INTO {_quote(table.name)} ({names}) VALUES ({', '.join('?' * len(columns))})"
    unique = {key[0] for key in table.unique if len(key) == 1}
    if shape.crowded:  # rows alike must still differ in one column of every composite key
        unique |= {_varying_column(key, table) for key in table.unique if len(key) > 1}
    unused = {column: _key_order(rng, draws[column]) for column in unique if column in draws}
    count = 0 if rng.random() < shape.empty_rate else rng.randint(*shape.rows)
    for column in unused.keys() & table.references.keys():  # a unique reference: one row per parent value
        count = min(count, len(unused[column]))
    for _row in range(count):
        for _attempt in range(_INSERT_ATTEMPTS):
            row = [_cell(rng, draws[column], unused.get(column), shape) for column in columns]
            try:
                connection.execute(statement, row)
                break
            except sqlite3.Error:  # a key repeated (composite key), a type an INTEGER PRIMARY KEY refuses
                continue


def _varying_column(key: tuple[str, ...], table: Table) -> str:
    """The column of a composite key that tells alike rows apart: its last one that references nothing."""
    plain = [column for column in key if column not in table.references]
    return (plain or list(key))[-1]


@dataclass(frozen=True)
class _Column:
    """What one column of one fuzzed table is drawn from."""

    choices: tuple[Value, ...]
    exact: tuple[Value, ...]
    nullable: bool


def _column(connection: sqlite3.Connection, rng: random.Random, real: RealSchema, table: Table, column: str,
            plan: SuitePlan) -> _Column:
    ref = (table.name.lower(), column)
    exact = dict(plan.exact).get(ref, ())
    choices = _choices(connection, rng, real, table, column, plan)
    if column in table.references:
        exact = tuple(value for value in exact if value in choices)  # only values the parent holds
    return _Column(choices, exact, ref in real.nullable)


def _key_order(rng: random.Random, column: _Column) -> list[Value]:
    """A unique column's values in the order they are used (from the end): literals first."""
    rest = [value for value in column.choices if value not in column.exact]
    rng.shuffle(rest)
    return rest + list(column.exact)


def _choices(connection: sqlite3.Connection, rng: random.Random, real: RealSchema, table: Table, column: str,
             plan: SuitePlan) -> tuple[Value, ...]:
    """The values this database draws a column from: a parent's inserted keys for a foreign key, else a
    few real values, some of its query partners' values, and the queries' literals (few, so values
    repeat where the schema allows)."""
    parent = table.references.get(column)
    if parent is not None and (present := _parent_values(connection, real.schema, parent)) is not None:
        return present
    ref = (table.name.lower(), column)
    sample = _sample(rng, real.values.get(ref, ()))
    for partner in (right for left, right in plan.shared if left == ref):
        sample.extend(_sample(rng, real.values.get(partner, ()), 2))
    extra = list(dict(plan.literals).get(ref, ()))
    if not sample and not extra:
        sample = _fresh(rng, declared_numeric(table.columns[column][1]), 4)
    return tuple(dict.fromkeys([*sample, *extra]))


def _sample(rng: random.Random, values: tuple[Value, ...], most: int = 6) -> list[Value]:
    return rng.sample(values, min(len(values), rng.randint(min(2, most), most))) if values else []


def _parent_values(connection: sqlite3.Connection, schema: Schema, parent: tuple[str, str]) -> tuple[Value, ...] | None:
    table = schema.find(parent[0])
    if table is None:
        return None
    column = parent[1] or (table.primary_key[0] if len(table.primary_key) == 1 else "")
    if not table.has(column):
        return None
    query = f"SELECT DISTINCT {_quote(table.columns[column][0])} FROM {_quote(table.name)}"
    rows = connection.execute(query).fetchall()
    return tuple(value for (value,) in rows if value is not None)


def _cell(rng: random.Random, column: _Column, unused: list[Value] | None, shape: _Shape) -> Value | None:
    if column.nullable and rng.random() < shape.null_rate:
        return None
    if unused is not None:  # a unique column: each value once, fresh ones when the choices run out
        numeric = isinstance(column.choices[0], int | float) if column.choices else True
        return unused.pop() if unused else _fresh(rng, numeric, 1)[0]
    if shape.crowded:
        return column.exact[0] if column.exact else column.choices[0] if column.choices else None
    if column.exact and rng.random() < shape.literal_rate:
        return rng.choice(column.exact)
    return rng.choice(column.choices) if column.choices else None


def _fresh(rng: random.Random, numeric: bool, count: int) -> list[Value]:
    if numeric:
        return [rng.randint(1000, 9999) for _ in range(count)]
    return ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 8))) for _ in range(count)]

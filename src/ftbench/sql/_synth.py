"""Synthesized databases: a plan of tables, column kinds and harvested values per example, and
seeded random databases drawn from it (test-suite style), built with sqlite-utils.

The plan depends on the context, the gold, and the prediction's literals and joins (so a prediction
that compares with another constant meets rows that tell the two apart). The drawn rows are cached per
(plan, seed, index): judging many predictions of one example draws each database once.
"""

from __future__ import annotations

import hashlib
import random
import re
import sqlite3
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from typing import NamedTuple

from sqlite_utils import Database

from ftbench.sql._cache import ByteBoundedCache
from ftbench.sql._facts import ColumnRef, Literal, QueryFacts, Value, analyze
from ftbench.sql._numbers import as_number
from ftbench.sql._schema import Schema, declared_numeric, parse_context

_AFFINITY_TYPES: dict[str, type] = {"INTEGER": int, "REAL": float, "TEXT": str}
#: Per database index: chance of a NULL cell. Index 0 has none, so a plain gold is never starved.
_NULL_RATES = (0.0, 0.12, 0.05, 0.25)
_MAX_ROWS_PER_TABLE = 40
#: The column names a query writes after a table or alias (``T1.name``, ``t."Name"``), read without parsing.
_QUALIFIED_NAME = re.compile(r"\w\s*\.\s*[\"`\[]?([A-Za-z_]\w*)")
#: Bytes of synthesized databases' rows a worker keeps between rows.
DATABASE_CACHE_BYTES = 128_000_000
_LETTERS = string.ascii_lowercase


@dataclass(frozen=True)
class ColumnPlan:
    """One column: its name, the affinity it is created with, and the value pool it draws from."""

    name: str
    affinity: str
    pool: str
    #: Drawn without repeats and never NULL, like a primary key (see :func:`_key_columns`).
    unique: bool = False
    #: Never NULL: every column but those the gold tests with IS NULL (real data rarely holds NULLs,
    #: and a reader of the context has no reason to expect them elsewhere).
    not_null: bool = False
    #: ``(table, column)`` of the key this column references: its values are drawn from that column's
    #: (see :func:`_references`), or NULL.
    parent: tuple[str, str] | None = None


@dataclass(frozen=True)
class PoolPlan:
    """Values shared by the columns of one pool (a column, or columns joined with each other)."""

    key: str
    affinity: str
    literals: tuple[Value, ...]


@dataclass(frozen=True)
class DataPlan:
    """Everything needed to draw databases for one example; hashable, so it keys the caches."""

    tables: tuple[tuple[str, tuple[ColumnPlan, ...]], ...]
    pools: tuple[PoolPlan, ...]
    loose: tuple[Value, ...]
    min_rows: int
    count_bounds: tuple[int, ...] = ()

    # A plan keys several caches and is looked up for every database of every row: its hash and its
    # text are computed once (a dataclass recomputes them, walking every column, at each lookup).
    def __hash__(self) -> int:
        return self._hash

    @cached_property
    def _hash(self) -> int:
        return hash((self.tables, self.pools, self.loose, self.min_rows, self.count_bounds))

    @cached_property
    def text(self) -> str:
        """``repr(self)``, once."""
        return repr(self)


@dataclass(frozen=True)
class GoldAnalysis:
    """The part of a plan that depends on the context and the gold only (cached across predictions).
    ``schema`` is shared by every user of the cache entry: copy it before changing it."""

    schema: Schema
    facts: QueryFacts


Hints = tuple[tuple[str, str], ...]


def make_plan(context: str, gold: str, prediction: str) -> DataPlan:
    """The plan for judging ``prediction`` against ``gold``.

    Names the context omits are added: those the gold uses, and those the prediction uses (systems
    that saw the full schema write them); a column the prediction qualifies with its table tells on
    which table the gold's unqualified use of the same, unknown, name belongs."""
    analysis = _analyze_gold(context, gold, _placement_hints(context, prediction))
    schema = analysis.schema.copy()
    predicted = analyze(prediction, schema)
    gold_names = {(table, column) for table in analysis.facts.tables for column in analysis.facts.unqualified}
    _add_missing(schema, _without_typos(predicted, schema), skip=gold_names)
    lookups = frozenset(schema.tables) - frozenset(analysis.schema.tables)
    return _interned(_plan(schema, analysis.facts, predicted, lookups))


@lru_cache(maxsize=1024)
def _interned(plan: DataPlan) -> DataPlan:
    """The first of equal plans (the predictions of one example mostly share theirs): each cache keyed
    by a plan then finds it by identity, instead of comparing every column of two equal plans."""
    return plan


def _without_typos(facts: QueryFacts, schema: Schema) -> QueryFacts:
    """The prediction's facts minus names one letter or so away from a known one (``nme`` for
    ``name``, ``singers`` for ``singer``): those are typos, left for sqlite to reject."""
    tables = {lower: name for lower, name in facts.tables.items()
              if schema.find(lower) is not None or not _near_miss(lower, set(schema.tables))}
    columns = {ref: name for ref, name in facts.columns.items() if ref[0] in tables and (
        (table := schema.find(ref[0])) is None or table.has(ref[1]) or not _near_miss(ref[1], set(table.columns)))}
    return replace(facts, tables=tables, columns=columns)


def _near_miss(name: str, known: set[str]) -> bool:
    return any(_edits(name, other) <= (2 if len(name) >= 8 else 1) for other in known if other != name)


def _edits(one: str, other: str) -> int:
    """Levenshtein distance (names are short)."""
    previous = list(range(len(other) + 1))
    for i, char in enumerate(one, start=1):
        current = [i]
        for j, other_char in enumerate(other, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other_char)))
        previous = current
    return previous[-1]


def build_database(plan: DataPlan, seed: int, index: int, dense: bool = False) -> bytes:
    """The ``index``-th database of ``plan`` for ``seed``, filled from scratch, as sqlite ``serialize()``
    bytes (the judge loads the same rows into a connection it keeps: see :func:`load_rows`)."""
    connection = _filled_database(plan, seed, index, dense)
    try:
        return connection.serialize()
    finally:
        connection.close()


def drawn_rows(plan: DataPlan, seed: int, index: int, dense: bool = False) -> dict[str, list[DrawnRow]]:
    """The rows of the ``index``-th database of ``plan`` for ``seed``, by table (the database of
    :func:`build_database`), kept between rows: callers must not change them."""
    key = (plan, seed, index, dense)
    found = ROWS.get(key)
    if found is not None:
        return found[0]
    drawn = _drawn_rows(plan, seed, index, dense)
    ROWS.put(key, drawn)
    return drawn


def load_rows(connection: sqlite3.Connection, plan: DataPlan, drawn: dict[str, list[DrawnRow]]) -> None:
    """Replace the rows of every table of ``plan`` in ``connection`` (which holds its tables) with ``drawn``:
    the database of :func:`build_database`, the same rows with the same rowids, in a connection whose
    prepared statements stay valid (the tables do not change)."""
    for name, columns in plan.tables:
        quoted = name.replace('"', '""')
        connection.execute(f'DELETE FROM "{quoted}"')
        marks = ", ".join("?" * len(columns))
        connection.executemany(f'INSERT INTO "{quoted}" VALUES ({marks})', drawn[name])
    connection.commit()


def _rows_bytes(drawn: dict[str, list[DrawnRow]]) -> int:
    """About the memory drawn rows hold: 64 bytes a row, 40 a value (small: the cache bounds many of them)."""
    return 200 + sum(64 * len(rows) + 40 * sum(map(len, rows)) for rows in drawn.values())


#: Drawn rows of synthesized databases, by ``(plan, seed, index, dense)``.
ROWS: ByteBoundedCache[dict[str, list[DrawnRow]]] = ByteBoundedCache(DATABASE_CACHE_BYTES, _rows_bytes)


@lru_cache(maxsize=512)
def _analyze_gold(context: str, gold: str, hints: Hints) -> GoldAnalysis:
    schema = _context_names(context)[0].copy()
    for table, column in hints:
        schema.table(table).add(column)
    facts = analyze(gold, schema)
    _add_missing(schema, facts)
    return GoldAnalysis(schema, facts)


@lru_cache(maxsize=64)
def _placement_hints(context: str, prediction: str) -> Hints:
    """Columns the prediction qualifies with a context table, whose name no context table has."""
    schema, names = _context_names(context)
    if {name.lower() for name in _QUALIFIED_NAME.findall(prediction)} <= names:
        return ()  # every column written with a table is one the context knows: nothing to place
    facts = analyze(prediction, schema)
    return tuple(sorted((schema.tables[table].name, facts.columns[(table, column)]) for table, column in facts.qualified
                        if column not in names and table in schema.tables))


@lru_cache(maxsize=64)
def _context_names(context: str) -> tuple[Schema, frozenset[str]]:
    """The context's schema (shared: never change it) and the lower names of all its columns."""
    schema = parse_context(context)
    return schema, frozenset(column for table in schema.tables.values() for column in table.columns)


def _add_missing(schema: Schema, facts: QueryFacts, skip: set[ColumnRef] | None = None) -> None:
    """Give a query every table and column it uses, even those the context forgot (except ``skip``: a
    table the gold reads does not get a column the gold names unqualified, which would make it ambiguous)."""
    for lower, name in facts.tables.items():
        schema.table(name if schema.find(lower) is None else lower)
    for (table, column), name in facts.columns.items():
        if (table, column) not in (skip or set()) or schema.table(table).has(column):
            schema.table(table).add(name)
    for known in schema.tables.values():
        if not known.columns:
            known.add("id", "INTEGER")


def _plan(schema: Schema, gold: QueryFacts, prediction: QueryFacts,
          lookups: frozenset[str] = frozenset()) -> DataPlan:
    known = {(t, c) for t, table in schema.tables.items() for c in table.columns}
    keys = _key_columns(schema)
    parents = _references(schema, keys, gold, prediction)
    _join_lookups(parents, keys, lookups, prediction)
    pools = _pool_of_columns(known, list(parents.items()), gold, prediction)
    literals = _literals_by_pool(pools, gold, prediction)
    affinities = _affinities(schema, pools, literals, gold.numeric | prediction.numeric)
    keys |= _grouped_keys(pools, gold, prediction)
    tables = tuple(
        (table.name, tuple(ColumnPlan(name, affinities[pools[(t, c)]], pools[(t, c)], (t, c) in keys,
                                      c in table.not_null or (t, c) not in gold.null_tested,
                                      _parent_names(schema, parents.get((t, c))))
                           for c, (name, _declared) in table.columns.items()))
        for t, table in schema.tables.items()
    )
    pool_plans = tuple(PoolPlan(key, affinities[key], _expand(literals.get(key, []), affinities[key]))
                       for key in sorted(set(pools.values())))
    loose = tuple(dict.fromkeys(gold.loose + prediction.loose))
    bounds = tuple(sorted(set(gold.count_bounds + prediction.count_bounds)))
    return DataPlan(tables, pool_plans, loose, max(gold.limits + prediction.limits, default=0), bounds)


def _key_columns(schema: Schema) -> set[ColumnRef]:
    """Columns a reader of the context takes for keys, unique and never NULL as in the real databases:
    those declared PRIMARY KEY or UNIQUE, and in a table without a declared key, a column named like its
    key (``id``, ``singer_id`` or ``singerid`` in ``singer``, ``country_id`` in ``countries``)."""
    keys: set[ColumnRef] = set()
    for name, table in schema.tables.items():
        keys |= {(name, key[0]) for key in table.unique if len(key) == 1 and table.has(key[0])}
        if not table.primary_key:
            keys |= {(name, column) for column in table.columns if _named_like_key(name, column)}
    return keys


def _grouped_keys(pools: dict[ColumnRef, str], gold: QueryFacts, prediction: QueryFacts) -> set[ColumnRef]:
    """The join column of a table whose plain columns a grouped query selects (``SELECT T2.name,
    count(*) FROM T1 JOIN T2 ... GROUP BY T1.x``): the real data makes ``name`` one value per group;
    repeated keys would make it an arbitrary row's."""
    joined = {ref for facts in (gold, prediction) for pair in facts.joins for ref in pair}
    keys: set[ColumnRef] = set()
    grouped_pools = {pools[ref] for ref in gold.grouped if ref in pools}
    for table, column in gold.selected_in_groups:
        if (table, column) not in gold.grouped:
            keys |= {ref for ref in joined if ref[0] == table and pools.get(ref) in grouped_pools}
    return keys


def _references(schema: Schema, keys: set[ColumnRef], gold: QueryFacts,
                prediction: QueryFacts) -> dict[ColumnRef, ColumnRef]:
    """Foreign keys, ``child -> parent key``: declared ones; a column with the name of another table's
    key (``concert.stadium_id``); a column joined with a key (``model_list.maker = car_makers.id``)."""
    parents = _declared_references(schema)
    by_name: dict[str, ColumnRef] = {}
    for key in sorted(keys):
        by_name.setdefault(key[1], key)
    for name, table in schema.tables.items():
        for column in table.columns:
            named = by_name.get(column)
            if named is not None and named[0] != name and (name, column) not in keys:
                parents.setdefault((name, column), named)
    for left, right in (pair for facts in (gold, prediction) for pair in facts.joins):
        for child, key in ((left, right), (right, left)):
            if key in keys and child not in keys and child[0] != key[0]:
                parents.setdefault(child, key)
    return parents


def _join_lookups(parents: dict[ColumnRef, ColumnRef], keys: set[ColumnRef], lookups: frozenset[str],
                  prediction: QueryFacts) -> None:
    """A table only the prediction names (the context omits it and the gold does not need it), joined
    on a column of the same name that no rule above made a key or a reference
    (``car_names.model = model_list.model``): a lookup the systems that saw the whole schema join
    through. As a foreign key makes it, its column is unique and holds every value of the other: the
    extra join neither drops nor repeats rows. (Key-named columns already decided the direction.)"""
    for left, right in prediction.joins:
        for child, lookup in ((left, right), (right, left)):
            if lookup[0] in lookups and child[0] not in lookups and child[1] == lookup[1] \
                    and not {child, lookup} & keys and child not in parents and lookup not in parents:
                keys.add(lookup)
                parents[child] = lookup


def _declared_references(schema: Schema) -> dict[ColumnRef, ColumnRef]:
    parents: dict[ColumnRef, ColumnRef] = {}
    for name, table in schema.tables.items():
        for column, (parent, parent_column) in table.references.items():
            target = _declared_parent(schema, parent, parent_column)
            if target is not None and table.has(column):
                parents[(name, column)] = target
    return parents


def _declared_parent(schema: Schema, table: str, column: str) -> ColumnRef | None:
    parent = schema.find(table)
    if parent is None:
        return None
    column = column or (parent.primary_key[0] if len(parent.primary_key) == 1 else "")
    return (table, column) if parent.has(column) else None


def _parent_names(schema: Schema, parent: ColumnRef | None) -> tuple[str, str] | None:
    if parent is None:
        return None
    table = schema.tables[parent[0]]
    return table.name, table.columns[parent[1]][0]


def _named_like_key(table: str, column: str) -> bool:
    """``id`` or ``code``; or the table's name, singular or abbreviated, followed by ``id`` or ``code``:
    ``singer_id`` in ``singer``, ``country_id`` in ``countries``, ``StuID`` in ``Student``, ``ContId`` in
    ``continents``, ``template_type_code`` in the lookup table ``Ref_Template_Types``."""
    table = table.lower()
    table = table.removeprefix("ref_") if table.startswith("ref_") else table
    first_word = table.split("_")[0]
    table, column = table.replace("_", ""), column.replace("_", "").lower()
    stem = column.removesuffix("id") if column.endswith("id") else column.removesuffix("code")
    if stem == column:
        return False
    singulars = {table, table.removesuffix("s"), table.removesuffix("es"), table.removesuffix("ies") + "y"}
    abbreviation = 3 <= len(stem) <= 4 and len(stem) < len(first_word) and first_word.startswith(stem)
    return not stem or stem in singulars or abbreviation


def _pool_of_columns(known: set[ColumnRef], references: list[tuple[ColumnRef, ColumnRef]],
                     *facts: QueryFacts) -> dict[ColumnRef, str]:
    """Union-find over columns that are joined (or compared with IN) or reference one another, so joins
    find partners."""
    parent = {ref: ref for ref in sorted(known)}

    def root(ref: ColumnRef) -> ColumnRef:
        while parent[ref] != ref:
            parent[ref] = parent[parent[ref]]
            ref = parent[ref]
        return ref

    for left, right in [*references, *(pair for query in facts for pair in query.joins)]:
        if left in parent and right in parent:
            parent[root(left)] = root(right)
    return {ref: ".".join(root(ref)) for ref in parent}


def _literals_by_pool(pools: dict[ColumnRef, str], *facts: QueryFacts) -> dict[str, list[Literal]]:
    found: dict[str, list[Literal]] = {}
    for query in facts:
        for ref, literals in query.literals.items():
            if ref in pools:
                found.setdefault(pools[ref], []).extend(literals)
    return found


def _affinities(schema: Schema, pools: dict[ColumnRef, str], literals: dict[str, list[Literal]],
                numeric: set[ColumnRef]) -> dict[str, str]:
    """A pool holds numbers when a query uses it as one, or the context declares it numeric and no
    query compares it with a word. Declared VARCHAR columns compared with numbers get a numeric
    affinity, as in the real databases, so that ``>`` compares numbers rather than text."""
    numeric_pools = {pools[ref] for ref in numeric if ref in pools}
    declared = {pools[(t, c)] for t, table in schema.tables.items()
                for c, (_name, kind) in table.columns.items() if declared_numeric(kind)}
    result: dict[str, str] = {}
    for pool in set(pools.values()):
        values = [literal.value for literal in literals.get(pool, [])]
        wordy = any(as_number(value) is None for value in values)
        if pool in numeric_pools or (pool in declared and not wordy):
            floats = any(isinstance(as_number(value), float) for value in values)
            result[pool] = "REAL" if floats else "INTEGER"
        else:
            result[pool] = "TEXT"
    return result


def _expand(literals: list[Literal], affinity: str) -> tuple[Value, ...]:
    """Harvested values plus neighbours just below and above, so ``>`` and ``>=`` pick different rows."""
    values: list[Value] = []
    for literal in literals:
        values.extend(_neighbours(literal, affinity))
    return tuple(values)


def _neighbours(literal: Literal, affinity: str) -> list[Value]:
    number = as_number(literal.value)
    if affinity != "TEXT" and number is not None:
        step: int | float = 1 if isinstance(number, int) else 0.5
        # The value itself twice: equality filters should keep enough rows to tell queries apart.
        return [number, number, number - step, number + step]
    text = str(literal.value)
    if literal.op == "like":
        return _like_examples(text)
    if literal.op == "order" and text:
        return [text, text[:-1] + chr(max(ord(text[-1]) - 1, 32)), text + "a"]
    return [text]


def _like_examples(pattern: str) -> list[Value]:
    """Strings that match a LIKE pattern in different ways, and its bare text."""
    bare = pattern.replace("%", "").replace("_", "")
    return [pattern.replace("%", "").replace("_", "x"), pattern.replace("%", "zq").replace("_", "y"),
            bare.upper(), bare]


def _filled_database(plan: DataPlan, seed: int, index: int, dense: bool) -> sqlite3.Connection:
    """A new in-memory database with the plan's tables (from its empty template) and drawn rows."""
    drawn = _drawn_rows(plan, seed, index, dense)
    connection = sqlite3.connect(":memory:")
    try:
        connection.deserialize(empty_tables(table_statements(plan)))
        load_rows(connection, plan, drawn)
    except BaseException:
        connection.close()
        raise
    return connection


#: A drawn row: a value (or NULL) per column, in the table's order.
DrawnRow = list[Value | None]


def _drawn_rows(plan: DataPlan, seed: int, index: int, dense: bool) -> dict[str, list[DrawnRow]]:
    rng = random.Random(_stable_seed(plan, seed, index))
    shape = _shape(rng, index, dense)
    pools = {pool.key: _draw_pool(rng, pool, shape) for pool in plan.pools}
    draws = _Draws(pools, _private_pools(rng, plan, shape, pools), {pool.key: pool.literals for pool in plan.pools},
                   {pool.key: _fitting(plan.loose, pool.affinity) for pool in plan.pools})
    drawn = {name: _draw_rows(rng, plan, shape, name, columns, draws) for name, columns in plan.tables}
    if index % 8 == 7 and not dense:
        # One database in eight has an empty table: max(x) is a NULL row there, ORDER BY x LIMIT 1 no row.
        drawn[rng.choice(sorted(drawn))] = []
    _keep_references(rng, plan, drawn)
    return drawn


@lru_cache(maxsize=64)
def empty_tables(statements: tuple[str, ...]) -> bytes:
    """The tables of ``statements`` without rows, ``serialize()``d: the databases of a plan start from one
    copy of it instead of running the ``CREATE TABLE`` statements for each, and so do the plans of one
    example that differ only in their values (most of them)."""
    connection = sqlite3.connect(":memory:")
    try:
        for create in statements:
            connection.execute(create)
        connection.execute("PRAGMA user_version = 1")  # writes page 1: a database without tables serializes too
        connection.commit()
        return connection.serialize()
    finally:
        connection.close()


def _keep_references(rng: random.Random, plan: DataPlan, drawn: dict[str, list[DrawnRow]]) -> None:
    """A referencing column holds only values its parent key holds (or NULL), as a foreign key demands."""
    positions = {name: {column.name: position for position, column in enumerate(columns)}
                 for name, columns in plan.tables}
    for name, columns in plan.tables:
        for position, column in enumerate(columns):
            if column.parent is None or column.parent[0] not in drawn:
                continue
            parent_table, parent_column = column.parent
            parent_position = positions[parent_table][parent_column]
            present = [row[parent_position] for row in drawn[parent_table] if row[parent_position] is not None]
            if not present and column.not_null:
                drawn[name] = []  # no row can reference an empty parent
                continue
            allowed = set(present)
            for row in drawn[name]:
                if row[position] is not None and row[position] not in allowed:
                    row[position] = rng.choice(present) if present else None


@lru_cache(maxsize=512)
def table_statements(plan: DataPlan) -> tuple[str, ...]:
    """The plan's ``CREATE TABLE`` statements, written by sqlite-utils (quoting, affinities), once per plan:
    plans with the same statements have databases of the same tables, which can take turns in one connection
    (see :func:`empty_tables`, :func:`load_rows`)."""
    return tuple(_create_statement(name, tuple((c.name, c.affinity) for c in columns)) for name, columns in plan.tables)


@lru_cache(maxsize=1024)
def _create_statement(name: str, columns: tuple[tuple[str, str], ...]) -> str:
    """Once per table and column affinities: the plans of one example mostly share their tables."""
    return _sql_writer().create_table_sql(name, {column: _AFFINITY_TYPES[affinity] for column, affinity in columns})


@lru_cache(maxsize=1)
def _sql_writer() -> Database:
    """One empty in-memory sqlite-utils database, only ever asked to write SQL (it never holds a table):
    opening one per table cost more than writing the statement."""
    return Database(memory=True)


def _private_pools(rng: random.Random, plan: DataPlan, shape: _Shape,
                   pools: dict[str, list[Value]]) -> dict[str, list[Value]]:
    """Joined columns also get values of their own, so some rows find no partner (NOT IN, EXCEPT and
    LEFT JOIN need them); other columns simply reuse their pool."""
    shared = Counter(column.pool for _name, columns in plan.tables for column in columns)
    by_key = {pool.key: pool for pool in plan.pools}
    return {column.name + "\0" + name: _draw_pool(rng, by_key[column.pool], shape)
            if shared[column.pool] > 1 else pools[column.pool]
            for name, columns in plan.tables for column in columns}


@dataclass(frozen=True)
class _Shape:
    """How one database is drawn. Databases differ in size, NULL rate, value variety and how often
    harvested literals appear; ``dense`` ones (drawn when the gold found no rows) are literal-heavy."""

    index: int
    dense: bool
    null_rate: float
    literal_rate: float
    pool_size: tuple[int, int]


def _shape(rng: random.Random, index: int, dense: bool) -> _Shape:
    if dense:
        return _Shape(index, dense, 0.0, rng.uniform(0.7, 0.9), (1, 3))
    pool_size = ((2, 4), (4, 9), (8, 20), (3, 6))[index % 4]
    return _Shape(index, dense, _NULL_RATES[index % len(_NULL_RATES)], rng.uniform(0.3, 0.6), pool_size)


def _stable_seed(plan: DataPlan, seed: int, index: int) -> int:
    """Python's ``hash`` is salted per process; databases must not be."""
    text = f"({plan.text}, {seed!r}, {index!r})"  # repr((plan, seed, index)), without walking the plan again
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "big")


def _draw_pool(rng: random.Random, pool: PoolPlan, shape: _Shape) -> list[Value]:
    """A few random values of the pool's kind: few enough that rows repeat (GROUP BY, DISTINCT)."""
    below = _below(rng)
    smallest, largest = shape.pool_size
    size = smallest + below(largest - smallest + 1)  # rng.randint(*shape.pool_size)
    if pool.affinity == "TEXT":
        draw = rng.random  # size words of _word's draws, without a call per word (the hottest line of synthesis)
        return ["".join([_LETTERS[int(draw() * 26)] for _ in range(3 + below(5))]) for _ in range(size)]
    numbers = [value for value in map(as_number, pool.literals) if value is not None]
    low, high = (int(min(numbers)) - 6, int(max(numbers)) + 6) if numbers else (0, 40)
    if pool.affinity == "REAL":
        return [round(rng.uniform(low, high), 1) for _ in range(size)]
    return [low + below(high - low + 1) for _ in range(size)]  # rng.randint(low, high)


def _below(rng: random.Random) -> Callable[[int], int]:
    """``rng``'s own ``_randbelow``: ``rng.choice(seq)`` is ``seq[below(len(seq))]`` and
    ``rng.randint(a, b)`` is ``a + below(b - a + 1)``, the very same draws without the two or three
    Python calls around them (synthesis makes about a hundred thousand of them per thousand rows)."""
    below: Callable[[int], int] = rng._randbelow  # type: ignore[attr-defined]
    return below


def _word(rng: random.Random) -> str:
    # ``rng.choices(ascii_lowercase, k=rng.randint(3, 7))`` inlined, the same draws (one ``random()`` per
    # letter, ``floor(random() * 26)``); :func:`_draw_pool` spells out the same for whole pools.
    draw = rng.random
    length = 3 + _below(rng)(5)
    return "".join([_LETTERS[int(draw() * 26)] for _ in range(length)])


def _block_sizes(rng: random.Random, plan: DataPlan, shape: _Shape) -> list[int]:
    """How many copies of each drawn row a table gets.

    Mostly one each, in varied numbers of rows (one database in four is large, one tiny); every other
    database has more rows than the largest LIMIT (so LIMIT n and n+1 differ); when a query compares
    a count with N, one database in four holds rows repeated N-1, N and N+1 times (so ``count(*) > N``
    and ``>= N`` differ)."""
    if plan.count_bounds and shape.index % 4 == 1 and not shape.dense:
        sizes = [size for bound in plan.count_bounds[:2] for size in (bound - 1, bound, bound + 1)]
        return sizes + [1] * rng.randint(1, 4)
    if shape.dense:
        return [1] * rng.randint(6, 14)
    if plan.min_rows and shape.index % 2 == 1:
        return [1] * min(plan.min_rows + rng.randint(2, 6), _MAX_ROWS_PER_TABLE)
    low, high = ((5, 16), (5, 16), (16, 30), (1, 4))[shape.index % 4]
    return [1] * rng.randint(low, high)


@dataclass(frozen=True)
class _Draws:
    """Per pool: random values, harvested literals, loose constants of the right kind."""

    pools: dict[str, list[Value]]
    private: dict[str, list[Value]]
    literals: dict[str, tuple[Value, ...]]
    loose: dict[str, tuple[Value, ...]]


def _fitting(values: tuple[Value, ...], affinity: str) -> tuple[Value, ...]:
    return tuple(value for value in values if (as_number(value) is None) == (affinity == "TEXT"))


def _draw_rows(rng: random.Random, plan: DataPlan, shape: _Shape, table: str, columns: tuple[ColumnPlan, ...],
               draws: _Draws) -> list[DrawnRow]:
    # The hottest loop of synthesis: each cell's lookups done once per column, not once per cell.
    cells = [_CellDraws(column.not_null, draws.pools[column.pool], draws.literals[column.pool],
                        draws.loose[column.pool], draws.private[column.name + "\0" + table]) for column in columns]
    rows: list[DrawnRow] = []
    draw_cell = _cell_drawer(rng, shape)
    for copies in _block_sizes(rng, plan, shape):
        row = [draw_cell(cell) for cell in cells]
        if copies == 1:  # most rows: no copy needed
            rows.append(row)
        else:
            rows.extend([row.copy() for _ in range(copies)])
    for position, column in enumerate(columns):
        if column.unique:
            for row, value in zip(rows, _distinct_values(rng, draws, column, len(rows)), strict=True):
                row[position] = value
    return rows


def _distinct_values(rng: random.Random, draws: _Draws, column: ColumnPlan, count: int) -> list[Value]:
    """``count`` different values for a key column: literals and pool values first (so joins and
    filters still find them), then fresh ones."""
    values = list(dict.fromkeys([*draws.literals[column.pool], *draws.pools[column.pool]]))
    rng.shuffle(values)
    fresh = 0
    while len(values) < count:
        fresh += 1
        candidate: Value = f"k{fresh}{_word(rng)}" if column.affinity == "TEXT" else 10_000 + fresh
        if candidate not in values:
            values.append(candidate)
    return values[:count]


class _CellDraws(NamedTuple):
    """What one column's cells draw from (see :class:`_Draws`)."""

    not_null: bool
    pool: list[Value]
    literals: tuple[Value, ...]
    loose: tuple[Value, ...]
    private: list[Value]


def _cell_drawer(rng: random.Random, shape: _Shape) -> Callable[[_CellDraws], Value | None]:
    """One cell's draw for one database: NULL, a literal, a loose constant, a private or a pool value
    (``rng.choice`` spelled out with :func:`_below`, the same draws)."""
    random_, below = rng.random, _below(rng)
    null_rate, literal_limit, private = shape.null_rate, shape.null_rate + shape.literal_rate, not shape.dense

    def draw_cell(cell: _CellDraws) -> Value | None:
        draw = random_()
        if draw < null_rate:
            return None if not cell.not_null else cell.pool[below(len(cell.pool))]
        if cell.literals and draw < literal_limit:
            return cell.literals[below(len(cell.literals))]
        if cell.loose and draw > 0.93:
            return cell.loose[below(len(cell.loose))]
        if draw > 0.85 and private:
            return cell.private[below(len(cell.private))]
        return cell.pool[below(len(cell.pool))]

    return draw_cell

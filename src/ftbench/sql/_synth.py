"""Synthesized databases: a plan of tables, column kinds and harvested values per example, and
seeded random databases drawn from it (test-suite style), built with sqlite-utils.

The plan depends on the context, the gold, and the prediction's literals and joins (so a prediction
that compares with another constant meets rows that tell the two apart). Databases are cached as
``serialize()`` bytes per (plan, seed, index): judging many predictions of one example builds them once.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import string
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from sqlite_utils import Database

from ftbench.sql._cache import bytes_cached
from ftbench.sql._facts import ColumnRef, Literal, QueryFacts, Value, analyze
from ftbench.sql._schema import Schema, declared_numeric, parse_context

_AFFINITY_TYPES: dict[str, type] = {"INTEGER": int, "REAL": float, "TEXT": str}
#: Per database index: chance of a NULL cell. Index 0 has none, so a plain gold is never starved.
_NULL_RATES = (0.0, 0.12, 0.05, 0.25)
_MAX_ROWS_PER_TABLE = 40
#: Bytes of synthesized databases a worker keeps between rows.
DATABASE_CACHE_BYTES = 128_000_000


@dataclass(frozen=True)
class ColumnPlan:
    """One column: its name, the affinity it is created with, and the value pool it draws from."""

    name: str
    affinity: str
    pool: str
    #: Drawn without repeats, like a primary key (see :func:`_key_columns`).
    unique: bool = False


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


@dataclass(frozen=True)
class GoldAnalysis:
    """The part of a plan that depends on the context and the gold only (cached across predictions)."""

    schema_key: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    facts: QueryFacts


def make_plan(context: str, gold: str, prediction: str) -> DataPlan:
    """The plan for judging ``prediction`` against ``gold``."""
    gold_analysis = _analyze_gold(context, gold)
    schema = _schema_from_key(gold_analysis.schema_key)
    return _plan(schema, gold_analysis.facts, analyze(prediction, schema))


def build_database(plan: DataPlan, seed: int, index: int, dense: bool = False) -> bytes:
    """The ``index``-th database of ``plan`` for ``seed``, as sqlite ``serialize()`` bytes."""
    return _cached_database(plan, seed, index, dense)


@lru_cache(maxsize=512)
def _analyze_gold(context: str, gold: str) -> GoldAnalysis:
    schema = parse_context(context)
    facts = analyze(gold, schema)
    _add_missing(schema, facts)
    key = tuple((table.name, tuple(table.columns.values())) for table in schema.tables.values())
    return GoldAnalysis(key, facts)


def _schema_from_key(key: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]) -> Schema:
    schema = Schema()
    for name, columns in key:
        table = schema.table(name)
        for column, declared in columns:
            table.add(column, declared)
    return schema


def _add_missing(schema: Schema, facts: QueryFacts) -> None:
    """Give the gold every table and column it uses, even those the context forgot."""
    for lower, name in facts.tables.items():
        schema.table(name if schema.find(lower) is None else lower)
    for (table, _column), name in facts.columns.items():
        schema.table(table).add(name)
    for known in schema.tables.values():
        if not known.columns:
            known.add("id", "INTEGER")


def _plan(schema: Schema, gold: QueryFacts, prediction: QueryFacts) -> DataPlan:
    known = {(t, c) for t, table in schema.tables.items() for c in table.columns}
    pools = _pool_of_columns(known, gold, prediction)
    literals = _literals_by_pool(pools, gold, prediction)
    affinities = _affinities(schema, pools, literals, gold.numeric | prediction.numeric)
    keys = _key_columns(pools, gold, prediction)
    tables = tuple(
        (table.name, tuple(ColumnPlan(name, affinities[pools[(t, c)]], pools[(t, c)], (t, c) in keys)
                           for c, (name, _declared) in table.columns.items()))
        for t, table in schema.tables.items()
    )
    pool_plans = tuple(PoolPlan(key, affinities[key], _expand(literals.get(key, []), affinities[key]))
                       for key in sorted(set(pools.values())))
    loose = tuple(dict.fromkeys(gold.loose + prediction.loose))
    bounds = tuple(sorted(set(gold.count_bounds + prediction.count_bounds)))
    return DataPlan(tables, pool_plans, loose, max(gold.limits + prediction.limits, default=0), bounds)


def _key_columns(pools: dict[ColumnRef, str], gold: QueryFacts, prediction: QueryFacts) -> set[ColumnRef]:
    """Joined columns that are probably primary keys, drawn without repeats as in the real databases.

    A column named like a key (``id``, ``singer_id`` in ``singer``) is one. So is the join column of a
    table whose plain columns a grouped query selects (``SELECT T2.name, count(*) FROM T1 JOIN T2 ...
    GROUP BY T1.x``): the real data makes ``name`` one value per group; repeated keys would make it an
    arbitrary row's."""
    joined = {ref for facts in (gold, prediction) for pair in facts.joins for ref in pair}
    keys = {(table, column) for table, column in joined if _named_like_key(table, column)}
    grouped_pools = {pools[ref] for ref in gold.grouped if ref in pools}
    for table, column in gold.selected_in_groups:
        if (table, column) not in gold.grouped:
            keys |= {ref for ref in joined if ref[0] == table and pools.get(ref) in grouped_pools}
    return keys


def _named_like_key(table: str, column: str) -> bool:
    table, column = table.replace("_", ""), column.replace("_", "")
    return column in {"id", f"{table}id", f"{table.removesuffix('s')}id"}


def _pool_of_columns(known: set[ColumnRef], *facts: QueryFacts) -> dict[ColumnRef, str]:
    """Union-find over columns that are joined (or compared with IN), so joins find partners."""
    parent = {ref: ref for ref in sorted(known)}

    def root(ref: ColumnRef) -> ColumnRef:
        while parent[ref] != ref:
            parent[ref] = parent[parent[ref]]
            ref = parent[ref]
        return ref

    for query in facts:
        for left, right in query.joins:
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
        wordy = any(_as_number(value) is None for value in values)
        if pool in numeric_pools or (pool in declared and not wordy):
            floats = any(isinstance(_as_number(value), float) for value in values)
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
    number = _as_number(literal.value)
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


def _as_number(value: Value) -> int | float | None:
    if isinstance(value, int | float):
        return value
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return None


@bytes_cached(DATABASE_CACHE_BYTES, len)
def _cached_database(plan: DataPlan, seed: int, index: int, dense: bool) -> bytes:
    rng = random.Random(_stable_seed(plan, seed, index))
    shape = _shape(rng, index, dense)
    pools = {pool.key: _draw_pool(rng, pool, shape) for pool in plan.pools}
    draws = _Draws(pools, _private_pools(rng, plan, shape, pools), {pool.key: pool.literals for pool in plan.pools},
                   {pool.key: _fitting(plan.loose, pool.affinity) for pool in plan.pools})
    connection = sqlite3.connect(":memory:")
    try:
        for (name, columns), create in zip(plan.tables, _create_statements(plan), strict=True):
            rows = _draw_rows(rng, plan, shape, name, columns, draws)
            connection.execute(create)
            marks = ", ".join("?" * len(columns))
            quoted = name.replace('"', '""')
            connection.executemany(f'INSERT INTO "{quoted}" VALUES ({marks})', [tuple(row.values()) for row in rows])
        connection.execute("PRAGMA user_version = 1")  # writes page 1: a database without tables serializes too
        connection.commit()
        return connection.serialize()
    finally:
        connection.close()


@lru_cache(maxsize=512)
def _create_statements(plan: DataPlan) -> tuple[str, ...]:
    """``CREATE TABLE`` statements written by sqlite-utils (quoting, affinities), once per plan."""
    database = Database(memory=True)
    return tuple(database.create_table_sql(name, {c.name: _AFFINITY_TYPES[c.affinity] for c in columns})
                 for name, columns in plan.tables)


def _private_pools(rng: random.Random, plan: DataPlan, shape: _Shape,
                   pools: dict[str, list[Value]]) -> dict[str, list[Value]]:
    """Joined columns also get values of their own, so some rows find no partner (NOT IN, EXCEPT and
    LEFT JOIN need them); other columns simply reuse their pool."""
    shared = Counter(column.pool for _name, columns in plan.tables for column in columns)
    return {column.name + "\0" + name: _draw_pool(rng, _pool_by_key(plan, column.pool), shape)
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
    digest = hashlib.blake2b(repr((plan, seed, index)).encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "big")


def _draw_pool(rng: random.Random, pool: PoolPlan, shape: _Shape) -> list[Value]:
    """A few random values of the pool's kind: few enough that rows repeat (GROUP BY, DISTINCT)."""
    size = rng.randint(*shape.pool_size)
    if pool.affinity == "TEXT":
        return [_word(rng) for _ in range(size)]
    numbers = [value for value in map(_as_number, pool.literals) if value is not None]
    low, high = (int(min(numbers)) - 6, int(max(numbers)) + 6) if numbers else (0, 40)
    if pool.affinity == "REAL":
        return [round(rng.uniform(low, high), 1) for _ in range(size)]
    return [rng.randint(low, high) for _ in range(size)]


def _word(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 7)))


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
    return tuple(value for value in values if (_as_number(value) is None) == (affinity == "TEXT"))


def _draw_rows(rng: random.Random, plan: DataPlan, shape: _Shape, table: str, columns: tuple[ColumnPlan, ...],
               draws: _Draws) -> list[dict[str, Value | None]]:
    rows: list[dict[str, Value | None]] = []
    for copies in _block_sizes(rng, plan, shape):
        row = {column.name: _draw_cell(rng, shape, draws, column.pool, column.name + "\0" + table)
               for column in columns}
        rows.extend(dict(row) for _ in range(copies))
    for column in columns:
        if column.unique:
            for row, value in zip(rows, _distinct_values(rng, draws, column, len(rows)), strict=True):
                row[column.name] = value
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


def _draw_cell(rng: random.Random, shape: _Shape, draws: _Draws, pool: str, column: str) -> Value | None:
    draw = rng.random()
    if draw < shape.null_rate:
        return None
    if draws.literals[pool] and draw < shape.null_rate + shape.literal_rate:
        return rng.choice(draws.literals[pool])
    if draws.loose[pool] and draw > 0.93:
        return rng.choice(draws.loose[pool])
    if draw > 0.85 and not shape.dense:
        return rng.choice(draws.private[column])
    return rng.choice(draws.pools[pool])


def _pool_by_key(plan: DataPlan, key: str) -> PoolPlan:
    return next(pool for pool in plan.pools if pool.key == key)

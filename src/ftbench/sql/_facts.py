"""What a query tells us about the data it expects: columns it uses, literals it compares them with,
columns it treats as numbers, joins, LIMITs, and whether its top level is ordered.

Everything here is best effort: a query sqlglot cannot read yields whatever a regex can find, and
the judge still runs it on the databases.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeVar

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.parser import Parser
from sqlglot.tokens import Tokenizer

from ftbench.sql._numbers import as_number
from ftbench.sql._schema import Schema

#: (lower table name, lower column name)
ColumnRef = tuple[str, str]
Value = int | float | str
E = TypeVar("E", bound=exp.Expr)

_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_ORDERING = (exp.GT, exp.GTE, exp.LT, exp.LTE)
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)
_STRING_LITERAL = re.compile(r"'((?:[^']|'')*)'|\"((?:[^\"]|\"\")*)\"")
_NUMBER_LITERAL = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")


@dataclass(frozen=True)
class Literal:
    """A constant a column is compared with; ``op`` is ``eq``, ``order`` (<, >, BETWEEN) or ``like``."""

    value: Value
    op: str


@dataclass
class QueryFacts:
    """Facts about one query, with columns resolved to their tables where possible."""

    parsed: bool = False
    #: Column references that name a table (after alias resolution): ``ref -> name as written``.
    columns: dict[ColumnRef, str] = field(default_factory=dict)
    #: Tables the query reads, ``lower -> name as written``.
    tables: dict[str, str] = field(default_factory=dict)
    literals: dict[ColumnRef, list[Literal]] = field(default_factory=dict)
    #: Literals not tied to a column (found by regex when parsing failed, or compared with expressions).
    loose: list[Value] = field(default_factory=list)
    numeric: set[ColumnRef] = field(default_factory=set)
    joins: list[tuple[ColumnRef, ColumnRef]] = field(default_factory=list)
    limits: list[int] = field(default_factory=list)
    #: Columns a grouped SELECT groups by, and the plain columns it selects.
    grouped: list[ColumnRef] = field(default_factory=list)
    selected_in_groups: list[ColumnRef] = field(default_factory=list)
    #: Numbers a ``count(...)`` is compared with (HAVING count(*) > 10): groups of about that size matter.
    count_bounds: list[int] = field(default_factory=list)
    ordered: bool = False
    #: Column references written with their table (``T1.name``), resolved to the table.
    qualified: set[ColumnRef] = field(default_factory=set)
    #: Lower names of the columns written without a table.
    unqualified: frozenset[str] = frozenset()
    #: Columns tested with ``IS NULL`` / ``IS NOT NULL``: the query expects them to hold NULLs.
    null_tested: set[ColumnRef] = field(default_factory=set)


class _Reader(threading.local):
    """sqlglot's sqlite tokenizer and parser, made once per thread and reused (both reset themselves
    for each text): ``sqlglot.parse_one`` builds new ones for every query, a third of its time."""

    def __init__(self) -> None:
        dialect = Dialect.get_or_raise("sqlite")
        self.tokenizer: Tokenizer = dialect.tokenizer()
        self.parser: Parser = dialect.parser()


_READER = _Reader()


class _TreeCache:
    """The trees of the last ``size`` texts read, least recently used first out. A tree's nodes point
    at their parents, so a dropped tree is a reference cycle that only the cyclic garbage collector
    frees, after walking every young object to find it (most of the worker's collection time): a tree
    leaving the cache has those pointers cut, and reference counting frees it at once. Callers use a
    tree only within the call that asked for it, so an evicted tree is no one's."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._trees: OrderedDict[str, exp.Expr | None] = OrderedDict()

    def get(self, sql: str) -> tuple[exp.Expr | None] | None:
        if sql not in self._trees:
            return None
        self._trees.move_to_end(sql)
        return (self._trees[sql],)

    def put(self, sql: str, tree: exp.Expr | None) -> None:
        self._trees[sql] = tree
        if len(self._trees) > self.size:
            _, dropped = self._trees.popitem(last=False)
            if dropped is not None:
                dismantle(dropped)

    def clear(self) -> None:
        self._trees.clear()


def dismantle(tree: exp.Expr) -> None:
    """Cut the parent pointers of ``tree``'s nodes (unusable afterwards): freed without the collector."""
    for node in list(tree.walk()):
        node.parent = None


#: Trees of 20,000-character queries are large: a row's worth of reuse is enough.
_TREES = _TreeCache(32)


def parse(sql: str) -> exp.Expr | None:
    """sqlglot's tree of one sqlite statement, or None when it cannot be read. Cached: a prediction is
    read against the context and again against the gold's schema; callers must not change the tree,
    nor keep it beyond their call (see :class:`_TreeCache`)."""
    found = _TREES.get(sql)
    if found is not None:
        return found[0]
    tree = _read(sql)
    _TREES.put(sql, tree)
    return tree


parse.cache_clear = _TREES.clear  # type: ignore[attr-defined]


def _read(sql: str) -> exp.Expr | None:
    try:
        statements = _READER.parser.parse(_READER.tokenizer.tokenize(sql), sql)
    except (SqlglotError, RecursionError, ValueError):
        return None
    tree = statements[0] if len(statements) == 1 else None  # several statements: not one query
    return tree if isinstance(tree, exp.Query) else None


def analyze(sql: str, schema: Schema) -> QueryFacts:
    """Facts about ``sql``, resolving unqualified columns against ``schema``."""
    tree = parse(sql)
    if tree is None:
        return _regex_facts(sql)
    facts = QueryFacts(parsed=True, ordered=tree.args.get("order") is not None)
    try:
        refs = _resolve_columns(tree, schema, facts)
    except (SqlglotError, RecursionError, KeyError, ValueError):
        return _regex_facts(sql)
    nodes = tuple(tree.walk())  # one walk for every question below (``find_all`` walks the tree each time)
    _collect_comparisons(nodes, refs, facts)
    _collect_numeric_uses(nodes, refs, facts)
    facts.limits = [number for node in _of(nodes, exp.Limit) if (number := _int_of(node.expression)) is not None]
    _collect_set_operation_pairs(nodes, refs, facts)
    facts.null_tested = {ref for node in _of(nodes, exp.Is) if isinstance(node.expression, exp.Null)
                         and (ref := _ref(node.this, refs)) is not None}
    grouped_selects = [select for select in _of(nodes, exp.Select) if select.args.get("group") is not None]
    facts.grouped = [ref for select in grouped_selects for item in select.args["group"].expressions
                     if (ref := _ref(item, refs)) is not None]
    facts.selected_in_groups = [ref for select in grouped_selects for item in select.selects
                                if (ref := _ref(item, refs)) is not None]
    return facts


def _of(nodes: tuple[exp.Expr, ...], *types: type[E]) -> list[E]:
    """``tree.find_all(*types)`` from the tree's nodes, in the same (breadth-first) order."""
    return [node for node in nodes if isinstance(node, types)]


def _resolve_columns(tree: exp.Expr, schema: Schema, facts: QueryFacts) -> dict[int, ColumnRef]:
    """Map each column node (by id) to its table, innermost scope first."""
    refs: dict[int, ColumnRef] = {}
    scopes = traverse_scope(tree)
    try:
        _resolve_scopes(scopes, schema, facts, refs)
    finally:
        _dismantle_scopes(scopes)
    return refs


#: The attributes by which sqlglot's scopes point at each other.
_CHILD_SCOPES = ("cte_scopes", "derived_table_scopes", "subquery_scopes", "table_scopes", "udtf_scopes",
                 "set_operation_scopes")


def _dismantle_scopes(scopes: list[Scope]) -> None:
    """Scopes point at their parents and children (cycles, like trees): cut, so they are freed at once."""
    for scope in scopes:
        scope.parent = None
        for name in _CHILD_SCOPES:
            children = getattr(scope, name, None)
            if isinstance(children, list):
                children.clear()
        scope.sources.clear()


def _resolve_scopes(scopes: list[Scope], schema: Schema, facts: QueryFacts, refs: dict[int, ColumnRef]) -> None:
    for scope in scopes:
        tables = _table_sources(scope, facts)
        selects = scope.expression.selects if isinstance(scope.expression, exp.Query) else []
        aliases = {select.alias.lower() for select in selects if select.alias}
        # Not ``scope.columns``: it leaves out HAVING's columns. Inner scopes come first, so a column of
        # a subquery is resolved there, and a correlated one falls through to the outer scope.
        for column in scope.expression.find_all(exp.Column):
            if id(column) not in refs and (ref := _resolve(column, tables, aliases, schema)) is not None:
                refs[id(column)] = ref
                facts.columns.setdefault(ref, column.name)
                if column.table:
                    facts.qualified.add(ref)
                else:
                    facts.unqualified |= {ref[1]}


def _table_sources(scope: Scope, facts: QueryFacts) -> dict[str, str]:
    """``lower alias -> lower table name`` for the real tables of one scope."""
    tables: dict[str, str] = {}
    for alias, source in scope.sources.items():
        if isinstance(source, exp.Table) and source.name:
            tables[alias.lower()] = source.name.lower()
            facts.tables.setdefault(source.name.lower(), source.name)
    return tables


def _resolve(column: exp.Column, tables: dict[str, str], aliases: set[str], schema: Schema) -> ColumnRef | None:
    name = column.name.lower()
    if not name or isinstance(column.this, exp.Star):
        return None
    if column.table:
        table = tables.get(column.table.lower())
        return (table, name) if table is not None else None
    if _is_string_in_disguise(column, tables, schema) or (name in aliases and not _owner(name, tables, schema)):
        return None
    owner = _owner(name, tables, schema)
    if owner is not None:
        return (owner, name)
    return (next(iter(tables.values())), name) if tables else None


def _owner(name: str, tables: dict[str, str], schema: Schema) -> str | None:
    for table in tables.values():
        known = schema.find(table)
        if known is not None and known.has(name):
            return table
    return None


def _is_string_in_disguise(column: exp.Column, tables: dict[str, str], schema: Schema) -> bool:
    """sqlite reads ``"France"`` as a string when no column has that name (Spider's golds rely on it)."""
    identifier = column.this
    quoted = isinstance(identifier, exp.Identifier) and bool(identifier.args.get("quoted"))
    return quoted and _owner(column.name.lower(), tables, schema) is None


def _collect_comparisons(nodes: tuple[exp.Expr, ...], refs: dict[int, ColumnRef], facts: QueryFacts) -> None:
    for node in _of(nodes, *_COMPARISONS, exp.Like, exp.ILike, exp.In, exp.Between):
        if isinstance(node, exp.In):
            _add_in(node, refs, facts)
        elif isinstance(node, exp.Between):
            _add_between(node, refs, facts)
        else:
            _add_binary(node, refs, facts)


def _add_binary(node: exp.Expr, refs: dict[int, ColumnRef], facts: QueryFacts) -> None:
    left, right = node.this, node.expression
    op = "like" if isinstance(node, exp.Like | exp.ILike) else "order" if isinstance(node, _ORDERING) else "eq"
    left_ref, right_ref = _ref(left, refs), _ref(right, refs)
    if left_ref is not None and right_ref is not None and isinstance(node, exp.EQ):
        facts.joins.append((left_ref, right_ref))
    _add_count_bound(left, right, facts)
    _add_count_bound(right, left, facts)
    # avg(x) > 72 says as much about x's values as x > 72 does.
    left_ref = left_ref or _ref(_aggregated(left), refs)
    right_ref = right_ref or _ref(_aggregated(right), refs)
    for ref, other, other_ref in ((left_ref, right, right_ref), (right_ref, left, left_ref)):
        value = _literal_of(other) if other_ref is None else None
        if value is None:
            continue
        if ref is None:
            facts.loose.append(value)
        else:
            facts.literals.setdefault(ref, []).append(Literal(value, op))


def _collect_set_operation_pairs(nodes: tuple[exp.Expr, ...], refs: dict[int, ColumnRef], facts: QueryFacts) -> None:
    """Columns that UNION, INTERSECT or EXCEPT line up must share values, like joined ones."""
    for node in _of(nodes, exp.Union, exp.Intersect, exp.Except):
        left, right = node.this, node.expression
        if isinstance(left, exp.Query) and isinstance(right, exp.Query):
            for one, other in zip(left.selects, right.selects, strict=False):
                if (one_ref := _ref(one, refs)) is not None and (other_ref := _ref(other, refs)) is not None:
                    facts.joins.append((one_ref, other_ref))


def _add_in(node: exp.In, refs: dict[int, ColumnRef], facts: QueryFacts) -> None:
    ref = _ref(node.this, refs)
    if ref is None:
        return
    for item in node.expressions:
        if (value := _literal_of(item)) is not None:
            facts.literals.setdefault(ref, []).append(Literal(value, "eq"))
    query = node.args.get("query")
    inner = query.this if isinstance(query, exp.Subquery) else query
    if isinstance(inner, exp.Select) and len(inner.selects) == 1 and (other := _ref(inner.selects[0], refs)):
        facts.joins.append((ref, other))


def _add_between(node: exp.Between, refs: dict[int, ColumnRef], facts: QueryFacts) -> None:
    ref = _ref(node.this, refs)
    for bound in (node.args.get("low"), node.args.get("high")):
        value = _literal_of(bound)
        if value is not None and ref is not None:
            facts.literals.setdefault(ref, []).append(Literal(value, "order"))
            facts.numeric.add(ref)


def _collect_numeric_uses(nodes: tuple[exp.Expr, ...], refs: dict[int, ColumnRef], facts: QueryFacts) -> None:
    """Columns summed, averaged, used in arithmetic or ordered against a number hold numbers."""
    for node in _of(nodes, exp.Sum, exp.Avg, *_ARITHMETIC):
        for column in node.find_all(exp.Column):
            if (ref := refs.get(id(column))) is not None:
                facts.numeric.add(ref)
    for ref, literals in facts.literals.items():
        if any(_is_number(literal.value) for literal in literals if literal.op != "like"):
            facts.numeric.add(ref)


def _aggregated(node: exp.Expr | None) -> exp.Expr | None:
    while isinstance(node, exp.Paren):
        node = node.this
    return node.this if isinstance(node, exp.Avg | exp.Sum | exp.Min | exp.Max) else None


def _add_count_bound(side: exp.Expr | None, other: exp.Expr | None, facts: QueryFacts) -> None:
    while isinstance(side, exp.Paren):
        side = side.this
    bound = _literal_of(other)
    if isinstance(side, exp.Count) and isinstance(bound, int | float) and 1 < bound <= 1000:
        facts.count_bounds.append(int(bound))


def _ref(node: exp.Expr | None, refs: dict[int, ColumnRef]) -> ColumnRef | None:
    while isinstance(node, exp.Paren | exp.Alias):
        node = node.this
    return refs.get(id(node)) if isinstance(node, exp.Column) else None


def _literal_of(node: exp.Expr | None) -> Value | None:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Neg):
        inner = _literal_of(node.this)
        return -inner if isinstance(inner, int | float) else None
    if isinstance(node, exp.Column) and isinstance(node.this, exp.Identifier) and node.this.args.get("quoted"):
        return node.name if not node.table else None  # a double-quoted string, if it resolved to no column
    if not isinstance(node, exp.Literal):
        return None
    return str(node.this) if node.is_string else as_number(str(node.this))


def _is_number(value: Value) -> bool:
    return as_number(value) is not None


def _int_of(node: exp.Expr | None) -> int | None:
    value = _literal_of(node)
    return value if isinstance(value, int) else None


def _regex_facts(sql: str) -> QueryFacts:
    """Literals a regex finds, for queries sqlglot cannot read (they still feed the databases)."""
    facts = QueryFacts()
    for match in _STRING_LITERAL.finditer(sql):
        facts.loose.append(match.group(1) if match.group(1) is not None else match.group(2))
    for match in _NUMBER_LITERAL.finditer(_STRING_LITERAL.sub("''", sql)):
        if (number := as_number(match.group())) is not None:
            facts.loose.append(number)
    return facts


@lru_cache(maxsize=256)  # asked once per database the gold's ties or a prediction's ranking are checked on
def keyed_order_query(sql: str) -> str | None:
    """A gold (or a prediction) rewritten to expose its sort keys: the same SELECT without LIMIT, its
    ORDER BY expressions appended as extra columns. None when that would change the rows (DISTINCT, set
    operations, OFFSET) or the query cannot be read."""
    tree = parse(sql)
    order = tree.args.get("order") if isinstance(tree, exp.Select) else None
    limit = tree.args.get("limit") if tree is not None else None
    if not isinstance(tree, exp.Select) or order is None or tree.args.get("distinct") or tree.args.get("offset"):
        return None
    if isinstance(limit, exp.Limit) and limit.args.get("offset") is not None:
        return None
    keys = [key for ordered in order.expressions if (key := _sort_key(ordered.this, tree.selects)) is not None]
    if len(keys) != len(order.expressions):
        return None
    keyed = tree.copy()
    keyed.set("limit", None)
    # ``keyed`` and the keys are copies of their own: neither the alias nor the generator needs to copy
    # them again (deep copies were most of this function's time).
    for index, key in enumerate(keys):
        keyed.append("expressions", exp.alias_(key, f"ftbench_sort_key_{index}", copy=False))
    text = keyed.sql(dialect="sqlite", copy=False)
    dismantle(keyed)
    return text


def _sort_key(expression: exp.Expr, selects: list[exp.Expr]) -> exp.Expr | None:
    """An ORDER BY term as an expression valid in the select list (positions and aliases expanded)."""
    if isinstance(expression, exp.Literal) and not expression.is_string:
        position = _int_of(expression)
        if position is None or not 1 <= position <= len(selects):
            return None
        chosen = selects[position - 1]
        return (chosen.this if isinstance(chosen, exp.Alias) else chosen).copy()
    if isinstance(expression, exp.Column) and not expression.table:
        for select in selects:
            if isinstance(select, exp.Alias) and select.alias.lower() == expression.name.lower():
                aliased: exp.Expr = select.this
                return aliased.copy()
    return expression.copy()

"""Fidelity of the SQL judge on the 568 spider_sql val rows: does it say *correct* exactly when it should?

    FTBENCH_DATA_DIR=../shared/data python benchmarks/bench_sql_fidelity.py [--limit N] [--n-databases K]

For every row it judges, in mock-DB mode with the default config:
  * gold vs gold (must be accepted, and the gold must return rows on its own databases);
  * semantics-preserving rewrites of the gold (formatting, quote style, alias names, != / <>, operand
    order, select-column order, join order, trailing ;) -- must be accepted;
  * plausible mistakes (operator, boundary operator, literal, ASC/DESC, LIMIT, aggregate, dropped
    condition, other column, DISTINCT, set operation), kept only when the real Spider database gives
    a different result than the gold (a witnessed mistake) -- must be rejected.
Rows whose database is missing (wta_1) are used for gold and rewrites only. Prints rates per kind.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import sqlglot
from sqlglot import exp

from ftbench.data import SqlExample, data_dir, load_spider_sql
from ftbench.sql import JudgeConfig, Rows, has_top_level_order, judge, open_read_only, run_query, same_result

Mutation = Callable[[str], Iterator[str]]
HARD = ("boundary operator", "LIMIT", "ASC/DESC")


@dataclass(frozen=True)
class Case:
    example: SqlExample
    kind: str
    prediction: str
    should_match: bool


# ---------------------------------------------------------------- rewrites (meaning kept)

def _outside_quotes(sql: str, change: Callable[[str], str]) -> str:
    parts = re.split(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")", sql)
    return "".join(part if index % 2 else change(part) for index, part in enumerate(parts))


def formatting(sql: str) -> Iterator[str]:
    yield _outside_quotes(sql, lambda part: re.sub(r"\s+", " ", part))
    yield _outside_quotes(sql, lambda part: re.sub(r"\b(FROM|WHERE|GROUP BY|ORDER BY|HAVING|JOIN)\b", r"\n  \1",
                                                    part, flags=re.IGNORECASE))
    yield _outside_quotes(sql, lambda part: re.sub(r"\b(select|from|where|join|on|as|and|or|group|by|order|limit)\b",
                                                    lambda m: m.group().swapcase(), part, flags=re.IGNORECASE))


def quote_style(sql: str) -> Iterator[str]:
    if "'" in sql and '"' not in sql:
        yield re.sub(r"'((?:[^'\"])*)'", r'"\1"', sql)
    elif '"' in sql and "'" not in sql:
        yield re.sub(r"\"([^\"']*)\"", r"'\1'", sql)


def alias_names(sql: str) -> Iterator[str]:
    if re.search(r"\bT1\b", sql, re.IGNORECASE):
        yield _outside_quotes(sql, lambda part: re.sub(r"\bT(\d)\b", r"alias_\1", part, flags=re.IGNORECASE))


def not_equal_spelling(sql: str) -> Iterator[str]:
    if "!=" in sql:
        yield _outside_quotes(sql, lambda part: part.replace("!=", "<>"))
    elif "<>" in sql:
        yield _outside_quotes(sql, lambda part: part.replace("<>", "!="))


def trailing_semicolon(sql: str) -> Iterator[str]:
    yield sql.rstrip().rstrip(";") if sql.rstrip().endswith(";") else sql.rstrip() + " ;"


_FLIP = {exp.GT: exp.LT, exp.LT: exp.GT, exp.GTE: exp.LTE, exp.LTE: exp.GTE, exp.EQ: exp.EQ, exp.NEQ: exp.NEQ}


def operand_order(sql: str) -> Iterator[str]:
    tree = _parse(sql)
    for node in list(tree.find_all(*_FLIP)) if tree else []:
        if isinstance(node.expression, exp.Literal | exp.Column) and type(node) in _FLIP:
            changed = tree.copy()
            target = next(n for n in changed.find_all(type(node)) if n == node)
            target.replace(_FLIP[type(node)](this=target.expression.copy(), expression=target.this.copy()))
            yield changed.sql(dialect="sqlite")
            return


def select_order(sql: str) -> Iterator[str]:
    tree = _parse(sql)
    if isinstance(tree, exp.Select) and len(tree.selects) > 1 and not _positional_order(tree):
        changed = tree.copy()
        changed.set("expressions", list(reversed([e.copy() for e in tree.selects])))
        yield changed.sql(dialect="sqlite")


def join_order(sql: str) -> Iterator[str]:
    tree = _parse(sql)
    joins = tree.args.get("joins") if isinstance(tree, exp.Select) else None
    if not joins or len(joins) != 1 or joins[0].args.get("side") or joins[0].args.get("kind"):
        return
    changed = tree.copy()
    first, join = changed.args["from_"] if "from_" in changed.args else changed.args["from"], changed.args["joins"][0]
    left, right = first.this.copy(), join.this.copy()
    first.set("this", right)
    join.set("this", left)
    yield changed.sql(dialect="sqlite")


# ---------------------------------------------------------------- mistakes (meaning changed)

_BOUNDARY = {exp.GT: exp.GTE, exp.GTE: exp.GT, exp.LT: exp.LTE, exp.LTE: exp.LT}
_OPERATOR = {exp.GT: exp.LT, exp.LT: exp.GT, exp.EQ: exp.NEQ, exp.NEQ: exp.EQ, exp.GTE: exp.LTE, exp.LTE: exp.GTE}


def _swap_nodes(sql: str, table: dict[type, type]) -> Iterator[str]:
    tree = _parse(sql)
    for index, node in enumerate(list(tree.find_all(*table)) if tree else []):
        if isinstance(node.this, exp.Column) and isinstance(node.expression, exp.Column):
            continue  # join conditions: too easy
        changed = tree.copy()
        target = list(changed.find_all(*table))[index]
        target.replace(table[type(target)](this=target.this.copy(), expression=target.expression.copy()))
        yield changed.sql(dialect="sqlite")


def boundary_operator(sql: str) -> Iterator[str]:
    yield from _swap_nodes(sql, _BOUNDARY)


def operator(sql: str) -> Iterator[str]:
    yield from _swap_nodes(sql, _OPERATOR)


def literal(sql: str) -> Iterator[str]:
    tree = _parse(sql)
    for index, node in enumerate(list(tree.find_all(exp.Literal)) if tree else []):
        if isinstance(node.parent, exp.Limit):
            continue
        changed = tree.copy()
        target = list(changed.find_all(exp.Literal))[index]
        if target.is_string:
            target.replace(exp.Literal.string(str(target.this)[:-1] + "x" if target.this else "x"))
        else:
            target.replace(exp.Literal.number(float(target.this) * 2 + 3))
        yield changed.sql(dialect="sqlite")


def asc_desc(sql: str) -> Iterator[str]:
    tree = _parse(sql)
    order = tree.args.get("order") if tree else None
    if order is not None:
        changed = tree.copy()
        for ordered in changed.args["order"].expressions:
            ordered.set("desc", not ordered.args.get("desc"))
        yield changed.sql(dialect="sqlite")


def limit(sql: str) -> Iterator[str]:
    match = re.search(r"\blimit\s+(\d+)\s*;?\s*$", sql, re.IGNORECASE)
    if match:
        yield sql[:match.start(1)] + str(int(match.group(1)) + 1) + sql[match.end(1):]
        yield sql[:match.start()].rstrip()


_AGGREGATES = {exp.Max: exp.Min, exp.Min: exp.Max, exp.Sum: exp.Avg, exp.Avg: exp.Sum}


def aggregate(sql: str) -> Iterator[str]:
    tree = _parse(sql)
    for index, _node in enumerate(list(tree.find_all(*_AGGREGATES, exp.Count)) if tree else []):
        changed = tree.copy()
        target = list(changed.find_all(*_AGGREGATES, exp.Count))[index]
        if isinstance(target, exp.Count):
            inner = target.this
            if isinstance(inner, exp.Column):
                target.set("this", exp.Distinct(expressions=[inner.copy()]))
            else:
                continue
        else:
            target.replace(_AGGREGATES[type(target)](this=target.this.copy()))
        yield changed.sql(dialect="sqlite")


def dropped_condition(sql: str) -> Iterator[str]:
    tree = _parse(sql)
    for index, _node in enumerate(list(tree.find_all(exp.And)) if tree else []):
        for side in ("this", "expression"):
            changed = tree.copy()
            target = list(changed.find_all(exp.And))[index]
            target.replace(target.args["expression" if side == "this" else "this"].copy())
            yield changed.sql(dialect="sqlite")
    if isinstance(tree, exp.Select) and tree.args.get("where") is not None and not list(tree.find_all(exp.And)):
        changed = tree.copy()
        changed.set("where", None)
        yield changed.sql(dialect="sqlite")


def other_column(sql: str, columns: list[str]) -> Iterator[str]:
    tree = _parse(sql)
    if not isinstance(tree, exp.Select):
        return
    for index, select in enumerate(tree.selects):
        if isinstance(select, exp.Column):
            for name in columns:
                if name.lower() != select.name.lower():
                    changed = tree.copy()
                    changed.selects[index].replace(exp.column(name, table=select.table or None))
                    yield changed.sql(dialect="sqlite")
                    break


def distinct(sql: str) -> Iterator[str]:
    tree = _parse(sql)
    if isinstance(tree, exp.Select):
        changed = tree.copy()
        changed.set("distinct", None if tree.args.get("distinct") else exp.Distinct())
        yield changed.sql(dialect="sqlite")


def set_operation(sql: str) -> Iterator[str]:
    words = {"UNION": ("INTERSECT", "EXCEPT", "UNION ALL"), "INTERSECT": ("UNION", "EXCEPT"),
             "EXCEPT": ("INTERSECT", "UNION")}
    match = re.search(r"\b(UNION|INTERSECT|EXCEPT)\b(?!\s+ALL)", sql, re.IGNORECASE)
    if match:
        for other in words[match.group(1).upper()]:
            yield sql[:match.start()] + other + sql[match.end():]


def _parse(sql: str) -> exp.Expression | None:
    try:
        return sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return None


def _positional_order(tree: exp.Expression) -> bool:
    order = tree.args.get("order")
    return order is not None and any(isinstance(o.this, exp.Literal) for o in order.expressions)


REWRITES: dict[str, Mutation] = {"formatting": formatting, "quote style": quote_style, "alias names": alias_names,
                                 "!= / <>": not_equal_spelling, "operand order": operand_order,
                                 "select-column order": select_order, "join order": join_order,
                                 "trailing ;": trailing_semicolon}
MISTAKES: dict[str, Mutation] = {"operator": operator, "boundary operator": boundary_operator, "literal": literal,
                                 "ASC/DESC": asc_desc, "LIMIT": limit, "aggregate": aggregate,
                                 "dropped condition": dropped_condition, "DISTINCT": distinct,
                                 "set operation": set_operation}


# ---------------------------------------------------------------- witnesses on the real database

def real_result(path: Path, sql: str, config: JudgeConfig) -> Rows | None:
    connection = open_read_only(path, config)
    try:
        outcome = run_query(connection, sql, config)
    finally:
        connection.close()
    return outcome if isinstance(outcome, Rows) else None


def real_columns(path: Path) -> dict[str, list[str]]:
    import sqlite3

    # A plain read-only connection: the judge's hardened one refuses PRAGMA, rightly.
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        names = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {name.lower(): [c[1] for c in connection.execute(f'PRAGMA table_info("{name}")')] for name in names}
    except sqlite3.Error:
        return {}
    finally:
        connection.close()


def cases_for(example: SqlExample, db_dir: Path, config: JudgeConfig) -> Iterator[Case]:
    yield Case(example, "gold", example.answer, True)
    path = db_dir / example.db_id / f"{example.db_id}.sqlite"
    real = path.is_file()
    gold_real = real_result(path, example.answer, config) if real else None
    ordered = has_top_level_order(example.answer)
    for kind, mutation in REWRITES.items():
        for prediction in dict.fromkeys(mutation(example.answer)):
            if prediction != example.answer and _agrees(path, gold_real, prediction, ordered, config, want=True):
                yield Case(example, kind, prediction, True)
    if gold_real is None:
        return
    mistakes = {**MISTAKES, "other column": lambda sql: other_column(sql, _table_columns(path, sql))}
    for kind, mutation in mistakes.items():
        for prediction in dict.fromkeys(mutation(example.answer)):
            if _agrees(path, gold_real, prediction, ordered, config, want=False):
                yield Case(example, kind, prediction, False)


def _table_columns(path: Path, sql: str) -> list[str]:
    tree = _parse(sql)
    table = tree.find(exp.Table) if tree else None
    return real_columns(path).get(table.name.lower(), []) if table else []


def _agrees(path: Path, gold: Rows | None, prediction: str, ordered: bool, config: JudgeConfig, want: bool) -> bool:
    """Rewrites: kept unless the real db shows they are not rewrites. Mistakes: kept only when the
    real db runs them and gives a different result."""
    if gold is None:
        return want
    predicted = real_result(path, prediction, config)
    if predicted is None:
        return False
    return same_result(gold, predicted, ordered) == want


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="first N val rows only")
    parser.add_argument("--n-databases", type=int, default=None, help="override JudgeConfig.n_databases")
    parser.add_argument("--judge", choices=("context", "test-suite", "real-db"), default="context")
    parser.add_argument("--show", type=int, default=5, help="print this many failures per kind")
    args = parser.parse_args()
    db_dir = data_dir(Path(__file__).resolve().parents[2] / "shared" / "data") / "spider" / "database"
    config = JudgeConfig(db_dir=db_dir if args.judge != "context" else None, judge=args.judge)
    if args.n_databases:
        config = replace(config, n_databases=args.n_databases)
    examples = load_spider_sql("val")[: args.limit]
    started = time.perf_counter()
    cases = [case for example in examples for case in cases_for(example, db_dir, JudgeConfig())]
    print(f"{len(examples)} rows, {len(cases)} cases generated in {time.perf_counter() - started:.1f}s", flush=True)
    started = time.perf_counter()
    report(cases, config, args.show)
    print(f"judged in {time.perf_counter() - started:.1f}s")
    return 0


def report(cases: list[Case], config: JudgeConfig, show: int) -> None:
    right, total, failures = Counter[str](), Counter[str](), dict[str, list[str]]()
    for case in cases:
        verdict = judge(case.example.answer, case.prediction, case.example.context, db_id=case.example.db_id,
                        config=config)
        total[case.kind] += 1
        if verdict.exec_match == case.should_match:
            right[case.kind] += 1
        else:
            failures.setdefault(case.kind, []).append(
                f"    {case.example.id}: {case.prediction!r} <- gold {case.example.answer!r} ({verdict.detail})")
    _print_table(right, total, failures, show)


def _print_table(right: Counter[str], total: Counter[str], failures: dict[str, list[str]], show: int) -> None:
    groups = {"gold vs gold": ["gold"], "rewrites (accepted)": list(REWRITES),
              "mistakes (rejected)": [*MISTAKES, "other column"]}
    for title, kinds in groups.items():
        print(f"\n{title}")
        for kind in kinds:
            if total[kind]:
                print(f"  {kind:22s} {right[kind]:5d}/{total[kind]:<5d} {100 * right[kind] / total[kind]:6.2f}%")
        group_right, group_total = sum(right[k] for k in kinds), sum(total[k] for k in kinds)
        print(f"  {'ALL':22s} {group_right:5d}/{group_total:<5d} {100 * group_right / max(group_total, 1):6.2f}%")
    hard_right, hard_total = sum(right[k] for k in HARD), sum(total[k] for k in HARD)
    print(f"\nhard mistakes ({', '.join(HARD)}): {hard_right}/{hard_total} "
          f"{100 * hard_right / max(hard_total, 1):.2f}% rejected")
    for kind, lines in failures.items():
        print(f"\nwrong on {kind} ({len(lines)}):")
        print("\n".join(lines[:show]))


if __name__ == "__main__":
    sys.exit(main())

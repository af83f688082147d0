"""Result comparison (test-suite rules), context parsing, and the gold on every val row."""

from __future__ import annotations

import pytest

from ftbench.sql import JudgeConfig, judge
from ftbench.sql._compare import KeyedRows, ordered_within_ties, same_result
from ftbench.sql._exec import Rows
from ftbench.sql._schema import parse_context


def rows(*values: tuple[object, ...]) -> Rows:
    return Rows(tuple(values), len(values[0]) if values else 1)


@pytest.mark.parametrize(("gold", "prediction", "ordered", "expected"), [
    (rows(), rows(), False, True),
    (rows((1, "a"), (2, "b")), rows(("b", 2), ("a", 1)), False, True),  # columns and rows permuted
    (rows((1, "a"), (2, "b")), rows(("a", 1), ("b", 2)), True, True),  # columns permuted, order kept
    (rows((1, "a"), (2, "b")), rows(("b", 2), ("a", 1)), True, False),  # order broken
    (rows((1,), (1,), (2,)), rows((1,), (2,), (2,)), False, False),  # bags, not sets
    (rows((1,), (1,)), rows((1,),), False, False),
    (rows((1, 2),), rows((1,),), False, False),
    (rows((1 / 3,),), rows((0.333333333333,),), False, True),  # floats to 12 significant digits
    (rows((20,),), rows(("20",),), False, False),  # text is not a number: sqlite tells them apart
    (rows((20,),), rows((20.0,),), False, True),
    (rows((None,),), rows((0,),), False, False),
    (rows((1, 2), (3, 4)), rows((1, 2), (4, 3)), False, False),  # no single column permutation fits
])
def test_test_suite_rules(gold: Rows, prediction: Rows, ordered: bool, expected: bool) -> None:
    assert same_result(gold, prediction, ordered) == expected


def test_ties_may_come_in_any_order_and_limit_may_cut_through_them() -> None:
    keyed = KeyedRows((("a", 9), ("b", 9), ("c", 5), ("d", 1)), 2)  # gold column, then its sort key
    assert ordered_within_ties(keyed, rows(("a",), ("b",), ("c",)), rows(("b",), ("a",), ("c",)))
    assert ordered_within_ties(keyed, rows(("a",)), rows(("b",)))  # LIMIT 1 through the tie at 9
    assert not ordered_within_ties(keyed, rows(("a",)), rows(("c",)))
    assert not ordered_within_ties(keyed, rows(("a",), ("b",), ("c",)), rows(("a",), ("c",), ("b",)))


def test_context_tables_are_merged_and_types_kept() -> None:
    schema = parse_context('CREATE TABLE countries (CountryName VARCHAR, countryId VARCHAR); '
                           'CREATE TABLE Countries (CountryName VARCHAR, "Population" INTEGER); '
                           "CREATE TABLE price (amount DECIMAL(10, 2), PRIMARY KEY (amount))")
    countries = schema.find("COUNTRIES")
    assert countries is not None
    assert list(countries.columns.values()) == [("CountryName", "VARCHAR"), ("countryId", "VARCHAR"),
                                                ("Population", "INTEGER")]
    price = schema.find("price")
    assert price is not None and list(price.columns.values()) == [("amount", "DECIMAL(10, 2)")]


def test_gold_matches_itself_on_every_val_row(data_env: object) -> None:
    """The gold runs on its own synthesized databases and returns rows on one of them, for all 568."""
    from ftbench.data import load_spider_sql

    config = JudgeConfig()
    failed = [(ex.id, verdict) for ex in load_spider_sql("val")
              if not (verdict := judge(ex.answer, ex.answer, ex.context, config=config)).exec_match]
    assert failed == []

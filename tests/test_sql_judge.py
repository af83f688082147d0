"""The judge on hand-written cases: every rewrite kind accepted, every mistake kind rejected, the
context's quirks handled, verdicts deterministic for a seed."""

from __future__ import annotations

import sqlite3

import pytest

from ftbench.sql import JudgeConfig, judge

INLINE = JudgeConfig(sandbox="inline")  # same verdicts as the worker, without the process hop

SINGER = "CREATE TABLE singer (singer_id VARCHAR, name VARCHAR, country VARCHAR, age VARCHAR)"
CONCERT = ("CREATE TABLE concert (concert_id VARCHAR, stadium_id VARCHAR, year VARCHAR); "
           "CREATE TABLE stadium (stadium_id VARCHAR, name VARCHAR, capacity INTEGER)")
PETS = ("CREATE TABLE student (stuid VARCHAR, fname VARCHAR, age INTEGER); CREATE TABLE has_pet (stuid VARCHAR, "
        "petid VARCHAR); CREATE TABLE pets (petid VARCHAR, pettype VARCHAR)")

REWRITES = [
    ("formatting", "SELECT name FROM singer WHERE age > 20", "select   name\n  from singer\n where age>20", SINGER),
    ("quote style", "SELECT name FROM singer WHERE country = 'France'",
     'SELECT name FROM singer WHERE country = "France"', SINGER),
    ("alias names", "SELECT T1.name FROM concert AS T2 JOIN stadium AS T1 ON T2.stadium_id = T1.stadium_id",
     "SELECT s.name FROM concert AS c JOIN stadium AS s ON c.stadium_id = s.stadium_id", CONCERT),
    ("!= vs <>", "SELECT name FROM singer WHERE country != 'France'",
     "SELECT name FROM singer WHERE country <> 'France'", SINGER),
    ("operand order", "SELECT count(*) FROM singer WHERE age > 30", "SELECT count(*) FROM singer WHERE 30 < age",
     SINGER),
    ("select-column order", "SELECT name, country FROM singer ORDER BY age DESC",
     "SELECT country, name FROM singer ORDER BY age DESC", SINGER),
    ("join order", "SELECT T2.name, count(*) FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id "
     "GROUP BY T1.stadium_id",
     "SELECT T2.name, count(*) FROM stadium AS T2 JOIN concert AS T1 ON T1.stadium_id = T2.stadium_id "
     "GROUP BY T1.stadium_id", CONCERT),
    ("trailing ;", "SELECT avg(age) FROM singer", "SELECT avg(age) FROM singer;", SINGER),
    ("BETWEEN", "SELECT name FROM singer WHERE age >= 20 AND age <= 30",
     "SELECT name FROM singer WHERE age BETWEEN 20 AND 30", SINGER),
    ("IN vs OR", "SELECT name FROM singer WHERE country = 'France' OR country = 'Spain'",
     "SELECT name FROM singer WHERE country IN ('France', 'Spain')", SINGER),
    ("join vs IN", "SELECT DISTINCT T1.fname FROM student AS T1 JOIN has_pet AS T2 ON T1.stuid = T2.stuid",
     "SELECT DISTINCT fname FROM student WHERE stuid IN (SELECT stuid FROM has_pet)", PETS),
    ("quoted number", "SELECT name FROM singer WHERE age = 32", "SELECT name FROM singer WHERE age = '32'", SINGER),
    ("tie at LIMIT", "SELECT T1.name FROM stadium AS T1 JOIN concert AS T2 ON T1.stadium_id = T2.stadium_id "
     "ORDER BY T1.capacity DESC LIMIT 1",
     "SELECT T1.name FROM concert AS T2 JOIN stadium AS T1 ON T1.stadium_id = T2.stadium_id "
     "ORDER BY T1.capacity DESC LIMIT 1", CONCERT),
]

MISTAKES = [
    ("operator", "SELECT name FROM singer WHERE age > 20", "SELECT name FROM singer WHERE age < 20", SINGER),
    ("boundary operator", "SELECT name FROM singer WHERE age > 20", "SELECT name FROM singer WHERE age >= 20", SINGER),
    ("boundary on HAVING", "SELECT country FROM singer GROUP BY country HAVING count(*) > 3",
     "SELECT country FROM singer GROUP BY country HAVING count(*) >= 3", SINGER),
    ("literal", "SELECT name FROM singer WHERE country = 'France'", "SELECT name FROM singer WHERE country = 'Spain'",
     SINGER),
    ("ASC/DESC", "SELECT name FROM singer ORDER BY age DESC", "SELECT name FROM singer ORDER BY age ASC", SINGER),
    ("missing ORDER BY", "SELECT name FROM singer ORDER BY age", "SELECT name FROM singer", SINGER),
    ("LIMIT", "SELECT name FROM singer ORDER BY age DESC LIMIT 3", "SELECT name FROM singer ORDER BY age DESC LIMIT 4",
     SINGER),
    ("aggregate", "SELECT max(age) FROM singer", "SELECT min(age) FROM singer", SINGER),
    ("count distinct", "SELECT count(*) FROM singer", "SELECT count(DISTINCT country) FROM singer", SINGER),
    ("dropped condition", "SELECT name FROM singer WHERE country = 'France' AND age > 20",
     "SELECT name FROM singer WHERE country = 'France'", SINGER),
    ("other column", "SELECT name FROM singer WHERE age > 20", "SELECT country FROM singer WHERE age > 20", SINGER),
    ("DISTINCT", "SELECT country FROM singer", "SELECT DISTINCT country FROM singer", SINGER),
    ("set operation", "SELECT country FROM singer WHERE age > 40 UNION SELECT country FROM singer WHERE age < 20",
     "SELECT country FROM singer WHERE age > 40 INTERSECT SELECT country FROM singer WHERE age < 20", SINGER),
    ("NOT IN vs IN", "SELECT fname FROM student WHERE stuid NOT IN (SELECT stuid FROM has_pet)",
     "SELECT fname FROM student WHERE stuid IN (SELECT stuid FROM has_pet)", PETS),
    # NULLs only where the gold says a column holds them (elsewhere count(age) is count(*), as on Spider's data).
    ("count(col) vs count(*)", "SELECT count(*) FROM singer WHERE age IS NULL",
     "SELECT count(age) FROM singer WHERE age IS NULL", SINGER),
]


@pytest.mark.parametrize(("kind", "gold", "prediction", "context"), REWRITES, ids=[case[0] for case in REWRITES])
def test_rewrites_are_accepted(kind: str, gold: str, prediction: str, context: str) -> None:
    verdict = judge(gold, prediction, context, config=INLINE)
    assert verdict.exec_match, verdict
    assert verdict.error is None


@pytest.mark.parametrize(("kind", "gold", "prediction", "context"), MISTAKES, ids=[case[0] for case in MISTAKES])
def test_mistakes_are_rejected(kind: str, gold: str, prediction: str, context: str) -> None:
    verdict = judge(gold, prediction, context, config=INLINE)
    assert not verdict.exec_match
    assert verdict.error is None, verdict  # compared and found different, not refused


@pytest.mark.parametrize(("gold", "context"), [
    ("SELECT count(*) FROM countries WHERE countryId > 3",  # a table declared twice, columns merged
     "CREATE TABLE countries (CountryName VARCHAR, countryId VARCHAR); CREATE TABLE countries (CountryName VARCHAR)"),
    ("SELECT name FROM singer ORDER BY Percentage DESC LIMIT 1", "CREATE TABLE singer (name VARCHAR)"),
    ("SELECT T1.title FROM book AS T1 JOIN author AS T2 ON T1.aid = T2.id",  # a table the context omits
     "CREATE TABLE book (title VARCHAR, aid VARCHAR)"),
    ('SELECT Country FROM AIRLINES WHERE Airline = "JetBlue Airways"', "CREATE TABLE AIRLINES (Country VARCHAR, "
     "Airline VARCHAR)"),
    ("SELECT tourney_name FROM matches GROUP BY tourney_name HAVING count(*) > 10",
     "CREATE TABLE matches (tourney_name VARCHAR)"),
    ("SELECT name FROM museum WHERE museum_id NOT IN (SELECT museum_id FROM visit)",
     "CREATE TABLE visit (museum_id VARCHAR); CREATE TABLE museum (name VARCHAR, museum_id VARCHAR)"),
])
def test_gold_matches_itself_on_quirky_contexts(gold: str, context: str) -> None:
    verdict = judge(gold, gold, context, config=INLINE)
    assert verdict.exec_match, verdict
    assert verdict.databases >= INLINE.n_databases


def test_varchar_columns_compared_with_numbers_hold_numbers() -> None:
    """``age > 9`` on a VARCHAR column: stored as text, '10' > 9 would be true for every row (text sorts
    after numbers) and ``>`` vs ``>=`` could never differ; the real databases hold numbers there."""
    import sqlite3

    from ftbench.sql._synth import build_database, make_plan

    gold = "SELECT name FROM singer WHERE age > 9"
    connection = sqlite3.connect(":memory:")
    connection.deserialize(build_database(make_plan(SINGER, gold, gold), 0, 0))
    kinds = {kind for (kind,) in connection.execute("SELECT typeof(age) FROM singer WHERE age IS NOT NULL")}
    names = {kind for (kind,) in connection.execute("SELECT typeof(name) FROM singer WHERE name IS NOT NULL")}
    assert (kinds, names) == ({"integer"}, {"text"})


def test_wrong_predictions_are_classified() -> None:
    cases = {"SELECT nme FROM singer": "schema", "SELECT name FROM singers": "schema",
             "SELEC name FROM singer": "syntax", "SELECT name FROM singer WHERE": "syntax", "   ": "empty"}
    for prediction, kind in cases.items():
        assert judge("SELECT name FROM singer", prediction, SINGER, config=INLINE).error == kind, prediction


def test_gold_that_is_empty_everywhere_witnesses_nothing_but_an_exact_copy() -> None:
    gold = "SELECT name FROM singer WHERE 1 = 0"
    verdict = judge(gold, "SELECT name FROM singer WHERE 2 = 0", SINGER, config=INLINE)
    assert (verdict.exec_match, verdict.error) == (False, "empty")
    assert judge(gold, gold + " ;", SINGER, config=INLINE).exec_match  # the same query: right on any database


def test_verdicts_are_deterministic_for_a_seed() -> None:
    """Same seed, same databases: the run-to-run verdict (and where it differed) never changes."""
    gold, prediction = MISTAKES[1][1], MISTAKES[1][2]
    first = [judge(gold, prediction, SINGER, config=JudgeConfig(sandbox="inline", seed=seed)) for seed in range(4)]
    again = [judge(gold, prediction, SINGER, config=JudgeConfig(seed=seed)) for seed in range(4)]  # other process
    assert first == again


def test_synthesized_databases_are_deterministic_and_vary_by_seed() -> None:
    from ftbench.sql._synth import build_database, make_plan

    gold = "SELECT name FROM singer WHERE age > 20"
    plan = make_plan(SINGER, gold, gold)
    assert build_database(plan, 7, 0) == make_and_build(gold, 7, 0)
    assert build_database(plan, 7, 0) != build_database(plan, 8, 0)


def make_and_build(gold: str, seed: int, index: int) -> bytes:
    from ftbench.sql._synth import DATABASES, build_database, make_plan

    DATABASES.clear()  # really rebuild, not a cache hit
    return build_database(make_plan(SINGER, gold, gold), seed, index)


def test_predictions_that_share_a_plan_share_its_databases_and_the_golds_results(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Golds are run once per database, not once per prediction: three predictions of one example
    (same literals, same joins) fill its databases once and run the gold once on each."""
    from ftbench.sql import _engine, _synth

    filled: list[int] = []
    ran: list[str] = []
    fill, run = _synth._filled_database, _engine.run_query
    monkeypatch.setattr(_synth, "_filled_database", lambda *key: filled.append(key[2]) or fill(*key))
    monkeypatch.setattr(_engine, "run_query", lambda connection, sql, config: ran.append(sql) or run(
        connection, sql, config))
    _synth.DATABASES.clear()
    _engine._gold_outcome.cache_clear()  # type: ignore[attr-defined]
    _engine._open_cached.cache_clear()
    gold = "SELECT name FROM singer WHERE age > 23 ORDER BY name"
    predictions = ["SELECT name FROM singer WHERE 23 < age ORDER BY name", "select name from singer where age>23 "
                   "order by 1", "SELECT name FROM singer WHERE age > 23 ORDER BY name DESC"]
    verdicts = [judge(gold, prediction, SINGER, config=INLINE) for prediction in predictions]
    assert [verdict.exec_match for verdict in verdicts] == [True, True, False]
    assert sorted(filled) == list(range(INLINE.n_databases))  # each database filled once
    assert ran.count(gold) == INLINE.n_databases


def test_a_database_opened_again_is_a_copy_of_the_one_filled_first() -> None:
    from ftbench.sql._synth import DATABASES, build_database, make_plan, open_database

    gold = "SELECT name FROM singer WHERE age > 20"
    plan = make_plan(SINGER, gold, gold)
    DATABASES.clear()
    first, again = open_database(plan, 3, 1), open_database(plan, 3, 1)
    query = "SELECT * FROM singer ORDER BY rowid"
    assert first is not again and first.execute(query).fetchall() == again.execute(query).fetchall() != []
    restored = sqlite3.connect(":memory:")
    restored.deserialize(build_database(plan, 3, 1))
    assert restored.execute(query).fetchall() == first.execute(query).fetchall()
    assert hash(plan) == hash(make_plan(SINGER, gold, gold)) and plan.text == repr(plan)


def test_a_copied_schema_changes_apart_from_its_original() -> None:
    from ftbench.sql._schema import parse_context

    original = parse_context("CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name VARCHAR NOT NULL)")
    copy = original.copy()
    copy.table("singer").add("age", "INTEGER")
    copy.table("singer").not_null.add("age")
    copy.table("concert").add("year")
    assert set(original.tables) == {"singer"} and set(original.tables["singer"].columns) == {"singer_id", "name"}
    assert original.tables["singer"].not_null == {"singer_id", "name"}
    assert copy.tables["singer"].primary_key == ("singer_id",)


@pytest.mark.parametrize(("text", "number"), [
    ("7", 7), (" -7 ", -7), ("+7", 7), ("1_000", 1000), ("2.50", 2.5), ("1e3", 1000.0), ("007", 7),
    ("", None), ("7a", None), ("0x1F", None), ("France", None), ("1.2.3", None)])
def test_one_rule_says_which_literals_are_numbers(text: str, number: float | None) -> None:
    from ftbench.sql._numbers import as_number

    assert as_number(text) == number and type(as_number(text)) is type(number)
    assert as_number(5) == 5 and as_number(2.5) == 2.5


@pytest.mark.parametrize("text", ["inf", "-inf", "nan"])
def test_infinities_and_nan_read_as_floats(text: str) -> None:
    from ftbench.sql._numbers import as_number

    assert isinstance(as_number(text), float)

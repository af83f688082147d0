"""ViGGO meaning representations: the parser, the per-example scores, slot F1, and the file scorer."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from ftbench.data import VIGGO_SPLITS, load_viggo
from ftbench.errors import InputError
from ftbench.scoring import ScoreRun, score_file
from ftbench.viggo import (
    MeaningRepresentation,
    MRParseError,
    ViggoScore,
    ViggoScorer,
    f1_from_counts,
    is_valid_mr,
    micro_f1,
    parse_mr,
    score_mr,
)

from .conftest import mirror_dir

# Five slots: four (attribute, value) pairs plus the function.
GOLD = ("inform(name[Tom Clancy's The Division], esrb[M (for Mature)], "
        "genres[role-playing, shooter, tactical], has_multiplayer[yes])")
NESTED = "inform(name[Foo [Remastered]], platforms[PC])"
EMPTY_VALUE = "request_attribute(player_perspective[])"
DUPLICATE_FREE = "inform(name[X])"

# (gold, prediction, exact_match, mr_match, valid_mr, tp, fp, fn), counts worked out by hand.
CASES = {
    "identical": (GOLD, GOLD, True, True, True, 5, 0, 0),
    "surrounding whitespace": (GOLD, f"  {GOLD}\n", True, True, True, 5, 0, 0),
    "inner whitespace": (GOLD, "inform( name[ Tom Clancy's The Division ],esrb[M (for Mature)] , "
                               "genres[role-playing, shooter, tactical],has_multiplayer[yes] )",
                         False, True, True, 5, 0, 0),
    "attributes reordered": (GOLD, "inform(has_multiplayer[yes], genres[role-playing, shooter, tactical], "
                                   "name[Tom Clancy's The Division], esrb[M (for Mature)])",
                             False, True, True, 5, 0, 0),
    "changed value": (GOLD, GOLD.replace("has_multiplayer[yes]", "has_multiplayer[no]"),
                      False, False, True, 4, 1, 1),
    "value case differs": (GOLD, GOLD.replace("role-playing", "Role-playing"), False, False, True, 4, 1, 1),
    "missing attribute": (GOLD, GOLD.replace(" esrb[M (for Mature)],", ""), False, False, True, 4, 0, 1),
    "extra attribute": (GOLD, GOLD.replace("[yes])", "[yes], platforms[PC])"), False, False, True, 5, 1, 0),
    "wrong function": (GOLD, GOLD.replace("inform(", "give_opinion("), False, False, True, 4, 1, 1),
    "unknown function": (GOLD, GOLD.replace("inform(", "describe("), False, False, False, 4, 1, 1),
    "function case differs": (GOLD, GOLD.replace("inform(", "Inform("), False, False, False, 4, 1, 1),
    "unknown attribute": (GOLD, GOLD.replace("[yes])", "[yes], mood[happy])"), False, False, False, 5, 1, 0),
    "truncated output": (GOLD, GOLD[:60], False, False, False, 0, 0, 5),
    "trailing prose": (GOLD, f"{GOLD}\nThat is the meaning representation.", False, False, False, 0, 0, 5),
    "plain sentence": (GOLD, "The Division is a shooter.", False, False, False, 0, 0, 5),
    "empty prediction": (GOLD, "", False, False, False, 0, 0, 5),
    "comma list reordered inside a value": (GOLD, GOLD.replace("role-playing, shooter", "shooter, role-playing"),
                                            False, False, True, 4, 1, 1),
    "nested brackets in a value": (NESTED, NESTED, True, True, True, 3, 0, 0),
    "nested brackets, reordered": (NESTED, "inform(platforms[PC], name[Foo [Remastered]])",
                                   False, True, True, 3, 0, 0),
    "empty value": (EMPTY_VALUE, EMPTY_VALUE, True, True, True, 2, 0, 0),
    "empty value with spaces": (EMPTY_VALUE, "request_attribute(player_perspective[  ])",
                                False, True, True, 2, 0, 0),
    "empty value filled": (EMPTY_VALUE, "request_attribute(player_perspective[first person])",
                           False, False, True, 1, 1, 1),
    "empty value without brackets": (EMPTY_VALUE, "request_attribute(player_perspective)",
                                     False, False, False, 0, 0, 2),
    "repeated attribute": (DUPLICATE_FREE, "inform(name[X], name[X])", False, False, False, 2, 1, 0),
}


@pytest.mark.parametrize(("gold", "prediction", "exact", "mr", "valid", "tp", "fp", "fn"),
                         list(CASES.values()), ids=list(CASES))
def test_score_mr_table(gold: str, prediction: str, exact: bool, mr: bool, valid: bool,
                        tp: int, fp: int, fn: int) -> None:
    assert score_mr(gold, prediction) == ViggoScore(exact, mr, valid, tp, fp, fn)


def test_gold_that_does_not_parse_is_named_as_the_gold() -> None:
    with pytest.raises(MRParseError, match=r"gold MR does not parse.*never closed"):
        score_mr("inform(name[X]", "inform(name[X])")


def test_parse_keeps_source_order_and_trims_values() -> None:
    mr = parse_mr("  verify_attribute( name[ Little Big Adventure ], rating[average],platforms[PlayStation] )\n")
    assert mr == MeaningRepresentation(
        "verify_attribute",
        (("name", "Little Big Adventure"), ("rating", "average"), ("platforms", "PlayStation")))


@pytest.mark.parametrize(("text", "slots"), [
    ("inform(genres[action-adventure, shooter])", (("genres", "action-adventure, shooter"),)),
    ("inform(esrb[M (for Mature)], rating[good])", (("esrb", "M (for Mature)"), ("rating", "good"))),
    ("inform(name[Tom Clancy's The Division])", (("name", "Tom Clancy's The Division"),)),
    ("inform(name[Foo [Remastered]])", (("name", "Foo [Remastered]"),)),
    ("request_attribute(player_perspective[])", (("player_perspective", ""),)),
    ("inform()", ()),
])
def test_values_with_punctuation_parse_whole(text: str, slots: tuple[tuple[str, str], ...]) -> None:
    assert parse_mr(text).slots == slots


@pytest.mark.parametrize(("text", "message"), [
    ("", r"empty meaning representation"),
    ("   \n", r"empty meaning representation"),
    ("The game is great.", r"expected '\(' after the function name at column 5, found 'game"),
    ("inform name[X]", r"expected '\(' after the function name at column 8, found 'name\[X\]'"),
    ("(name[X])", r"expected a function name at column 1"),
    ("inform(name[X]", r"unbalanced parentheses: the '\(' at column 7 is never closed"),
    ("inform(name[X)", r"unbalanced brackets: the '\[' at column 12 is never closed"),
    ("inform(name[X]))", r"unexpected text after the closing '\)' at column 16"),
    ("inform(name[X]) and more", r"unexpected text after the closing '\)' at column 17, found 'and more'"),
    ("inform([X])", r"expected an attribute name at column 8"),
    ("inform(name[X], [Y])", r"expected an attribute name at column 17"),
    ("inform(name[X],)", r"expected an attribute name at column 16"),
    ("inform(name X)", r"expected '\[' after the attribute name 'name' at column 13"),
    ("inform(name[X] rating[Y])", r"expected ',' or '\)' after a slot at column 16, found 'rating"),
    ("inform(name[X]]", r"expected ',' or '\)' after a slot at column 15"),
])
def test_malformed_text_says_what_and_where(text: str, message: str) -> None:
    with pytest.raises(MRParseError, match=message):
        parse_mr(text)


def test_parse_error_is_a_value_error_and_quotes_long_text_shortened() -> None:
    with pytest.raises(ValueError, match=r"\.\.\. \(1006 characters\)"):
        parse_mr("inform(name[" + "x" * 994)


def test_str_is_the_canonical_text() -> None:
    assert str(parse_mr("inform( name[ X ],rating[good] )")) == "inform(name[X], rating[good])"


@pytest.mark.parametrize(("text", "valid"), [
    ("inform(name[X], rating[good])", True),
    ("request_attribute(player_perspective[])", True),
    ("describe(name[X])", False),
    ("inform(name[X], mood[happy])", False),
    ("inform(name[X], name[Y])", False),
    ("inform(name[X]", False),
])
def test_is_valid_mr(text: str, valid: bool) -> None:
    assert is_valid_mr(text) is valid


@pytest.mark.parametrize(("counts", "f1"), [
    ((0, 0, 0), 1.0),
    ((0, 2, 0), 0.0),
    ((0, 0, 2), 0.0),
    ((3, 1, 1), 0.75),
    ((4, 0, 0), 1.0),
])
def test_f1_from_counts(counts: tuple[int, int, int], f1: float) -> None:
    assert f1_from_counts(*counts) == pytest.approx(f1)


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        f1_from_counts(1, -1, 0)


# Row F1s 1.0, 0.0 and 0.5 (mean 0.5); summed counts tp=6, fp=1, fn=4 give micro F1 12/17.
CORPUS = [
    (GOLD, GOLD),
    ("request_explanation(rating[poor], genres[puzzle])", "no idea"),
    ("request_attribute(esrb[])", "request_attribute(esrb[E (for Everyone)])"),
]


def test_micro_f1_differs_from_the_mean_of_row_f1() -> None:
    scores = [score_mr(gold, prediction) for gold, prediction in CORPUS]
    assert [s.slot_f1 for s in scores] == [1.0, 0.0, 0.5]
    assert micro_f1(scores) == pytest.approx(12 / 17)


@pytest.mark.parametrize(("items", "f1"), [
    ([], 1.0),
    ([(0, 0, 0)], 1.0),
    ([(1, 1, 1)], 0.5),
    ([[1, 1, 1], (3, 0, 0)], 0.8),
    ([ViggoScore(True, True, True, 5, 0, 0), (0, 0, 5)], 2 / 3),
])
def test_micro_f1_accepts_scores_tuples_and_lists(items: list[ViggoScore | tuple[int, int, int]], f1: float) -> None:
    assert micro_f1(items) == pytest.approx(f1)


def test_scorer_row_columns() -> None:
    row = ViggoScorer().score({"gold": CORPUS[2][0], "prediction": CORPUS[2][1]})
    assert row == {"exact_match": False, "mr_match": False, "slot_f1": 0.5, "valid_mr": True,
                   "slot_tp": 1, "slot_fp": 1, "slot_fn": 1}


def test_scorer_summary_uses_micro_f1() -> None:
    scorer = ViggoScorer()
    rows = [scorer.score({"gold": gold, "prediction": prediction}) for gold, prediction in CORPUS]
    summary = scorer.summarize(rows)
    assert summary == pytest.approx({"exact_match": 1 / 3, "mr_match": 1 / 3, "slot_f1": 12 / 17,
                                     "valid_mr": 2 / 3})
    assert all(type(value) is float for value in summary.values())


def test_scorer_summary_of_no_rows_is_zero() -> None:
    assert ViggoScorer().summarize([]) == {"exact_match": 0.0, "mr_match": 0.0, "slot_f1": 0.0, "valid_mr": 0.0}


def test_scorer_rejects_a_gold_that_does_not_parse_quoting_it() -> None:
    with pytest.raises(InputError, match=r"row 7: gold MR does not parse.*'inform\(name\[X\]'"):
        ViggoScorer().score({"id": 7, "gold": "inform(name[X]", "prediction": "inform(name[X])"})


def test_scorer_survives_pickling() -> None:
    scorer = pickle.loads(pickle.dumps(ViggoScorer()))
    assert scorer.required == ("gold", "prediction")
    assert scorer.score({"gold": GOLD, "prediction": GOLD})["mr_match"] is True


def test_score_file_writes_rows_and_summary(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps({"gold": g, "prediction": p}) + "\n" for g, p in CORPUS))
    summary = score_file(ViggoScorer(), ScoreRun(source, target, progress=False)).summary
    assert summary["n"] == 3
    assert summary["slot_f1"] == pytest.approx(12 / 17)
    written = [json.loads(line) for line in target.read_text().splitlines()]
    assert [row["slot_f1"] for row in written] == [1.0, 0.0, 0.5]


def _viggo_mirror() -> Path:
    return mirror_dir() / "viggo"


@pytest.mark.skipif(not all((_viggo_mirror() / f"{split}.csv").is_file() for split in VIGGO_SPLITS),
                    reason=f"ViGGO mirror not found at {_viggo_mirror()} (set FTBENCH_DATA_DIR; CI has ../shared/data)")
@pytest.mark.parametrize("split", VIGGO_SPLITS)
def test_every_gold_mr_parses_and_is_valid(split: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTBENCH_DATA_DIR", str(mirror_dir()))
    examples = load_viggo(split)
    assert examples
    for example in examples:
        mr = parse_mr(example.meaning_representation)
        assert is_valid_mr(mr), example
        assert str(mr) == example.meaning_representation.strip(), example
        assert score_mr(example.meaning_representation, example.meaning_representation).mr_match

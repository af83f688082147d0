"""End to end through the real lm-eval CLI (subprocess): our tasks and metrics, run on the tiny model, and
scored exactly on a scripted model whose every answer (right, near-miss or wrong) is chosen by the test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ftbench.lmeval import installed_in_lm_eval, lm_eval_copy, tasks_dir

from .conftest import have_mirror, mirror_dir, require_installed
from .lmeval_runs import read_outputs, run_clis
from .scripted_model import ScriptedModel

pytestmark = pytest.mark.slow


def test_wheel_install_registers_tasks_with_lm_eval() -> None:
    """After `pip install .` (as in CI), our tasks also sit in lm-eval's own task tree, the same files as the
    package's, so no --include_path is needed (a throwaway wheel install is checked in test_lmeval_glue.py)."""
    if not installed_in_lm_eval():
        if require_installed():
            pytest.fail(f"ftbench tasks not found in {lm_eval_copy()}, lm-eval's own tasks folder")
        pytest.skip("ftbench is installed editable (tasks read from the checkout); CI checks the wheel install")
    for name in ("spider_sql/spider_sql.yaml", "viggo/viggo.yaml", "viggo/utils.py", "ftbench.yaml"):
        assert (lm_eval_copy() / name).read_bytes() == (tasks_dir() / name).read_bytes(), name


def test_lm_eval_cli_runs_both_tasks_on_an_in_process_model(hf_run: Path) -> None:
    """The `hf` backend end to end (what each metric is worth is checked with the scripted model below)."""
    results, samples = read_outputs(hf_run)
    assert {"exec_acc,none", "exact_match,none", "valid_sql,none"} <= set(results["results"]["spider_sql"])
    assert {"exact_match,none", "mr_match,none", "slot_f1,none", "valid_mr,none"} <= set(results["results"]["viggo"])
    assert len(samples["spider_sql"]) == len(samples["viggo"]) == 3


def test_ftbench_eval_runs_the_chat_variants_with_the_chat_template(hf_chat_run: Path) -> None:
    results, samples = read_outputs(hf_chat_run)
    assert "exec_acc,none" in results["results"]["spider_sql_chat"]
    assert "slot_f1,none" in results["results"]["viggo_chat"]
    first: dict[str, Any] = samples["spider_sql_chat"][0]
    prompt = first["arguments"]["gen_args_0"]["arg_0"]
    assert prompt.startswith("<|system|>\nYou are a powerful text-to-SQL model.")
    assert f"### Context:\n{first['doc']['context']}\n<|user|>\n{first['doc']['question']}\n<|assistant|>\n" in prompt


# --- known scores: a scripted model answers chosen examples right, others wrong in chosen ways -----------
# The first docs of each evaluation split, keyed by a cue from their prompt (the question, the sentence).
# Each reply's scores are derived by hand in the comment beside it; the tests compare lm-eval's numbers
# with these, so a metric, hook, filter or aggregation that goes wrong shows up as a wrong number.

SQL_SCRIPT: list[tuple[str, str, tuple[float, float, float]]] = [  # (question, reply, (exec, exact, valid))
    ("How many singers do we have?",
     "SELECT count(*) FROM singer", (1, 1, 1)),  # the gold
    ("Show name, country, age for all singers ordered by age from the oldest to the youngest.",
     " SELECT name ,  country ,  age FROM singer ORDER BY age DESC\n\n### Question:", (1, 1, 1)),  # gold + stop
    ("What is the average, minimum, and maximum age of all singers from France?",
     "SELECT avg(age), min(age), max(age) FROM singer WHERE country = 'France'", (1, 0, 1)),  # gold, respaced
    ("Show the name and the release year of the song by the youngest singer.",
     "SELECT song_name FROM singer ORDER BY age LIMIT 1", (0, 0, 1)),  # a column short
    ("What are all distinct countries where singers above age 20 are from?",
     "SELECT DISTINCT country FROM singer WHERE age >", (0, 0, 0)),  # does not parse
    ("Show all countries and the number of singers in each country.",
     "", (0, 0, 0)),  # nothing
    ("List all song names by singers above the average age.",
     "SELECT song_name FROM singer WHERE age  >  (SELECT avg(age) FROM singer)", (1, 1, 1)),  # the gold
]
LBA = "verify_attribute(name[Little Big Adventure], rating[average], has_multiplayer[no], platforms[PlayStation])"
DIVISION = ("inform(name[Tom Clancy's The Division], esrb[M (for Mature)], rating[average], genres[role-playing, "
            "shooter, tactical], player_perspective[third person], has_multiplayer[yes], platforms[PlayStation, "
            "Xbox, PC], available_on_steam[yes])")
VIGGO_GOLDS = [LBA, LBA, LBA, DIVISION, DIVISION, DIVISION,
               "inform(name[Super Bomberman], rating[average], genres[action, strategy], platforms[Nintendo, PC], "
               "available_on_steam[no], has_linux_release[no], has_mac_release[no])"]
# Slots: the (attribute, value) pairs plus the function; LBA has 5, DIVISION 9, Super Bomberman 8.
VIGGO_SCRIPT: list[tuple[str, str, tuple[float, float, float, list[int]]]] = [
    # (sentence cue, reply, (exact_match, mr_match, valid_mr, [tp, fp, fn]))
    ("I remember you saying you found Little Big Adventure to be average.",
     LBA, (1, 1, 1, [5, 0, 0])),  # the gold
    ("Earlier, you stated that you didn't have strong feelings about PlayStation's Little Big Adventure.",
     "verify_attribute(rating[average], name[Little Big Adventure], platforms[PlayStation], has_multiplayer[no])",
     (0, 1, 1, [5, 0, 0])),  # slots reordered
    ("I recall that you were not that fond of Little Big Adventure.",
     LBA.replace("verify_attribute(", "inform("), (0, 0, 1, [4, 1, 1])),  # wrong function
    ("Tom Clancy's The Division was released with a M (for Mature) rating.",
     DIVISION.replace("rating[average]", "rating[good]").replace(", available_on_steam[yes]", ""),
     (0, 0, 1, [7, 1, 2])),  # a value wrong (fp 1, fn 1), a slot missing (fn 1)
    ("Tom Clancy's The Division is an average role-playing tactical shooter",
     "Tom Clancy's The Division is an average game.", (0, 0, 0, [0, 0, 9])),  # not an MR
    ("If you are looking for a third person, role-playing tactical shooter with multiplayer",
     f"{DIVISION}\n\nTarget sentence:", (1, 1, 1, [9, 0, 0])),  # the gold, then the stop string
    ("Super Bomberman is a decent action-strategy game.",
     "inform(name[Super Bomberman], price[cheap])", (0, 0, 0, [2, 1, 6])),  # parses, unknown attribute
]
LIMIT = len(SQL_SCRIPT)
assert len(VIGGO_SCRIPT) == LIMIT  # one lm-eval run scores both tasks with one --limit
# Micro slot F1 = 2·tp / (2·tp + fp + fn) over the summed counts: tp 32, fp 3, fn 18 -> 64 / 85.
VIGGO_SLOT_F1 = 64 / 85


def _scripted_args(model: ScriptedModel, chat: bool) -> list[str]:
    if chat:
        return ["--model", "local-chat-completions", "--model_args",
                f"model=scripted,base_url={model.url}/chat/completions,max_retries=1", "--apply_chat_template"]
    return ["--model", "local-completions", "--model_args",
            f"model=scripted,base_url={model.url}/completions,tokenizer_backend=none,tokenized_requests=False,"
            "max_retries=1"]


@dataclass(frozen=True)
class ScriptedRun:
    sql_task: str
    viggo_task: str
    out: Path  # lm-eval's --output_path
    model: ScriptedModel  # stopped; its recorded requests remain


def _script(chat: bool) -> list[tuple[str, str]]:
    """The scripted model's (cue, reply) pairs. Chat models wrap code in fences; the chat replies do too (the tasks
    must read the answer out of them)."""
    fence = (lambda reply: f"```sql\n{reply}\n```") if chat else (lambda reply: reply)
    return [(cue, fence(reply)) for cue, reply, _ in SQL_SCRIPT] + [(cue, reply) for cue, reply, _ in VIGGO_SCRIPT]


def _tasks(chat: bool) -> tuple[str, str]:
    return ("spider_sql_chat", "viggo_chat") if chat else ("spider_sql", "viggo")


@pytest.fixture(scope="module")
def scripted_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, ScriptedRun]:
    """`ftbench eval` on the first docs of both tasks against the scripted model, keyed by ``chat``: completion tasks
    through local-completions, chat variants through local-chat-completions (bare `lm_eval` is run by ``hf_run``).
    The two runs, each against a scripted model of its own, go at once."""
    if not have_mirror():
        pytest.skip(f"dataset mirror not found at {mirror_dir()}")
    outs = {chat: tmp_path_factory.mktemp("scripted-chat" if chat else "scripted") for chat in (False, True)}
    with ScriptedModel(_script(False)) as completions, ScriptedModel(_script(True)) as chat_model:
        models = {False: completions, True: chat_model}
        run_clis([(["ftbench", "eval", *_scripted_args(models[chat], chat), "--tasks", ",".join(_tasks(chat)),
                    "--limit", str(LIMIT), "--log_samples", "--output_path", str(outs[chat] / "out")], outs[chat])
                  for chat in (False, True)], timeout=300)
    return {chat: ScriptedRun(*_tasks(chat), outs[chat] / "out", models[chat]) for chat in (False, True)}


@pytest.fixture(scope="module", params=[False, True], ids=["completions", "chat"])
def scripted_run(request: pytest.FixtureRequest, scripted_runs: dict[bool, ScriptedRun]) -> ScriptedRun:
    return scripted_runs[request.param]


def _by_doc(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(samples, key=lambda sample: sample["doc_id"])


def test_spider_sql_scores_of_a_model_right_on_a_known_subset(scripted_run: ScriptedRun) -> None:
    task = scripted_run.sql_task
    results, samples = read_outputs(scripted_run.out)
    docs = _by_doc(samples[task])
    assert [sample["doc"]["question"] for sample in docs] == [question for question, _, _ in SQL_SCRIPT]
    assert [(s["exec_acc"], s["exact_match"], s["valid_sql"]) for s in docs] == [
        tuple(map(float, scores)) for _, _, scores in SQL_SCRIPT]
    metrics = results["results"][task]
    # 4 of 7 execute like the gold, 3 of 7 are the gold character for character, 5 of 7 parse.
    assert (metrics["exec_acc,none"], metrics["exact_match,none"], metrics["valid_sql,none"]) == (
        pytest.approx(4 / 7), pytest.approx(3 / 7), pytest.approx(5 / 7))


def test_viggo_scores_of_a_model_right_on_a_known_subset(scripted_run: ScriptedRun) -> None:
    task = scripted_run.viggo_task
    results, samples = read_outputs(scripted_run.out)
    docs = _by_doc(samples[task])
    assert [sample["doc"]["meaning_representation"] for sample in docs] == VIGGO_GOLDS
    assert [(s["exact_match"], s["mr_match"], s["valid_mr"], s["slot_f1"]) for s in docs] == [
        (float(exact), float(mr), float(valid), slots) for _, _, (exact, mr, valid, slots) in VIGGO_SCRIPT]
    metrics = results["results"][task]
    # exact: docs 0 and 5 (2/7); same MR: 0, 1, 5 (3/7); valid: all but the prose and the unknown attribute (5/7).
    assert (metrics["exact_match,none"], metrics["mr_match,none"], metrics["valid_mr,none"],
            metrics["slot_f1,none"]) == (pytest.approx(2 / 7), pytest.approx(3 / 7), pytest.approx(5 / 7),
                                         pytest.approx(VIGGO_SLOT_F1))


def test_the_samples_log_the_answers_that_were_scored(scripted_run: ScriptedRun) -> None:
    """``filtered_resps`` hold the answer read off each generation (stop string cut, the chat replies' code fence
    dropped), which is what the metrics scored; ``resps`` keep the raw generation."""
    _, samples = read_outputs(scripted_run.out)
    sql, viggo = _by_doc(samples[scripted_run.sql_task]), _by_doc(samples[scripted_run.viggo_task])
    assert [s["filtered_resps"] for s in sql] == [[reply.split("\n\n")[0].strip()] for _, reply, _ in SQL_SCRIPT]
    assert [s["filtered_resps"] for s in viggo] == [[reply.split("\n\n")[0]] for _, reply, _ in VIGGO_SCRIPT]
    assert all(s["filter"] == "none" for s in sql + viggo)
    if "chat" in scripted_run.sql_task:
        assert sql[0]["resps"] == [["```sql\nSELECT count(*) FROM singer\n```"]]


def test_generation_settings_reach_the_model(scripted_run: ScriptedRun) -> None:
    """The tasks' stop strings and greedy decoding are what the server is asked for."""
    assert len(scripted_run.model.requests) == 2 * LIMIT
    for body in scripted_run.model.requests:
        assert body["stop"] == ["\n\n", "###"]
        assert body["temperature"] == 0

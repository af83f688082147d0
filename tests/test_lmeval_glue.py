"""The pieces between lm-eval and ftbench: task discovery, answer extraction, the eval pass-through."""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import tomllib

from ftbench import prompts
from ftbench.lmeval import TASK_NAMES, hooks, package_tasks_dir, tasks_dir
from ftbench.lmeval.run import requested_tasks, task_manager_options


@pytest.mark.parametrize(("generation", "answer"), [
    ("SELECT count(*) FROM singer", "SELECT count(*) FROM singer"),
    ("  SELECT name FROM t  \n", "SELECT name FROM t"),
    ("```sql\nSELECT name\nFROM t\nWHERE x = 1\n```", "SELECT name FROM t WHERE x = 1"),
    ("```\ninform(name[X])\n```\nHope this helps!", "inform(name[X])"),
    ("SELECT a,\n       b\n  FROM t", "SELECT a, b FROM t"),
    ("SELECT a FROM t###", "SELECT a FROM t"),
    ("inform(name[X])\n\nThis sentence informs", "inform(name[X])"),
    ("\n\nSELECT 1", "SELECT 1"),
    ("", ""),
    ("\n\n", ""),
])
def test_extract_answer(generation: str, answer: str) -> None:
    assert hooks.extract_answer(generation) == answer


@pytest.mark.parametrize(("argv", "tasks"), [
    (["--model", "hf", "--tasks", "spider_sql,viggo"], ["spider_sql", "viggo"]),
    (["--tasks=viggo_chat", "--limit", "3"], ["viggo_chat"]),
    (["-t", "ftbench"], ["ftbench"]),
    (["run", "--tasks", "spider_sql", "--tasks", "hellaswag"], ["spider_sql", "hellaswag"]),
    (["--model", "hf"], []),
])
def test_requested_tasks(argv: list[str], tasks: list[str]) -> None:
    assert requested_tasks(argv) == tasks


def test_only_our_tasks_skip_lm_evals_builtin_index(tmp_path: Path) -> None:
    assert task_manager_options(["spider_sql", "viggo_chat"], tmp_path) == {
        "include_path": [tmp_path], "include_defaults": False}


def test_other_tasks_keep_the_builtins_and_add_ours_from_a_checkout(tmp_path: Path) -> None:
    assert task_manager_options(["spider_sql", "hellaswag"], tmp_path) == {
        "include_path": [tmp_path], "include_defaults": True}
    assert task_manager_options([], tmp_path)["include_defaults"] is True


def test_task_folder_defines_every_task_and_the_group() -> None:
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(tasks_dir()), include_defaults=False)
    assert set(TASK_NAMES) <= set(manager.all_tasks)
    assert "ftbench" in manager.all_groups


REPO_ROOT = Path(__file__).resolve().parents[1]


def test_every_task_folder_item_ships_in_the_tasks_package() -> None:
    """pyproject maps each item of lm_eval_tasks/ into ftbench/tasks/ (hatch maps a source only once)."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    mapped = config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    items = {p.name for p in (REPO_ROOT / "lm_eval_tasks").iterdir() if p.name != "__pycache__"}
    assert {f"lm_eval_tasks/{name}": f"ftbench/tasks/{name}" for name in items}.items() <= mapped.items()
    assert mapped["lm_eval_tasks"] == "lm_eval/tasks/ftbench"


def test_the_entry_point_names_a_package_whose_folder_holds_the_yamls() -> None:
    """lm-eval's proposed task plugins (PR #4015) import the entry point's package and scan its folder."""
    from lm_eval.tasks import TaskManager

    [entry] = [ep for ep in entry_points(group="lm_eval.tasks") if ep.name == "ftbench"]
    assert entry.value == "ftbench.tasks", "a package, no :attr"
    folder = Path(entry.load().__file__).parent
    assert folder == package_tasks_dir()
    if not (folder / "spider_sql" / "spider_sql.yaml").is_file():
        if os.environ.get("FTBENCH_REQUIRE_INSTALLED"):
            pytest.fail(f"{folder} holds no task YAMLs after the wheel install")
        pytest.skip("editable install: the YAMLs stay in lm_eval_tasks/; CI checks the wheel install")
    manager = TaskManager(include_path=str(folder), include_defaults=False)
    assert set(TASK_NAMES) <= set(manager.all_tasks)
    shipped = sorted(p.relative_to(folder) for p in folder.rglob("*") if p.suffix in (".yaml", ".py", ".md"))
    assert [p for p in shipped if p.name != "__init__.py"] == sorted(
        p.relative_to(tasks_dir()) for p in tasks_dir().rglob("*") if p.suffix in (".yaml", ".py", ".md"))
    for relative in shipped:
        if relative.name != "__init__.py":
            assert (folder / relative).read_bytes() == (tasks_dir() / relative).read_bytes(), relative


def _load(name: str, data_env: Path) -> Any:
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(tasks_dir()), include_defaults=False)
    return manager.load([name])["tasks"][name]


@pytest.mark.parametrize("name", ["spider_sql", "spider_sql_chat", "viggo", "viggo_chat"])
def test_tasks_carry_a_version_and_greedy_generation(name: str, data_env: Path) -> None:
    task = _load(name, data_env)
    assert task.config.metadata["version"] >= 1.0
    kwargs = task.config.generation_kwargs
    assert kwargs["do_sample"] is False and kwargs["max_gen_toks"] >= 128
    assert tuple(kwargs["until"]) == hooks.STOP_SEQUENCES


def test_completion_tasks_prompt_with_the_single_source(data_env: Path) -> None:
    sql = _load("spider_sql", data_env)
    doc = sql.test_docs()[0]
    assert len(sql.test_docs()) == 568
    assert sql.doc_to_text(doc) == prompts.sql_completion_prompt(doc["question"], doc["context"])
    viggo = _load("viggo", data_env)
    assert len(viggo.test_docs()) == 1083
    assert viggo.doc_to_text(viggo.test_docs()[0]) == prompts.viggo_completion_prompt(viggo.test_docs()[0]["target"])


def test_chat_tasks_put_the_context_in_the_system_message(data_env: Path) -> None:
    task = _load("spider_sql_chat", data_env)
    doc = task.test_docs()[3]
    rendered = task.fewshot_context(doc, 0, apply_chat_template=True, chat_template=lambda messages, **_: messages)
    assert rendered == prompts.sql_chat_messages(doc["question"], doc["context"])


def test_viggo_chat_messages_match_the_training_format(data_env: Path) -> None:
    task = _load("viggo_chat", data_env)
    doc = task.test_docs()[0]
    rendered = task.fewshot_context(doc, 0, apply_chat_template=True, chat_template=lambda messages, **_: messages)
    assert rendered == prompts.viggo_chat_messages(doc["target"])


def test_metadata_chooses_the_judge_and_the_samples_record_it(data_env: Path) -> None:
    """lm-eval ``--metadata '{"db_dir": ..., "judge": ...}'`` reaches the docs; each doc is scored with its judge."""
    from lm_eval.tasks import TaskManager

    db_dir = data_env / "spider" / "database"
    manager = TaskManager(include_path=str(tasks_dir()), include_defaults=False,
                          metadata={"db_dir": str(db_dir), "judge": "real-db"})
    task = manager.load(["spider_sql"])["tasks"]["spider_sql"]
    doc = next(doc for doc in task.test_docs() if doc["db_id"] == "concert_singer")
    assert (doc["judge"], doc["db_dir"]) == ("real-db", str(db_dir.resolve()))
    # On the real database alone, a query that merely returns the same rows there is right; not on the context's.
    row = {**doc, "answer": "SELECT count(*) FROM singer", "context": "CREATE TABLE singer (Id VARCHAR)"}
    prediction = ["SELECT count(*) FROM singer WHERE Singer_ID > 0"]
    assert hooks.spider_sql_results(row, prediction)["exec_acc"] == 1.0
    assert hooks.spider_sql_results({**row, "judge": "context", "db_dir": ""}, prediction)["exec_acc"] == 0.0
    assert hooks.spider_sql_docs()["val"][0]["judge"] == "context"


@pytest.mark.parametrize(("metadata", "message"), [
    ({"judge": "oracle"}, "metadata judge must be one of"),
    ({"judge": "test-suite"}, "needs a db_dir"),
    ({"db_dir": "/no/such/folder"}, "is not a folder"),
])
def test_bad_judge_metadata_is_a_clear_error(metadata: dict[str, str], message: str, data_env: Path) -> None:
    from ftbench.errors import InputError

    with pytest.raises(InputError, match=message):
        hooks.spider_sql_docs(**metadata)

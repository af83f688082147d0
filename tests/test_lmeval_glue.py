"""Between lm-eval and ftbench: task packaging and discovery, the answer-extraction filter, `ftbench eval`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from ftbench import prompts
from ftbench.lmeval import TASK_NAMES, hooks, installed_in_lm_eval, tasks_dir
from ftbench.lmeval.run import main, task_manager_options

REPO_ROOT = Path(__file__).resolve().parents[1]


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


def test_extract_answers_filters_every_response_and_reads_a_missing_one_as_no_answer() -> None:
    responses = [["```sql\nSELECT 1\n```", "SELECT 2\n\n###"], [None]]
    assert hooks.extract_answers(responses, [{}, {}]) == [["SELECT 1", "SELECT 2"], [""]]


def test_the_tasks_filter_extracts_the_answer_that_process_results_scores(data_env: Path) -> None:
    """lm-eval runs the YAML's filter_list: ``filtered_resps`` hold the extracted answer, under the key ``none``."""
    from lm_eval.api.instance import Instance

    for name in ("spider_sql_chat", "viggo"):
        task = _load(name, data_env)
        instance = Instance(request_type="generate_until", doc={}, arguments=("prompt", {}), idx=0)
        instance.resps = ["```\nSELECT a,\n  b FROM t\n```\nHope this helps!"]
        for pipeline in task._filters:
            pipeline.apply([instance])
        assert instance.filtered_resps == {"none": "SELECT a, b FROM t"}, name


def test_only_our_tasks_skip_lm_evals_builtin_index(tmp_path: Path) -> None:
    assert task_manager_options(["spider_sql", "viggo_chat"], tmp_path) == {
        "include_path": [tmp_path], "include_defaults": False}


def test_other_tasks_keep_the_builtins_and_add_ours(tmp_path: Path) -> None:
    assert task_manager_options(["spider_sql", "hellaswag"], tmp_path) == {
        "include_path": [tmp_path], "include_defaults": True}
    assert task_manager_options([], tmp_path)["include_defaults"] is True


def test_a_users_include_path_is_indexed_beside_ours(tmp_path: Path) -> None:
    assert task_manager_options(["viggo"], tmp_path, "mine")["include_path"] == [tmp_path, Path("mine")]


@pytest.mark.slow
def test_ftbench_eval_runs_our_tasks_through_lm_evals_api_and_patches_nothing(
        tmp_path: Path, data_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In-process, as the demo runs it: results and samples written where lm-eval's CLI writes them, and lm-eval's
    TaskManager still lm-eval's own class afterwards (version 1.0 replaced it process-wide)."""
    import lm_eval.tasks

    original, argv = lm_eval.tasks.TaskManager, list(sys.argv)
    assert main(["--model", "dummy", "--tasks", "viggo", "--limit", "2", "--log_samples",
                 "--output_path", str(tmp_path / "out")]) == 0
    assert lm_eval.tasks.TaskManager is original and sys.argv == argv
    [results] = (tmp_path / "out").rglob("results_*.json")
    [samples] = (tmp_path / "out").rglob("samples_viggo_*.jsonl")
    assert json.loads(results.read_text())["configs"]["viggo"]["metadata"]["version"] == 2.0
    assert [json.loads(line)["filtered_resps"] for line in samples.read_text().splitlines()] == [["lol"], ["lol"]]
    assert "viggo" in capsys.readouterr().out  # lm-eval's results table


def test_ftbench_eval_hands_other_tasks_to_lm_evals_cli_with_our_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    import lm_eval.__main__

    seen: list[list[str]] = []
    monkeypatch.setattr(lm_eval.__main__, "cli_evaluate", lambda: seen.append(list(sys.argv)))
    assert main(["--model", "hf", "--tasks", "spider_sql,hellaswag"]) == 0
    ours = [] if installed_in_lm_eval() else ["--include_path", str(tasks_dir())]
    assert seen == [["lm_eval", "--model", "hf", "--tasks", "spider_sql,hellaswag", *ours]]


def test_ftbench_eval_refuses_a_second_include_path_it_cannot_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    import lm_eval.__main__

    from ftbench.errors import InputError

    monkeypatch.setattr(lm_eval.__main__, "cli_evaluate", lambda: pytest.fail("lm-eval ran"))
    monkeypatch.setattr("ftbench.lmeval.run.installed_in_lm_eval", lambda: False)
    with pytest.raises(InputError, match="lm-eval takes one --include_path"):
        main(["--tasks", "spider_sql,hellaswag", "--include_path", "mine"])


def test_task_folder_defines_every_task_and_the_group() -> None:
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(tasks_dir()), include_defaults=False)
    assert set(TASK_NAMES) <= set(manager.all_tasks)
    assert "ftbench" in manager.all_groups


def test_the_entry_point_names_the_package_that_holds_the_yamls() -> None:
    """lm-eval's proposed task plugins (PR #4015) import the entry point's package and scan its folder."""
    from lm_eval.tasks import TaskManager

    [entry] = [ep for ep in entry_points(group="lm_eval.tasks") if ep.name == "ftbench"]
    assert entry.value == "ftbench.tasks", "a package, no :attr"
    folder = Path(entry.load().__file__).parent
    assert folder == tasks_dir()
    manager = TaskManager(include_path=str(folder), include_defaults=False)
    assert set(TASK_NAMES) <= set(manager.all_tasks)


@pytest.mark.slow
def test_an_edited_yaml_is_what_ftbench_eval_loads_in_an_editable_install(tmp_path: Path) -> None:
    """From a checkout installed with ``pip install -e .``, an edit to a task YAML takes effect at once (version
    1.0 kept loading a copy inside lm-eval's folder). A real editable install into a throwaway venv (CI installs
    ftbench as a wheel), beside a copy of lm-eval's code whose task folder holds no copy of ours."""
    import lm_eval

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True, timeout=60).stdout.strip())
    # This environment's packages (lm-eval's dependencies, hatchling) after the venv's own, as a last .pth line:
    # the editable install's path and the lm-eval copy below come first.
    (site / "zz_parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                                "--no-build-isolation", "-e", str(REPO_ROOT)], capture_output=True, text=True,
                               timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    shutil.copytree(Path(lm_eval.__file__).parent, site / "lm_eval",
                    ignore=_without_builtin_tasks(Path(lm_eval.__file__).parent / "tasks"))
    yaml_file = REPO_ROOT / "src" / "ftbench" / "tasks" / "viggo" / "viggo_chat.yaml"
    original = yaml_file.read_bytes()
    try:
        yaml_file.write_bytes(original.replace(b"\n  version: ", b"\n  version: 9.5 # "))
        probe = subprocess.run([str(python), "-c", _EDITABLE_PROBE], cwd=tmp_path, capture_output=True, text=True,
                               timeout=300)
    finally:
        yaml_file.write_bytes(original)
    assert probe.returncode == 0, probe.stderr[-2000:]
    found = json.loads(probe.stdout.splitlines()[-1])
    editable = str(REPO_ROOT / "src" / "ftbench" / "__init__.py")
    assert found["modules"] == [editable, str(site / "lm_eval" / "__init__.py")]
    assert found["copy_in_lm_eval"] is False
    assert found["version"] == 9.5


_EDITABLE_PROBE = """
import json, ftbench, lm_eval
from lm_eval.tasks import TaskManager
from ftbench.lmeval import installed_in_lm_eval, tasks_dir
from ftbench.lmeval.run import task_manager_options
manager = TaskManager(**task_manager_options(["viggo_chat"], tasks_dir()))
print(json.dumps({"modules": [ftbench.__file__, lm_eval.__file__], "copy_in_lm_eval": installed_in_lm_eval(),
                  "version": manager.task_index["viggo_chat"].cfg["metadata"]["version"]}))
"""


def _build(version: str, out: Path) -> Path:
    """A wheel of this checkout built by hatchling, as ``pip install`` (``standard``) or ``pip install -e``
    (``editable``) builds it."""
    from hatchling.builders.wheel import WheelBuilder

    [wheel] = WheelBuilder(str(REPO_ROOT)).build(directory=str(out), versions=[version])
    return Path(wheel)


def _task_sources() -> dict[str, bytes]:
    folder = REPO_ROOT / "src" / "ftbench" / "tasks"
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.suffix in (".yaml", ".md", ".py") and path.name != "__init__.py"
            and "__pycache__" not in path.parts}


def test_the_wheel_ships_the_task_files_once_as_package_data_and_copies_them_into_lm_eval(tmp_path: Path) -> None:
    sources = _task_sources()
    assert {"ftbench.yaml", "spider_sql/spider_sql.yaml", "viggo/utils.py", "viggo/README.md"} <= set(sources)
    with zipfile.ZipFile(_build("standard", tmp_path)) as wheel:
        for relative, content in sources.items():
            assert wheel.read(f"ftbench/tasks/{relative}") == content, relative
            assert wheel.read(f"lm_eval/tasks/ftbench/{relative}") == content, relative
        copied = {name for name in wheel.namelist() if name.startswith("lm_eval/")}
    assert copied == {f"lm_eval/tasks/ftbench/{relative}" for relative in sources}


def test_an_editable_install_puts_nothing_in_lm_evals_folder(tmp_path: Path) -> None:
    with zipfile.ZipFile(_build("editable", tmp_path)) as wheel:
        assert [name for name in wheel.namelist() if name.startswith("lm_eval/")] == []


@pytest.mark.slow
def test_a_wheel_install_registers_the_tasks_with_bare_lm_eval(tmp_path: Path, data_env: Path) -> None:
    """Install the wheel (``pip install --target``) beside a copy of lm-eval's code without its built-in tasks, then
    ask lm-eval there, with no --include_path: ``lm_eval ls tasks`` and the TaskManager a bare ``lm_eval --tasks``
    builds must know our tasks, from lm-eval's own folder, with their hooks and filter resolved."""
    import lm_eval

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site),
                    str(_build("standard", tmp_path / "dist"))], check=True, capture_output=True, timeout=300)
    shutil.copytree(Path(lm_eval.__file__).parent, site / "lm_eval", dirs_exist_ok=True,
                    ignore=_without_builtin_tasks(Path(lm_eval.__file__).parent / "tasks"))
    env = {**os.environ, "PYTHONPATH": str(site), "FTBENCH_DATA_DIR": str(data_env)}
    listed = subprocess.run([sys.executable, "-m", "lm_eval", "ls", "tasks"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert all(name in listed.stdout for name in TASK_NAMES), listed.stdout[-2000:]
    probe = subprocess.run([sys.executable, "-c", _WHEEL_PROBE], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr[-2000:]
    found = json.loads(probe.stdout.splitlines()[-1])
    assert found["modules"] == [str(site / "ftbench" / "__init__.py"), str(site / "lm_eval" / "__init__.py")]
    assert found["yaml"] == str(site / "lm_eval" / "tasks" / "ftbench" / "spider_sql" / "spider_sql.yaml")
    assert found["version"] == 4.0 and found["filtered"] == "SELECT 1" and found["docs"] == 568


_WHEEL_PROBE = """
import json, ftbench, lm_eval
from lm_eval.api.instance import Instance
from lm_eval.tasks import TaskManager
manager = TaskManager()
task = manager.load(["spider_sql"])["tasks"]["spider_sql"]
instance = Instance(request_type="generate_until", doc={}, arguments=("p", {}), idx=0)
instance.resps = ["```sql\\nSELECT 1\\n```"]
for pipeline in task._filters:
    pipeline.apply([instance])
print(json.dumps({"modules": [ftbench.__file__, lm_eval.__file__], "docs": len(task.test_docs()),
                  "yaml": str(manager.task_index["spider_sql"].yaml_path), "version": task.config.metadata["version"],
                  "filtered": instance.filtered_resps["none"]}))
"""


def _without_builtin_tasks(tasks: Path) -> Callable[[str, list[str]], set[str]]:
    """copytree ``ignore``: lm-eval's code, but none of its ~14k built-in task folders (they take long to index)."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        return {name for name in names if Path(folder) == tasks and (tasks / name).is_dir()} | {"__pycache__"}
    return ignore


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

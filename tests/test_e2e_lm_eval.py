"""End to end through the real lm-eval CLI (subprocess) with the tiny model: our tasks, our metrics."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ftbench.lmeval import hooks, is_installed_in_lm_eval, tasks_dir
from ftbench.sql import exact_match, is_valid_sql
from ftbench.viggo import score_mr

from .lmeval_runs import read_outputs

pytestmark = pytest.mark.slow


def test_wheel_install_registers_tasks_with_lm_eval() -> None:
    """After `pip install .`, our tasks sit in lm-eval's own task tree, so no --include_path is needed."""
    if not is_installed_in_lm_eval(tasks_dir()):
        if os.environ.get("FTBENCH_REQUIRE_INSTALLED"):
            pytest.fail(f"ftbench tasks found at {tasks_dir()}, not inside lm-eval's tasks folder")
        pytest.skip("ftbench is installed editable (tasks read from the checkout); CI checks the wheel install")
    assert (tasks_dir() / "spider_sql" / "spider_sql.yaml").is_file()


def test_lm_eval_cli_scores_both_tasks(hf_run: Path) -> None:
    results, samples = read_outputs(hf_run)
    assert {"exec_acc,none", "exact_match,none", "valid_sql,none"} <= set(results["results"]["spider_sql"])
    assert {"exact_match,none", "mr_match,none", "slot_f1,none", "valid_mr,none"} <= set(results["results"]["viggo"])
    assert len(samples["spider_sql"]) == len(samples["viggo"]) == 3
    for sample in samples["spider_sql"]:
        prediction = hooks.extract_answer(sample["filtered_resps"][0])
        assert sample["exact_match"] == float(exact_match(sample["doc"]["answer"], prediction))
        assert sample["valid_sql"] == float(is_valid_sql(prediction))
    for sample in samples["viggo"]:
        score = score_mr(sample["doc"]["meaning_representation"], hooks.extract_answer(sample["filtered_resps"][0]))
        assert sample["mr_match"] == float(score.mr_match)
        assert sample["slot_f1"] == [score.tp, score.fp, score.fn]


def test_ftbench_eval_runs_the_chat_variants_with_the_chat_template(hf_chat_run: Path) -> None:
    results, samples = read_outputs(hf_chat_run)
    assert "exec_acc,none" in results["results"]["spider_sql_chat"]
    assert "slot_f1,none" in results["results"]["viggo_chat"]
    first: dict[str, Any] = samples["spider_sql_chat"][0]
    prompt = first["arguments"]["gen_args_0"]["arg_0"]
    assert prompt.startswith("<|system|>\nYou are a powerful text-to-SQL model.")
    assert f"### Context:\n{first['doc']['context']}\n<|user|>\n{first['doc']['question']}\n<|assistant|>\n" in prompt



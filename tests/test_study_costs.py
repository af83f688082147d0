"""The study's costs, computed by ftbench's cost code from the runs' inputs, and the page that shows them."""

from __future__ import annotations

import argparse
import importlib.util
import re
import shlex
import subprocess
import sys
from decimal import Decimal
from types import ModuleType

import pytest
import yaml

from ftbench.finetune.study import (
    LORA_NAME,
    LORA_RUNS,
    OPENAI_NAME,
    OPENAI_RUNS,
    RunCost,
    TaskCosts,
    cost_table,
    study_costs,
    to_cents,
)

from .conftest import REPO_ROOT

PAGE = REPO_ROOT / "docs" / "reproduction.md"
MODELS_YAML = REPO_ROOT / "docs" / "study_models.yaml"
TABLE_BEGIN = "<!-- study-costs:begin (python -m ftbench.finetune.study) -->"
TABLE_END = "<!-- study-costs:end -->"
TASKS = {"spider_sql", "spider_sql_chat", "viggo", "viggo_chat"}


def costs_by_task() -> dict[str, TaskCosts]:
    return {task.lora.task: task for task in study_costs()}


# The study's published inputs and dollars. By hand: 7 h × $0.475 = $3.325 and 9 h × $0.475 = $4.275, which the
# study wrote as $3.32 and $4.27 (the half cent dropped); 1,498,750 and 3,256,250 trained tokens × $0.008/1K
# are $11.99 and $26.05 exactly.
@pytest.mark.parametrize(("task", "a40_hours", "trained_tokens", "lora_usd", "openai_usd"), [
    ("spider_sql", 7, 1_498_750, "3.32", "11.99"),
    ("viggo", 9, 3_256_250, "4.27", "26.05"),
])
def test_the_studys_inputs_priced_by_ftbench_give_its_dollars(task: str, a40_hours: int, trained_tokens: int,
                                                             lora_usd: str, openai_usd: str) -> None:
    [lora] = [run for run in LORA_RUNS if run.task == task]
    [openai] = [run for run in OPENAI_RUNS if run.task == task]
    assert (lora.wall_hours, lora.gpu_count, lora.gpu_name, lora.price_per_gpu_hour) == (a40_hours, 1, "NVIDIA A40",
                                                                                         0.475)
    assert (openai.model, openai.trained_tokens) == ("gpt-3.5-turbo-0613", trained_tokens)
    costs = costs_by_task()[task]
    assert (costs.lora.usd, costs.openai.usd) == (Decimal(lora_usd), Decimal(openai_usd))


def test_openai_costs_several_times_lora() -> None:
    ratios = {task: round(costs.ratio, 2) for task, costs in costs_by_task().items()}
    assert ratios == {"spider_sql": Decimal("3.61"), "viggo": Decimal("6.10")}


def test_inputs_name_what_was_priced() -> None:
    costs = costs_by_task()["viggo"]
    assert costs.lora.inputs == "9 GPU-h (1 × NVIDIA A40) × $0.475/GPU-h"
    assert costs.openai.inputs.startswith("3,256,250 trained tokens × $0.008/1K (gpt-3.5-turbo-0613")


@pytest.mark.parametrize(("usd", "cents"), [
    (7 * 0.475, "3.32"),   # 3.3249999999999997 as a float
    (3.325, "3.32"),       # the double just above 3.325: truncation still drops the half cent
    (9 * 0.475, "4.27"),
    (4.275, "4.27"),       # half-up would give 4.28
    (0.29, "0.29"),        # 0.28999999999999998 as a double: no cent lost to representation
    (11.99, "11.99"),
])
def test_truncation_to_cents_ignores_float_representation(usd: float, cents: str) -> None:
    assert to_cents(usd) == Decimal(cents)


def test_table_rows() -> None:
    lines = cost_table().splitlines()
    assert lines[0] == "| task | run | inputs | computed $ | study's $ | OpenAI ÷ LoRA |"
    assert len(lines) == 2 + 4
    assert lines[3].endswith("| $11.99 | $11.99 | 3.61× |")
    assert lines[5].endswith("| $26.05 | $26.05 | 6.10× |")


def test_table_of_given_costs() -> None:
    lora = RunCost("t", LORA_NAME, "1 GPU-h", Decimal("2.00"), Decimal("2.00"))
    openai = RunCost("t", OPENAI_NAME, "1 token", Decimal("5.00"), Decimal("5.01"))
    assert cost_table([TaskCosts(lora, openai)]).splitlines()[-1] == (
        f"| `t` | {OPENAI_NAME} | 1 token | $5.00 | $5.01 | 2.50× |")


def test_module_prints_the_table() -> None:
    result = subprocess.run([sys.executable, "-W", "error", "-m", "ftbench.finetune.study"], capture_output=True,
                            text=True, check=True, timeout=60)
    assert result.stdout == cost_table() + "\n"


def page_table() -> str:
    text = PAGE.read_text(encoding="utf-8")
    assert TABLE_BEGIN in text and TABLE_END in text, f"{PAGE} lost its cost-table markers"
    return text.split(TABLE_BEGIN, 1)[1].split(TABLE_END, 1)[0].strip("\n")


def test_reproduction_page_shows_what_the_module_prints() -> None:
    assert page_table() == cost_table(), (
        f"{PAGE.relative_to(REPO_ROOT)} is out of date: paste the output of `python -m ftbench.finetune.study` "
        f"between its study-costs markers")


def test_study_models_yaml_lists_the_four_runs() -> None:
    models = yaml.safe_load(MODELS_YAML.read_text(encoding="utf-8"))["models"]
    assert [(m["name"], m["kind"]) for m in models] == [
        (LORA_NAME, "lora"), (LORA_NAME, "lora"), (OPENAI_NAME, "openai"), (OPENAI_NAME, "openai")]
    assert all(m["results"].startswith("runs/") and m["run_json"].startswith("ftbench-out/") for m in models)
    assert "docs/study_models.yaml" in PAGE.read_text(encoding="utf-8")


def test_readme_links_the_page() -> None:
    assert "docs/reproduction.md" in (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def page_commands() -> list[list[str]]:
    """The command lines of the page's bash blocks (continuations joined, comments dropped, ``$task`` expanded)."""
    blocks = re.findall(r"```bash\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.DOTALL)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    commands = [shlex.split(line, comments=True) for line in lines]
    expanded = [[word.replace("$task", task) for word in command] for command in commands
                for task in (("spider", "viggo") if any("$task" in word for word in command) else ("",))]
    return [command for command in expanded if command]


def script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "training" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parses(parse: object, argv: list[str]) -> argparse.Namespace:
    assert callable(parse)
    try:
        namespace = parse(argv)
    except SystemExit as err:
        raise AssertionError(f"{PAGE.name}: the script rejects {shlex.join(argv)}") from err
    assert isinstance(namespace, argparse.Namespace)
    return namespace


def test_page_training_commands_parse() -> None:
    from ftbench.finetune.openai import cli as openai

    lora = script("lora_sft")
    checked = 0
    for command in page_commands():
        if command[:2] == ["python", "training/lora_sft.py"]:
            lora.parse_args(command[2:])  # trl's parser: an InputError on a bad command
            args = argparse.Namespace(config=command[command.index("--config") + 1])
        elif command[:2] == ["python", "training/openai_finetune.py"]:
            args = parses(openai.build_parser().parse_args, command[2:])
        else:
            continue
        config = getattr(args, "config", None)
        assert config is None or (REPO_ROOT / config).is_file(), f"{PAGE.name} names a missing config {config}"
        checked += 1
    assert checked == 4 + 4 * 2 + 1


def test_page_evaluations_log_samples_into_runs() -> None:
    evals = [command for command in page_commands() if command[:2] == ["ftbench", "eval"]]
    assert len(evals) == 6
    for command in evals:
        tasks = command[command.index("--tasks") + 1].split(",")
        assert set(tasks) <= TASKS, tasks
        assert "--log_samples" in command
        assert command[command.index("--output_path") + 1].startswith("runs/")

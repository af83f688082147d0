"""`ftbench demo`: a model trained from scratch that learns ViGGO, two recipes compared through lm-eval, and
what the run leaves behind.

The main test runs the real command in a subprocess (as a user would, right after install), with fewer steps and
examples than the default so that CI stays short (the default's time and figures come from
benchmarks/bench_demo.py), and checks every stage's output: trained recipes with their run records, lm-eval
results of both recipes on both tasks, served answers identical to in-process ones, the leaderboard it names,
and answers that a random model cannot give.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from ftbench.demo import (
    FORKS,
    MARKER,
    RECIPE_NAMES,
    STAGES,
    DemoConfig,
    DemoLayout,
    LoraServing,
    demo_recipe,
    prepare_out_dir,
    recipe_evaluation,
    serve_and_report,
    side_by_side,
    start_fork_server,
)
from ftbench.errors import DemoIncomplete, InputError
from ftbench.finetune.scratch import ScratchResult

from .conftest import have_mirror, mirror_dir
from .lmeval_runs import answers, read_outputs, run_cli

TASKS = ("spider_sql", "viggo")
#: A reduced run: 100 + 2 × 40 steps of a 0.91M-parameter model and 30 examples per task.
BASE_STEPS, RECIPE_STEPS, LIMIT, SERVE_LIMIT = 100, 40, 30, 3
#: A guard against a hang, not a speed target.
HANG_GUARD_S = 1200

needs_mirror = pytest.mark.skipif(not have_mirror(), reason=f"dataset mirror not found at {mirror_dir()}")


@dataclass(frozen=True)
class DemoRun:
    out: Path
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    if not have_mirror():
        pytest.skip(f"dataset mirror not found at {mirror_dir()}")
    cwd = tmp_path_factory.mktemp("demo")
    done = run_cli(["ftbench", "demo", "--out", str(cwd / "out"), "--base-steps", str(BASE_STEPS), "--steps",
                    str(RECIPE_STEPS), "--limit", str(LIMIT), "--serve-limit", str(SERVE_LIMIT), "--no-progress"],
                   cwd=cwd, timeout=HANG_GUARD_S)
    return DemoRun(cwd / "out", done.stdout, done.stderr)


def _metrics(out: Path, recipe: str, task: str) -> dict[str, float]:
    results, _ = read_outputs(out / "lm-eval" / recipe / task)
    return {key.split(",")[0]: value for key, value in results["results"][task].items()
            if not key.startswith("alias")}


@pytest.mark.slow
def test_demo_prints_every_stage_what_it_found_and_where_the_report_is(demo_run: DemoRun) -> None:
    stages = [line for line in demo_run.stdout.splitlines() if line.startswith("[")]
    assert [line.split(",")[0] for line in stages] == [f"[{i}/{STAGES}" for i in range(1, STAGES + 1)]
    side_by_side = "two recipes from the base side by side (one process on" in stages[2]
    assert side_by_side or "two recipes from the base in turn (" in stages[2]
    assert (demo_run.out / "recipe-lora.log").is_file() == side_by_side, "each recipe's process writes its log"
    report_line = next(line for line in demo_run.stdout.splitlines() if line.startswith("report:"))
    html = Path(report_line.removeprefix("report:").strip())
    assert html == demo_run.out / "report" / "leaderboard.html" and html.is_file()
    assert f"{demo_run.out / 'report' / 'leaderboard.md'}" in demo_run.stdout
    assert f"viggo exact_match (n = {LIMIT}):" in demo_run.stdout
    assert "a model this small does not learn SQL" in demo_run.stdout
    assert "{'loss'" not in demo_run.stdout and "Warning" not in demo_run.stdout  # no raw trainer logs
    assert "SHOULD ONLY BE USED FOR TESTING" not in demo_run.stderr, "lm-eval's --limit warning is not shown"
    assert "fatal:" not in demo_run.stderr, "git's complaint of a run outside a repository (lm-eval's git hash)"
    assert "Warning" not in demo_run.stderr, "e.g. a semaphore a killed server left, reported leaked"
    for bar in ("Running generate_until requests", "Requesting API"):
        assert bar not in demo_run.stderr, f"lm-eval's {bar!r} bar despite --no-progress"


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["base", "full", "lora"])
def test_demo_trains_each_recipe_for_its_steps_with_a_run_record_in_cpu_hours(demo_run: DemoRun,
                                                                             recipe: str) -> None:
    record = json.loads((demo_run.out / "recipes" / recipe / "run.json").read_text(encoding="utf-8"))
    assert record["steps"] == (BASE_STEPS if recipe == "base" else RECIPE_STEPS), "work is fixed by steps"
    assert record["config"]["method"] == ("lora r=8" if recipe == "lora" else "full")
    assert record["gpu_name"] == "cpu" and record["gpu_hours"] > 0
    assert record["price_per_gpu_hour"] < 0.1, "CPU core-hours are not priced as A40 hours ($0.475)"
    evals = [point["eval_loss"] for point in record["eval_loss_curve"]]
    assert len(evals) >= 2 and all(0 < value < 20 for value in evals), "held-out loss recorded along the run"
    if recipe != "lora":  # LoRA r=8 at this scale barely moves in 50 steps (the demo's own finding)
        assert evals[-1] < evals[0]
    adapter = demo_run.out / "recipes" / recipe / "model" / "adapter_config.json"
    assert adapter.is_file() == (recipe == "lora")


@pytest.mark.slow
def test_the_trained_model_answers_as_a_random_one_cannot(demo_run: DemoRun) -> None:
    """A random model writes no valid meaning representation; this one learned their grammar in ~200 steps."""
    full = _metrics(demo_run.out, "full", "viggo")
    assert full["valid_mr"] >= 0.5, full
    assert full["slot_f1"] > 0.05, full  # a random model scores 0
    _, samples = read_outputs(demo_run.out / "lm-eval" / "full" / "viggo")
    assert len(samples["viggo"]) == LIMIT


@pytest.mark.slow
def test_the_two_recipes_answer_differently(demo_run: DemoRun) -> None:
    _, full = read_outputs(demo_run.out / "lm-eval" / "full" / "viggo")
    _, lora = read_outputs(demo_run.out / "lm-eval" / "lora" / "viggo")
    assert answers(full["viggo"]) != answers(lora["viggo"])


@pytest.mark.slow
def test_served_lora_recipe_answers_as_in_process(demo_run: DemoRun) -> None:
    served, served_samples = read_outputs(demo_run.out / "lm-eval" / "served" / "viggo")
    _, in_process_samples = read_outputs(demo_run.out / "lm-eval" / "lora" / "viggo")
    assert served["config"]["model"] == "local-completions"
    assert len(served_samples["viggo"]) == SERVE_LIMIT
    assert answers(served_samples["viggo"]) == answers(in_process_samples["viggo"])[:SERVE_LIMIT]
    assert f"served: {SERVE_LIMIT} of {SERVE_LIMIT} ViGGO answers over HTTP match" in demo_run.stdout


@pytest.mark.slow
def test_demo_writes_the_leaderboard_of_its_two_recipes_with_costs(demo_run: DemoRun) -> None:
    report = demo_run.out / "report"
    assert (report / "leaderboard.csv").is_file() and (report / "leaderboard.html").stat().st_size > 0
    markdown = (report / "leaderboard.md").read_text(encoding="utf-8")
    for task in TASKS:
        section = markdown.split(f"### {task}\n", 1)[1].split("\n### ", 1)[0]
        for name in RECIPE_NAMES.values():
            assert f"| {name} |" in section, f"{name} missing from the {task} table"
        assert " CPU-h |" in section and "GPU-h" not in section
    html = (report / "leaderboard.html").read_text(encoding="utf-8")
    assert 'class="viewer"' in html and "models disagree" in html
    assert "does not learn SQL" in markdown and "three sentences per meaning representation" in markdown


def test_out_dir_of_other_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(InputError, match="not written by `ftbench demo`"):
        prepare_out_dir(tmp_path)
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_rerun_replaces_the_previous_demo_outputs_only(tmp_path: Path) -> None:
    layout = prepare_out_dir(tmp_path / "demo")
    (layout.recipe_dir("lora") / "model").mkdir(parents=True)
    layout.serve_log("lora").write_text("old log", encoding="utf-8")
    (layout.root / "mine.txt").write_text("kept", encoding="utf-8")
    prepare_out_dir(layout.root)
    assert sorted(p.name for p in layout.root.iterdir()) == sorted([MARKER, "mine.txt"])


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else already listens on: the demo's server cannot bind it."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("forked", [False, True], ids=["transformers-serve", "forked-from-the-fork-server"])
def test_server_that_cannot_start_keeps_the_rest(demo_run: DemoRun, tmp_path: Path, busy_port: int,
                                                 monkeypatch: pytest.MonkeyPatch, forked: bool) -> None:
    """The demo's last two stages (what ``run_demo`` ends with) on a copy of the demo run's trained recipes and
    lm-eval results, without its served results and report: the server cannot bind its port."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "demo"
    shutil.copytree(demo_run.out, out, ignore=shutil.ignore_patterns("report", "merged", "served", "models.yaml",
                                                                     "serve-*.log"))
    layout = DemoLayout(out)
    config = DemoConfig(out_dir=out, limit=LIMIT, serve_limit=SERVE_LIMIT, port=busy_port, health_timeout_s=60,
                        progress=False)
    recipes = {name: ScratchResult.read(layout.recipe_dir(name)) for name in ("base", *FORKS)}
    evaluations = [recipe_evaluation(name, recipes, task, layout) for name in FORKS for task in TASKS]
    said: list[str] = []
    if forked:
        start_fork_server()
    with LoraServing(recipes["base"], config, layout, forked=forked) as serving, \
            pytest.raises(DemoIncomplete, match="served evaluation failed: server exited") as failure:
        serve_and_report(said.append, recipes, evaluations, config, layout, serving)
    assert failure.value.exit_code == 9, "the exit code of the server failure"
    assert said[0].startswith("writing the leaderboard while the served LoRA recipe answers")
    assert said[1].startswith("checking the served LoRA recipe"), "the leaderboard was written before the check"
    assert (out / "recipes" / "lora" / "model" / "adapter_config.json").is_file()
    assert (out / "recipes" / "lora" / "run.json").is_file()
    assert "viggo" in read_outputs(out / "lm-eval" / "lora" / "viggo")[1]
    assert str(out / "report" / "leaderboard.html") in str(failure.value)
    markdown = (out / "report" / "leaderboard.md").read_text(encoding="utf-8")
    assert RECIPE_NAMES["lora"] in markdown and "(served)" not in markdown


@pytest.mark.parametrize("lora", [False, True])
def test_completion_loss_is_the_models_own_loss_over_completion_tokens(lora: bool) -> None:
    """The fast loss (output layer only where a completion token is predicted) equals ``model(**batch).loss``,
    with its gradients, for the full model and for a LoRA-wrapped one; the prompt's tokens do not count."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from ftbench.finetune.scratch import Encoded, Recipe, _trainable, collate, completion_loss

    torch.manual_seed(0)
    model = _trainable(LlamaForCausalLM(LlamaConfig(
        vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, pad_token_id=0)), Recipe("r", steps=1, lora_r=4 if lora else None, lora_alpha=8))
    if lora:  # peft starts B at 0; move it so that the adapter counts
        for name, param in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(param)
    examples = [Encoded(ids=(5, 6, 7, 8, 9, 10, 11), start=4), Encoded(ids=(12, 13, 14, 15), start=2),
                Encoded(ids=(16, 17, 18, 19, 20), start=3)]
    batch = collate(examples, pad_id=0)
    expected = model(**batch).loss
    expected_grads = torch.autograd.grad(expected, [p for p in model.parameters() if p.requires_grad])
    fast = completion_loss(model, batch)
    fast_grads = torch.autograd.grad(fast, [p for p in model.parameters() if p.requires_grad])
    assert torch.allclose(fast, expected, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(fast_grads, expected_grads, strict=True))
    everything = {**batch, "labels": torch.where(batch["attention_mask"].bool(), batch["input_ids"], -100)}
    assert not torch.allclose(model(**everything).loss, expected), "the prompt's tokens are not in the loss"


def test_recipes_continue_the_base_learning_rate_schedule_as_one_run() -> None:
    """The base does not decay to 0 and the recipes do not warm up again: base + recipe follow one cosine schedule
    (a base decayed to 0 then re-warmed recipes scored 0.15 ViGGO exact match where one run scored 0.41)."""
    from ftbench.finetune.scratch import Recipe, cosine_lr

    config = DemoConfig(out_dir=Path("unused"), base_steps=100, recipe_steps=60)
    base, full, lora = (demo_recipe(name, config) for name in ("base", "full", "lora"))
    one_run = Recipe("one run", steps=160)
    rates = [cosine_lr(step, base) for step in range(100)] + [cosine_lr(step, full) for step in range(60)]
    assert rates == [cosine_lr(step, one_run) for step in range(160)]
    assert [cosine_lr(step, lora) for step in range(60)] == rates[100:]
    assert rates[100] > 0.3 * base.learning_rate and rates[-1] < 0.01 * base.learning_rate
    assert (base.steps, full.steps, lora.lora_r, full.lora_r) == (100, 60, 8, None)
    assert lora.lora_target_modules == ("q_proj", "k_proj", "v_proj", "o_proj"), "the study's LoRA layers"
    with pytest.raises(InputError, match="no recipe 'qlora'"):
        demo_recipe("qlora", config)  # once silently trained as LoRA


@needs_mirror
def test_demo_trains_on_viggo_only_unless_sql_rows_are_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    from ftbench import prompts
    from ftbench.demo import demo_examples

    monkeypatch.setenv("FTBENCH_DATA_DIR", str(mirror_dir()))
    assert DemoConfig(out_dir=Path("unused")).sql_train_rows == 0
    for sql_rows in (0, 5):
        train, held_out = demo_examples(sql_rows)
        sql = [example for example in train if example.prompt.startswith(prompts.SQL_INSTRUCTION)]
        assert len(sql) == sql_rows and len(train) - sql_rows > 5000
        assert any(example.prompt.startswith(prompts.SQL_INSTRUCTION) for example in held_out) == bool(sql_rows)


@pytest.mark.parametrize(("asked", "cores", "load", "at_once", "words"), [
    (None, 2, 0.3, True, "side by side (one process on 1 core each)"),
    (None, 8, 1.0, True, "side by side (one process on 4 cores each)"),
    (None, 2, None, True, "side by side"),
    (None, 1, 0.0, False, "in turn (one CPU core)"),
    (None, 2, 2.5, True, "side by side"),
    (None, 2, 6.5, False, "in turn (load average 6.5 on 2 cores"),
    (True, 2, 9.0, True, "side by side, as asked"),
    (False, 4, 0.0, False, "in turn, as asked"),
])
def test_recipes_go_side_by_side_on_two_cores_unless_busy_or_asked(asked: bool | None, cores: int,
                                                                   load: float | None, at_once: bool,
                                                                   words: str) -> None:
    decided, why = side_by_side(asked, cores, load)
    assert decided == at_once and why.startswith(words)


class _Ended:
    """A recipe's process as the parent sees it once it has ended."""

    exitcode = -9

    def is_alive(self) -> bool:
        return False


def test_a_recipe_process_that_fails_or_dies_fails_the_stage_naming_its_log(tmp_path: Path) -> None:
    from queue import Queue

    from ftbench.demo import _collect
    from ftbench.errors import EvaluationFailed

    layout, notes = DemoLayout(tmp_path), {name: (lambda done, text: None) for name in FORKS}
    messages: Queue[tuple[str, str, object]] = Queue()
    messages.put(("lora", "note", (3, "loss=1.0")))
    messages.put(("lora", "failed", EvaluationFailed("lm-eval exited with code 1")))
    with pytest.raises(EvaluationFailed, match=r"code 1 .*recipe-lora\.log"):
        _collect({name: _Ended() for name in FORKS}, messages, notes, layout)
    with pytest.raises(EvaluationFailed, match=r"recipe full ended \(exit code -9\) without a result.*recipe-full"):
        _collect({name: _Ended() for name in FORKS}, Queue(), notes, layout)


def test_the_lora_recipe_starts_serving_once_trained_before_its_evaluations_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server starts when the LoRA recipe's process says it is trained, not after both recipes' evaluations
    (the health check then kept the demo waiting ~10 s); once only, never for the full recipe."""
    from queue import Queue

    import ftbench.demo as demo
    from ftbench.demo import LoraServing, _collect

    layout, config = DemoLayout(tmp_path), DemoConfig(out_dir=tmp_path, serve_limit=3)
    base, lora = (ScratchResult(tmp_path / name, tmp_path / name / "run.json", None)  # type: ignore[arg-type]
                  for name in ("base", "lora"))
    started: list[dict[str, ScratchResult]] = []

    def start(recipes: dict[str, ScratchResult], *_: object) -> None:
        started.append(recipes)

    monkeypatch.setattr(demo, "start_lora_server", start)
    messages: Queue[tuple[str, str, object]] = Queue()
    for message in [("full", "trained", base), ("lora", "trained", lora), ("lora", "note", (3, "evaluating viggo")),
                    ("full", "done", (base, [])), ("lora", "done", (lora, []))]:
        messages.put(message)
    serving = LoraServing(base, config, layout)

    def note(_done: int, text: str) -> None:
        assert started, f"not serving yet while the LoRA recipe was {text}"

    _collect({name: _Ended() for name in FORKS}, messages, {name: note for name in FORKS}, layout, serving.trained)
    assert started == [{"base": base, "lora": lora}]
    assert serving.started and serving.failure is None
    off = LoraServing(base, replace(config, serve_limit=0), layout)
    off.trained("lora", lora)
    assert not off.started and len(started) == 1, "--serve-limit 0 serves nothing"


def test_the_last_stages_libraries_load_once_a_recipe_process_frees_its_core(tmp_path: Path) -> None:
    from queue import Queue

    from ftbench.demo import _collect

    events: list[str] = []
    messages: Queue[tuple[str, str, object]] = Queue()
    for name in FORKS:
        messages.put((name, "done", (name, [])))
    forked = _collect({name: _Ended() for name in FORKS}, messages,
                      {name: (lambda done, text: None) for name in FORKS}, DemoLayout(tmp_path),
                      last_stages=lambda: events.append("imports"))
    assert events == ["imports"], "once, when the first recipe is done"
    assert list(forked) == list(FORKS)


def test_the_fork_server_freezes_what_it_preloaded_last() -> None:
    """Its shutdown, after the demo's, otherwise collects everything again (~3 s that a pipe reading the demo's
    output waits for)."""
    import subprocess
    import sys

    from ftbench.demo import WORKER_IMPORTS

    assert WORKER_IMPORTS[-1] == "ftbench._fork_ready"
    frozen = subprocess.run([sys.executable, "-c", "import gc, ftbench._fork_ready; print(gc.get_freeze_count())"],
                            capture_output=True, text=True, check=True)
    assert int(frozen.stdout) > 100


def test_the_demo_exits_without_collecting_what_its_libraries_left() -> None:
    """Python collects every tracked object again as it shuts down (seconds after torch, transformers, lm-eval and
    matplotlib are imported); the demo's command freezes them first, so the collections skip them."""
    import gc

    from ftbench.demo import exit_without_collecting

    assert gc.get_freeze_count() == 0
    try:
        exit_without_collecting()
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()


def test_lm_eval_bars_can_be_turned_off_and_come_back() -> None:
    """lm-eval's models pass ``disable=`` to tqdm themselves (TQDM_DISABLE cannot override it)."""
    import lm_eval.models.huggingface as hf

    from ftbench.lmeval.run import lm_eval_bars_off

    shown, drawn = hf.tqdm, io.StringIO()
    with lm_eval_bars_off():
        hf.tqdm(total=3, disable=False, file=drawn, desc="Running generate_until requests").close()
    assert drawn.getvalue() == ""
    assert hf.tqdm is shown
    hf.tqdm(total=3, disable=False, file=drawn, desc="Running generate_until requests").close()
    assert "Running generate_until requests" in drawn.getvalue(), "bars are back after the block"


def test_the_environment_report_is_made_once_per_process_within_the_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """lm-eval calls torch's report (pip, conda, nvidia-smi: ~1.3 s) for every results file."""
    from torch.utils import collect_env

    import ftbench.lmeval.run as run

    made: list[int] = []

    def report() -> str:
        made.append(1)
        return f"report {len(made)}"

    monkeypatch.setattr(collect_env, "get_pretty_env_info", report)
    monkeypatch.setattr(run, "_ENVIRONMENT_REPORT", [])
    with run.environment_report_once():
        first, second = collect_env.get_pretty_env_info(), collect_env.get_pretty_env_info()
    assert (first, second, len(made)) == ("report 1", "report 1", 1)
    with run.environment_report_once():
        assert collect_env.get_pretty_env_info() == "report 1", "the next run of this process reuses it"
    assert collect_env.get_pretty_env_info() == "report 2", "outside the block torch's own function again"


def test_lm_eval_records_the_git_commit_without_git_complaining_outside_a_repository(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    """``ftbench demo`` in a fresh folder printed git's "fatal: not a git repository" (lm-eval runs ``git describe``
    for every results file); the record itself is lm-eval's: None there, the commit inside a repository."""
    import subprocess

    import lm_eval.evaluator as evaluator
    from lm_eval.loggers.utils import get_git_commit_hash

    from ftbench.lmeval.run import git_describe_quietly

    outside, repository = tmp_path / "outside", tmp_path / "repository"
    outside.mkdir()
    repository.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # not the checkout the tests run from
    subprocess.run(["git", "init", "-q"], cwd=repository, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x"],
                   cwd=repository, check=True)
    monkeypatch.chdir(outside)
    assert get_git_commit_hash() is None
    assert "not a git repository" in capfd.readouterr().err, "lm-eval's own call complains"
    with git_describe_quietly():
        assert evaluator.get_git_commit_hash() is None
        assert capfd.readouterr().err == ""
        monkeypatch.chdir(repository)
        assert evaluator.get_git_commit_hash() == get_git_commit_hash()
    assert evaluator.get_git_commit_hash is get_git_commit_hash, "lm-eval's own after the block"


def test_the_data_parallel_base_step_sums_to_the_whole_batch_gradient(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two ranks, each on its half of a batch, all-reduced (the sum, as gloo does), leave the gradients and the
    loss of one process on the whole batch: the base trained data-parallel takes the same optimizer steps."""
    import torch
    import torch.distributed as dist
    from transformers import LlamaConfig, LlamaForCausalLM

    from ftbench.finetune.scratch import Encoded, Shard, shard_step

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, pad_token_id=0))
    params = list(model.parameters())
    examples = [Encoded(ids=(5, 6, 7, 8, 9, 10, 11), start=4), Encoded(ids=(12, 13, 14, 15), start=2),
                Encoded(ids=(16, 17, 18, 19, 20), start=3), Encoded(ids=(21, 22, 23, 24, 25, 26), start=1),
                Encoded(ids=(27, 28, 29), start=2)]
    whole_loss, whole_tokens = shard_step(model, params, examples, 0, None)
    whole = [p.grad.clone() for p in params if p.grad is not None]
    model.zero_grad(set_to_none=True)
    sent: list[torch.Tensor] = []
    monkeypatch.setattr(dist, "all_reduce", lambda buffer: sent.append(buffer.clone()))
    shard_step(model, params, examples, 0, Shard(1, 2))  # rank 1: examples 1 and 3
    model.zero_grad(set_to_none=True)
    monkeypatch.setattr(dist, "all_reduce", lambda buffer: buffer.add_(sent[0]))
    loss, tokens = shard_step(model, params, examples, 0, Shard(0, 2))  # rank 0: examples 0, 2 and 4
    assert len(whole) == len(params)
    assert all(torch.allclose(p.grad, g, atol=1e-6) for p, g in zip(params, whole, strict=True))
    assert abs(loss - whole_loss) < 1e-5 and tokens == whole_tokens
    assert not torch.allclose(sent[0][:-2], torch.cat([g.reshape(-1) for g in whole])), "rank 1 had half"
    monkeypatch.setattr(dist, "all_reduce", lambda buffer: None)
    model.zero_grad(set_to_none=True)
    assert shard_step(model, params, examples[:1], 0, Shard(1, 2)) == (0.0, 0), "nothing left for rank 1"
    assert all(p.grad is not None and not p.grad.any() for p in params)


@pytest.mark.parametrize(("at_once", "words"), [(True, "data-parallel (2 processes of "),
                                                (False, "in this process (")])
def test_the_base_stage_says_how_the_base_trains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at_once: bool,
                                                 words: str) -> None:
    import ftbench.demo as demo

    class Stop(Exception):
        pass

    def trained(*_: object) -> None:
        raise Stop

    monkeypatch.setattr(demo, "side_by_side", lambda *_: (at_once, "why"))
    monkeypatch.setattr(demo, "start_fork_server", lambda: None)
    monkeypatch.setattr(demo, "build_tiny_model", lambda *_, **__: tmp_path)
    monkeypatch.setattr(demo, "demo_examples", lambda _: ([], []))
    monkeypatch.setattr(demo, "train_base_data_parallel" if at_once else "train_recipe", trained)
    said: list[str] = []
    with pytest.raises(Stop):
        demo._run_stages(DemoConfig(out_dir=tmp_path), DemoLayout(tmp_path), said.append, 0.0, None)
    assert said[1].startswith("[2/5") and words in said[1]

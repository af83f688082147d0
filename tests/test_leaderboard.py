"""The leaderboard from real lm-eval outputs: two fine-tuned "OpenAI" models served by the local fake of the API
(answers right on a known pattern of examples), the tiny Llama model through lm-eval ``hf``, and copies of
those runs altered on purpose (other prompts, a lost samples file, broken files).

Every figure checked here is computed again from the samples files, by hand, and tied to the known pattern.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml
from PIL import Image
from scipy import stats

from ftbench.errors import InputError
from ftbench.finetune.openai.run import cost_record
from ftbench.finetune.record import OpenAIRunRecord, write_run_json
from ftbench.leaderboard import build_leaderboard, compare_runs
from ftbench.pricing import OPENAI_PRICES, training_cost

from .conftest import have_mirror, mirror_dir
from .fake_openai import FakeOpenAI
from .lmeval_runs import run_cli, run_clis

pytestmark = pytest.mark.slow

LIMIT = 20
MODEL_A = "ft:gpt-3.5-turbo-0613:acme::aaa"  # right on even examples; SQL syntax errors on i % 4 == 1
MODEL_B = "ft:gpt-3.5-turbo-0613:acme::bbb"  # right on multiples of 3; ViGGO answers unparseable otherwise
RIGHT_A = {i for i in range(LIMIT) if i % 2 == 0}
RIGHT_B = {i for i in range(LIMIT) if i % 3 == 0}


@contextmanager
def _environ(**values: str) -> Iterator[None]:
    """Set environment variables for a session fixture (monkeypatch is function-scoped)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


def _other_function(mr: str) -> str:
    function = mr.split("(", 1)[0]
    return ("request" if function == "inform" else "inform") + mr[len(function):]


@dataclass(frozen=True)
class Oracle:
    """Answers of the two fake fine-tunes, by the example's position in the evaluation split."""

    sql: dict[str, tuple[int, str]]
    viggo: dict[str, tuple[int, str]]

    def reply(self, body: dict[str, Any]) -> str:
        question = body["messages"][-1]["content"]
        model_a = body["model"] == MODEL_A
        if question in self.sql:
            i, gold = self.sql[question]
            if i in (RIGHT_A if model_a else RIGHT_B):
                return gold
            return "SELEC broken FROM" if model_a and i % 4 == 1 else "SELECT 1, 2, 3"
        i, gold = self.viggo[question]
        if i in (RIGHT_A if model_a else RIGHT_B):
            return gold
        return _other_function(gold) if model_a else "this is not a meaning representation"


@pytest.fixture(scope="session")
def fake_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lm-eval outputs of the two fake fine-tunes on spider_sql_chat and viggo_chat (``LIMIT`` examples each)."""
    if not have_mirror():
        pytest.skip(f"dataset mirror not found at {mirror_dir()}")
    from ftbench.data import load_spider_sql, load_viggo

    with _environ(FTBENCH_DATA_DIR=str(mirror_dir())):
        sql: dict[str, tuple[int, str]] = {}
        for i, example in enumerate(load_spider_sql("val")):
            sql.setdefault(example.question, (i, example.answer))
        viggo = {ex.target: (i, ex.meaning_representation) for i, ex in enumerate(load_viggo("test"))}
    out = tmp_path_factory.mktemp("fake-runs")
    with FakeOpenAI(chat_reply=Oracle(sql, viggo).reply) as fake, _environ(OPENAI_API_KEY=fake.api_key):
        run_clis([(["ftbench", "eval", "--model", "ftbench-openai-chat",
                    "--model_args", f"model={model},base_url={fake.url}/chat/completions",
                    "--tasks", "spider_sql_chat,viggo_chat", "--apply_chat_template", "--limit", str(LIMIT),
                    "--log_samples", "--output_path", str(out / name)], out)
                  for name, model in (("a", MODEL_A), ("b", MODEL_B))])
    return out


def _model_dir(run: Path) -> Path:
    [results] = run.rglob("results_*.json")
    return results.parent


def _samples(run: Path, task: str) -> list[dict[str, Any]]:
    [path] = _model_dir(run).glob(f"samples_{task}_*.jsonl")
    return sorted((json.loads(line) for line in path.read_text().splitlines()), key=lambda row: row["doc_id"])


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _write_models(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"models": entries}), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def openai_run_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run.json an OpenAI fine-tune writes, for the study's SQL run (1,498,750 trained tokens)."""
    price = OPENAI_PRICES["gpt-3.5-turbo-0613"]
    run = OpenAIRunRecord(job_id="ftjob-1", status="succeeded", config={"model": "gpt-3.5-turbo-0613"},
                    fine_tuned_model=MODEL_A, trained_tokens=1_498_750)
    cost = training_cost(1_498_750, price)
    run.cost_usd, run.cost = cost.usd, cost_record(cost, price)
    return write_run_json(tmp_path_factory.mktemp("openai-job"), run)


@pytest.fixture(scope="session")
def report(fake_runs: Path, openai_run_json: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`ftbench leaderboard` over both fake runs, named and priced by models.yaml."""
    work = tmp_path_factory.mktemp("report")
    models = _write_models(work / "models.yaml", [
        {"name": "GPT-3.5 A", "results": str(fake_runs / "a"), "kind": "openai", "model_id": MODEL_A,
         "run_json": str(openai_run_json)},
        {"name": "LoRA B", "results": str(fake_runs / "b"), "kind": "lora", "gpu_hours": 7,
         "price_per_gpu_hour": 0.475, "inference_usd": 0.5},
    ])
    done = run_cli(["ftbench", "leaderboard", "--models", str(models), "--out", str(work / "out"), "--no-progress"],
                   cwd=work)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["spider_sql"]["GPT-3.5 A"]["exec_acc"] == len(RIGHT_A) / LIMIT
    return work / "out"


def test_scores_in_the_table_are_the_samples_means_and_follow_the_known_pattern(fake_runs: Path,
                                                                                  report: Path) -> None:
    rows = {(r["group"], r["model"], r["metric"]): r for r in _csv(report / "leaderboard.csv")}
    for run, name, right in (("a", "GPT-3.5 A", RIGHT_A), ("b", "LoRA B", RIGHT_B)):
        for task, family, metric in (("spider_sql_chat", "spider_sql", "exec_acc"),
                                     ("spider_sql_chat", "spider_sql", "exact_match"),
                                     ("viggo_chat", "viggo", "exact_match"), ("viggo_chat", "viggo", "mr_match")):
            samples = _samples(fake_runs / run, task)
            by_hand = sum(s[metric] for s in samples) / len(samples)
            assert by_hand == len(right) / LIMIT  # the fake answered as told, and lm-eval scored it so
            row = rows[(family, name, metric)]
            assert float(row["value"]) == pytest.approx(by_hand) and int(row["n"]) == LIMIT
            assert float(row["ci_low"]) <= by_hand <= float(row["ci_high"])
            assert float(row["ci_low"]) < float(row["ci_high"])


def test_slot_f1_is_micro_averaged_over_the_logged_counts(fake_runs: Path, report: Path) -> None:
    rows = {(r["model"], r["metric"]): r for r in _csv(report / "leaderboard.csv") if r["family"] == "viggo"}
    for run, name in (("a", "GPT-3.5 A"), ("b", "LoRA B")):
        tp, fp, fn = (sum(s["slot_f1"][k] for s in _samples(fake_runs / run, "viggo_chat")) for k in range(3))
        assert float(rows[(name, "slot_f1")]["value"]) == pytest.approx(2 * tp / (2 * tp + fp + fn))
    # A's wrong answers have every slot right but the function: only the function slot is lost.
    assert float(rows[("GPT-3.5 A", "slot_f1")]["value"]) > float(rows[("LoRA B", "slot_f1")]["value"])


def test_paired_test_is_mcnemar_on_the_examples_both_answered(report: Path) -> None:
    pairs = [p for p in _csv(report / "pairs.csv") if p["group"] == "spider_sql" and p["metric"] == "exec_acc"]
    [pair] = pairs
    only_a, only_b = len(RIGHT_A - RIGHT_B), len(RIGHT_B - RIGHT_A)
    assert (pair["model_a"], int(pair["a_only_right"]), int(pair["b_only_right"])) == ("GPT-3.5 A", only_a, only_b)
    assert float(pair["p_value"]) == pytest.approx(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue, rel=1e-12)
    assert float(pair["difference"]) == pytest.approx((len(RIGHT_A) - len(RIGHT_B)) / LIMIT)
    assert int(pair["shared"]) == LIMIT and pair["note"] == ""


def test_costs_come_from_run_json_and_models_yaml(report: Path) -> None:
    rows = {(r["family"], r["model"], r["metric"]): r for r in _csv(report / "leaderboard.csv")}
    a, b = rows[("spider_sql", "GPT-3.5 A", "exec_acc")], rows[("spider_sql", "LoRA B", "exec_acc")]
    assert float(a["training_usd"]) == 11.99 and int(a["trained_tokens"]) == 1_498_750
    assert float(b["training_usd"]) == pytest.approx(7 * 0.475) and float(b["gpu_hours"]) == 7
    assert float(b["inference_usd"]) == 0.5
    assert float(a["points_per_dollar"]) == pytest.approx(100 * len(RIGHT_A) / LIMIT / 11.99)
    assert rows[("spider_sql", "GPT-3.5 A", "exact_match")]["points_per_dollar"] == ""  # the primary metric only
    markdown = (report / "leaderboard.md").read_text()
    assert "1,498,750 trained tokens × $0.008/1K (gpt-3.5-turbo-0613, price of 2023-08-22)" in markdown


def test_error_breakdown_classifies_each_prediction(report: Path) -> None:
    markdown = (report / "leaderboard.md").read_text()
    syntax = sum(1 for i in range(LIMIT) if i not in RIGHT_A and i % 4 == 1)
    wrong = LIMIT - len(RIGHT_A) - syntax
    # | Model | n | correct | wrong result | syntax | schema | timeout | forbidden | runtime | empty | changed |
    assert f"| GPT-3.5 A | {LIMIT} | {len(RIGHT_A)} | {wrong} | {syntax} | 0 | 0 | 0 | 0 | 0 | 0 |" in markdown
    assert f"| LoRA B | {LIMIT} | {len(RIGHT_B)} | {LIMIT - len(RIGHT_B)} | 0 | 0 | 0 | 0 | 0 | 0 | 0 |" in markdown
    assert "Function confusion: GPT-3.5 A (function right on 50.0%)" in markdown
    assert "Function confusion: LoRA B (function right on 35.0%)" in markdown  # 7 of 20, the rest unparseable
    assert "(invalid)" in markdown


def test_report_files_and_plots_are_written(report: Path) -> None:
    for stem in ("accuracy", "decision_1", "decision_2"):
        with Image.open(report / f"{stem}.png") as png:  # a picture, not a blank canvas
            assert png.format == "PNG" and len(set(png.convert("L").getdata())) > 2, stem
        svg = ElementTree.parse(report / f"{stem}.svg").getroot()
        assert svg.tag.endswith("svg"), stem
        labels = " ".join(text for element in svg.iter() if element.tag.endswith("text") for text in element.itertext())
        assert "GPT-3.5 A" in labels and "LoRA B" in labels, stem  # both models drawn, labels as text
    html = (report / "leaderboard.html").read_text()
    # one decision chart per task and the accuracy plot, embedded: one self-contained file, nothing fetched
    assert html.count("<svg") == 3 and "GPT-3.5 A" in html
    assert 'src="' not in html and "<link" not in html and "@import" not in html and "url(http" not in html
    assert (report / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_runs_with_other_limits_or_prompts_are_grouped_apart_with_a_warning(fake_runs: Path, hf_run: Path,
                                                                            tmp_path: Path) -> None:
    altered = tmp_path / "a-other-prompt"
    shutil.copytree(fake_runs / "a", altered)
    [samples] = _model_dir(altered).glob("samples_spider_sql_chat_*.jsonl")
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    for row in rows:
        row["doc_hash"] = "0" * 64  # as if the system prompt had changed
    samples.write_text("".join(json.dumps(row) + "\n" for row in rows))
    models = _write_models(tmp_path / "models.yaml", [
        {"name": "A", "results": str(fake_runs / "a")}, {"name": "B", "results": str(fake_runs / "b")},
        {"name": "A, new prompt", "results": str(altered)}])
    board = compare_runs([hf_run], models, breakdown=False, progress=False)
    labels = {group.label: [row.entry.name for row in group.rows] for group in board.groups}
    tiny = next(name for label, names in labels.items() if label == "spider_sql · limit 3" for name in names)
    assert labels["spider_sql · limit 20 #1"] == ["A", "B"] and labels["spider_sql · limit 20 #2"] == ["A, new prompt"]
    assert labels["viggo · limit 20"] == ["A", "A, new prompt", "B"]  # its viggo samples were not touched
    assert tiny and any("differ in limit" in w for w in board.warnings)
    assert any("chat prompts differ between A/B vs A, new prompt" in w for w in board.warnings)


def test_a_lost_samples_file_leaves_the_score_without_interval_or_test(fake_runs: Path, tmp_path: Path) -> None:
    copy = tmp_path / "b"
    shutil.copytree(fake_runs / "b", copy)
    [samples] = _model_dir(copy).glob("samples_viggo_chat_*.jsonl")
    samples.unlink()
    models = _write_models(tmp_path / "models.yaml", [
        {"name": "A", "results": str(fake_runs / "a")}, {"name": "B", "results": str(copy)}])
    report = build_leaderboard([], tmp_path / "out", models, progress=False)
    assert any(str(samples) in w and "--log_samples" in w for w in report.warnings)
    row = next(r for r in _csv(report.csv) if r["model"] == "B" and r["metric"] == "exact_match"
               and r["family"] == "viggo")
    assert float(row["value"]) == len(RIGHT_B) / LIMIT and row["ci_low"] == "" and int(row["n"]) == LIMIT
    pair = next(p for p in _csv(report.pairs_csv) if p["group"] == "viggo" and p["metric"] == "exact_match")
    assert pair["p_value"] == "" and pair["note"] == "no samples for B"
    assert "(no CI)" in report.markdown.read_text()


def test_example_sets_that_differ_are_tested_on_the_shared_ones_and_flagged(fake_runs: Path, tmp_path: Path) -> None:
    copy = tmp_path / "b"
    shutil.copytree(fake_runs / "b", copy)
    [samples] = _model_dir(copy).glob("samples_spider_sql_chat_*.jsonl")
    lines = samples.read_text().splitlines()
    samples.write_text("\n".join(line for line in lines if json.loads(line)["doc_id"] >= 4) + "\n")
    models = _write_models(tmp_path / "models.yaml", [
        {"name": "A", "results": str(fake_runs / "a")}, {"name": "B", "results": str(copy)}])
    board = compare_runs([], models, breakdown=False, progress=False)
    [group] = [g for g in board.groups if g.family.name == "spider_sql"]
    pair = next(p for p in group.pairs if p.metric == "exec_acc")
    shared = set(range(4, LIMIT))
    assert pair.shared == len(shared) and pair.note.startswith("example sets differ (A only: 4, B only: 0)")
    assert pair.test is not None
    expected = (len((RIGHT_A - RIGHT_B) & shared), len((RIGHT_B - RIGHT_A) & shared))
    assert (pair.test.only_a, pair.test.only_b) == expected
    assert any("exec_acc from the samples" in w for w in board.warnings)  # results say 20 examples, samples 16


def test_broken_files_give_errors_that_name_them(fake_runs: Path, tmp_path: Path) -> None:
    copy = tmp_path / "a"
    shutil.copytree(fake_runs / "a", copy)
    [samples] = _model_dir(copy).glob("samples_viggo_chat_*.jsonl")
    lines = samples.read_text().splitlines()
    samples.write_text("\n".join([lines[0], lines[1][:40], *lines[2:]]) + "\n")
    with pytest.raises(InputError, match=rf"{samples.name}:2: not valid JSON"):
        compare_runs([copy], breakdown=False, progress=False)
    samples.unlink()
    [results] = _model_dir(copy).glob("results_*.json")
    data = json.loads(results.read_text())
    del data["configs"]
    results.write_text(json.dumps(data))
    with pytest.raises(InputError, match=rf"{results}: not an lm-eval results file \(no 'configs' object\)"):
        compare_runs([copy], breakdown=False, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no lm-eval results_"):
        compare_runs([tmp_path / "empty"], progress=False)


def test_models_yaml_mistakes_name_the_file_and_the_entry(fake_runs: Path, tmp_path: Path) -> None:
    cases = [
        ([{"name": "A", "results": str(fake_runs / "a"), "colour": "red"}], r"models\[1\]: unknown key\(s\) colour"),
        ([{"name": "A"}], r"models\[1\]: 'results' is required"),
        ([{"name": "A", "results": str(tmp_path / "nowhere")}], r"models\[1\]: results folder .* does not exist"),
        ([{"name": "A", "results": str(fake_runs / "a"), "kind": "closed"}],
         r"kind must be one of lora, full, openai, base"),
        ([{"name": "A", "results": str(fake_runs / "a"), "gpu_hours": "seven"}], r"gpu_hours: expected a non-neg"),
        ([{"name": "A", "results": str(fake_runs / "a")}, {"name": "A", "results": str(fake_runs / "b")}],
         r"both named 'A'"),
    ]
    for entries, message in cases:
        models = _write_models(tmp_path / "models.yaml", entries)
        with pytest.raises(InputError, match=message):
            compare_runs([], models, breakdown=False, progress=False)


def test_cli_reports_bad_input_with_exit_code_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "run" / "m").mkdir(parents=True)
    (tmp_path / "run" / "m" / "results_2026-01-01.json").write_text("{")
    done = subprocess.run([str(Path(sys.executable).parent / "ftbench"), "leaderboard", str(tmp_path / "run"),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "results_2026-01-01.json: not valid JSON" in done.stderr
    assert not (tmp_path / "out").exists()


def test_html_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    from .browser import assert_nontrivial, screenshot

    png = tmp_path / "report.png"
    screenshot(report / "leaderboard.html", png, width=1280, height=2400)
    shot = assert_nontrivial(png, min_content_fraction=0.03, min_colours=50)
    assert (shot.width, shot.height) == (1280, 2400)


@pytest.mark.parametrize("source", ["docs/study_models.yaml", "README.md"])
def test_documented_models_yaml_files_parse(source: str, tmp_path: Path) -> None:
    from ftbench.leaderboard._models import read_models_file

    text = (Path(__file__).resolve().parents[1] / source).read_text(encoding="utf-8")
    if source == "README.md":
        text = text.split("```yaml\nmodels:", 1)[1].split("```", 1)[0]
        text = "models:" + text
    data = yaml.safe_load(text)
    for entry in data["models"]:  # make the folders and records it names, as a user's checkout would have
        (tmp_path / entry["results"]).mkdir(parents=True, exist_ok=True)
        if "run_json" in entry:
            (tmp_path / entry["run_json"]).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / entry["run_json"]).write_text("{}")
    path = tmp_path / "models.yaml"
    path.write_text(text, encoding="utf-8")
    specs = read_models_file(path)
    assert [spec.name for spec in specs] == [entry["name"] for entry in data["models"]]
    assert all(spec.kind in ("lora", "openai") for spec in specs)


def _section(markdown: str, heading: str) -> str:
    return markdown.split(heading + "\n", 1)[1].split("\n## ", 1)[0]


def test_report_leads_with_one_decision_sentence_per_pair(report: Path) -> None:
    markdown = (report / "leaderboard.md").read_text()
    assert markdown.index("## Decision") < markdown.index("## Inputs") < markdown.index("## Details")
    decision = _section(markdown, "## Decision")
    only_a, only_b = len(RIGHT_A - RIGHT_B), len(RIGHT_B - RIGHT_A)
    p_value = stats.binomtest(only_a, only_a + only_b, 0.5).pvalue
    points = 100 * (len(RIGHT_A) - len(RIGHT_B)) / LIMIT
    verdict = "significant" if p_value < 0.05 else "not significant"
    for metric in ("exec_acc", "exact_match"):  # the primary metrics of spider_sql and viggo
        assert f"**GPT-3.5 A** beats **LoRA B** by {points:.1f} points of {metric}" in decision
    assert f": {verdict} (McNemar p = {p_value:.2g}" in decision
    assert "Training: $11.99 vs $3.32 (7 GPU-h)" in decision  # 7 A40-hours at $0.475
    assert "three sentences per meaning representation" in decision


def test_report_states_its_inputs(fake_runs: Path, report: Path) -> None:
    import lm_eval

    inputs = _section((report / "leaderboard.md").read_text(), "## Inputs")
    for run in ("a", "b"):
        assert f"`{_model_dir(fake_runs / run)}`" in inputs
    assert f"lm-eval {lm_eval.__version__}" in inputs and "ftbench " in inputs and "SQL judge: `context`" in inputs
    assert " UTC" in inputs


def test_serving_cost_per_1k_queries_comes_from_the_recorded_token_usage(fake_runs: Path, report: Path) -> None:
    price = OPENAI_PRICES["gpt-3.5-turbo-0613"]  # model A's base: input $0.012, output $0.016 per 1K
    rows = {(r["family"], r["model"], r["metric"]): r for r in _csv(report / "leaderboard.csv")}
    for task, family, metric in (("spider_sql_chat", "spider_sql", "exec_acc"), ("viggo_chat", "viggo", "exact_match")):
        usage = [s["arguments"]["gen_args_0"]["arg_1"]["ftbench_usage"] for s in _samples(fake_runs / "a", task)]
        assert len(usage) == LIMIT and len({u["prompt_tokens"] for u in usage}) > 1  # per request, not a constant
        dollars = sum(u["prompt_tokens"] * price.input_per_1k + u["completion_tokens"] * price.output_per_1k
                      for u in usage) / 1000
        assert float(rows[(family, "GPT-3.5 A", metric)]["inference_per_1k_usd"]) == pytest.approx(
            1000 * dollars / LIMIT)
        # B is hand-priced: inference_usd 0.5 for the LIMIT queries of each task
        assert float(rows[(family, "LoRA B", metric)]["inference_per_1k_usd"]) == pytest.approx(1000 * 0.5 / LIMIT)


def test_serving_cost_from_measured_throughput(fake_runs: Path, tmp_path: Path) -> None:
    models = _write_models(tmp_path / "models.yaml", [
        {"name": "served", "results": str(fake_runs / "b"), "kind": "lora", "serve_throughput": 4.0,
         "serve_price_per_hour": 1.2, "serve_device": "1× L4"}])
    board = compare_runs([], models, breakdown=False, progress=False)
    serving = board.groups[0].rows[0].entry.serving
    assert serving.per_1k_usd == pytest.approx(1000 / 4.0 / 3600 * 1.2)  # 250 s of a $1.20/hour machine
    assert "4 queries/s measured on 1× L4" in serving.basis


def test_models_with_the_same_verdicts_share_a_rank_and_their_pairs_fold_into_one_line(
        fake_runs: Path, tmp_path: Path) -> None:
    twin = tmp_path / "a-twin"
    shutil.copytree(fake_runs / "a", twin)
    models = _write_models(tmp_path / "models.yaml", [
        {"name": "A", "results": str(fake_runs / "a")}, {"name": "A twin", "results": str(twin)},
        {"name": "B", "results": str(fake_runs / "b")}])
    markdown = build_leaderboard([], tmp_path / "out", models, breakdown=False, progress=False).markdown.read_text()
    details = _section(markdown, "### viggo")
    assert "| =1 | A |" in details and "| =1 | A twin |" in details and "| 3 | B |" in details
    assert "A = A twin on exact_match" in details and "| A | A twin |" not in details  # folded, not a table row
    assert "Same verdict on every example, so no difference to test: **A** = **A twin**." in markdown


def test_per_example_viewer_filters_rows_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    from .browser import dump_dom

    probe = """<script>
    function shown(v) {
      return Array.from(v.querySelectorAll("tbody tr")).filter(r => r.style.display !== "none").length;
    }
    var v = document.getElementById("examples-viggo"), box = v.querySelector("input.f-disagree");
    var kind = v.querySelector("select.f-class"), counts = {all: shown(v)};
    box.click(); counts.disagree = shown(v); box.click();
    kind.value = "wrong function"; kind.dispatchEvent(new Event("change")); counts.wrong_function = shown(v);
    kind.value = ""; kind.dispatchEvent(new Event("change")); counts.reset = shown(v);
    document.body.insertAdjacentHTML("beforeend", "<pre id=probe>" + JSON.stringify(counts) + "</pre>");
    </script></body>"""
    page = tmp_path / "probe.html"
    page.write_text((report / "leaderboard.html").read_text().replace("</body>", probe), encoding="utf-8")
    counts = json.loads(dump_dom(page).split('<pre id="probe">', 1)[1].split("</pre>", 1)[0])
    # A is right on even examples, B on multiples of 3; A's wrong answers name another function, B's do not parse
    disagree = len(RIGHT_A ^ RIGHT_B)
    assert counts == {"all": LIMIT, "disagree": disagree, "wrong_function": LIMIT - len(RIGHT_A), "reset": LIMIT}

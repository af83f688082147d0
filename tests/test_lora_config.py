"""LoRA run configs, overrides, training text, cost maths and the pre-flight errors (no training here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ftbench import prompts
from ftbench.errors import DataError, FtbenchError, InputError, InsufficientMemory
from ftbench.finetune import lora
from ftbench.finetune.lora import checks as lora_checks
from ftbench.finetune.lora import trainer as lora_trainer
from ftbench.finetune.lora.config import (
    RENAMED,
    STUDY_DEFAULTS,
    LoraRunConfig,
    config_keys,
    load_config,
    parse_config,
)
from ftbench.finetune.lora.data import task_examples, to_dataset
from ftbench.finetune.record import cost_from_run_json
from ftbench.pricing import A40_PRICE_PER_HOUR, gpu_cost

CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"
STUDY_CONFIGS = ("codellama34b_spider.yaml", "codellama34b_viggo.yaml")
#: Every LoRA config; ``openai_*.yaml`` belong to training/openai_finetune.py and its own tests.
LORA_CONFIGS = sorted(p for p in CONFIGS.glob("*.yaml") if not p.name.startswith("openai_"))


@pytest.mark.parametrize("path", LORA_CONFIGS, ids=lambda p: p.name)
def test_every_config_parses(path: Path) -> None:
    config = load_config(path)
    assert config.task.task in ("spider_sql", "viggo")
    assert path.read_text(encoding="utf-8").startswith("#"), "each config opens with a commented header"
    assert "lora_sft.py" in path.read_text(encoding="utf-8"), "the header gives the launch command"


def test_config_folder_has_the_issue_experiments() -> None:
    names = {p.name for p in LORA_CONFIGS}
    assert {*STUDY_CONFIGS, "tiny_cpu.yaml", "codellama34b_spider_fast.yaml"} <= names


@pytest.mark.parametrize("name", STUDY_CONFIGS)
def test_study_configs_are_the_study_recipe(name: str) -> None:
    config = load_config(CONFIGS / name)
    model, training = config.model, config.training
    assert (config.base_model, model.load_in_8bit, config.task.loss) == ("codellama/CodeLlama-34b-hf", True, "full")
    assert (model.lora_r, model.lora_alpha, model.lora_dropout) == (8, 16, 0.05)
    assert model.lora_target_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert (training.learning_rate, training.warmup_steps, training.max_steps) == (3e-4, 100, 400)
    assert (training.per_device_train_batch_size, training.gradient_accumulation_steps) == (8, 16)
    assert (training.max_length, training.eval_steps, training.packing, training.padding_free) == (512, 20, False,
                                                                                                 False)


def test_fast_config_keeps_the_optimisation_and_changes_the_compute() -> None:
    study, fast = load_config(CONFIGS / STUDY_CONFIGS[0]), load_config(CONFIGS / "codellama34b_spider_fast.yaml")
    same = ("training.learning_rate", "training.warmup_steps", "training.max_steps", "effective_batch_size",
            "model.lora_r", "model.lora_alpha", "model.lora_target_modules", "task.task", "base_model")
    assert all(_get(study, key) == _get(fast, key) for key in same)
    assert (fast.dtype, fast.training.padding_free, fast.task.loss, fast.model.load_in_8bit) == (
        "bfloat16", True, "completion", False)
    assert (fast.training.bf16, fast.training.fp16, study.training.fp16) == (True, False, True)


def _get(config: LoraRunConfig, dotted: str) -> Any:
    value: Any = config
    for name in dotted.split("."):
        value = getattr(value, name)
    return value


def test_unknown_key_lists_the_valid_ones(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model_name_or_path: m\ntask: viggo\noutput_dir: o\nlora_rank: 8\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"unknown config key.*lora_rank \(did you mean .*lora_r\b") as err:
        load_config(path)
    assert all(key in str(err.value) for key in config_keys())
    with pytest.raises(InputError, match=r"command line: unknown config key.*lora_rank"):
        load_config(CONFIGS / "tiny_cpu.yaml", ["--lora_rank", "8"])


@pytest.mark.parametrize("old", sorted(RENAMED))
def test_keys_of_configs_before_trl_parsing_say_their_new_name(old: str, tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text(f"{old}: x\n", encoding="utf-8")
    with pytest.raises(InputError, match=rf"unknown config key\(s\) {old} \(now "):
        load_config(path)


def test_ftbench_defaults_replace_trls_and_the_file_overrides_them(tmp_path: Path) -> None:
    path = tmp_path / "minimal.yaml"
    path.write_text("model_name_or_path: m\ntask: viggo\noutput_dir: o\nlearning_rate: 3e-5\n", encoding="utf-8")
    config = load_config(path)
    assert config.training.learning_rate == 3e-5, "3e-5 is a str to PyYAML; trl's parser converts it"
    assert (config.model.lora_r, config.training.max_steps) == (STUDY_DEFAULTS["lora_r"], STUDY_DEFAULTS["max_steps"])
    assert config.training.include_num_input_tokens_seen == "non_padding"


def test_overrides_win_and_numbers_written_as_text_are_numbers() -> None:
    config = load_config(CONFIGS / "tiny_cpu.yaml", ["--learning_rate", "3e-4", "--report_to", "tensorboard",
                                                     "--lora_target_modules", "q_proj", "--eval_limit", "4"])
    assert (config.training.learning_rate, config.reporters) == (3e-4, ["tensorboard"])
    assert (config.model.lora_target_modules, config.task.eval_limit) == (["q_proj"], 4)


@pytest.mark.parametrize(("override", "message"), [
    ("--max_steps", "expected one argument"),
    ("--max_steps abc", "--max_steps.*invalid int value: 'abc'"),
    ("--max_steps 0", "max_steps=0 must be a whole number of at least 1"),
    ("--loss prompt", "loss='prompt' is not one of full, completion"),
    ("--load_in_8bit maybe", "--load_in_8bit.*Truthy value expected: got maybe"),
    ("--lora_dropout 1.5", "lora_dropout=1.5 must be in"),
])
def test_bad_overrides_say_what_is_wrong(override: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_config(CONFIGS / "tiny_cpu.yaml", override.split())


def test_help_lists_ftbenchs_and_trls_keys_without_a_config(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        parse_config(["--help"])
    usage = capsys.readouterr().out
    assert stop.value.code == 0
    assert all(f"--{key}" in usage for key in (*config_keys(), "learning_rate", "lora_target_modules"))


def test_missing_required_keys_are_named() -> None:
    with pytest.raises(InputError, match=r"missing required key.*model_name_or_path.*output_dir"):
        load_config(None, ["--task", "viggo"])


def test_training_text_is_byte_identical_to_the_prompt_module(data_env: Path) -> None:
    from ftbench.data import load_spider_sql

    row = load_spider_sql("train")[0]
    expected = prompts.completion_training_text(prompts.sql_completion_prompt(row.question, row.context), row.answer)
    example = task_examples("spider_sql", "train", limit=1)[0]
    assert example.text == expected
    assert to_dataset([example], "full")[0]["text"] == expected
    completion_row = to_dataset([example], "completion")[0]
    assert completion_row["prompt"] + completion_row["completion"] == expected
    assert completion_row["prompt"] == prompts.sql_completion_prompt(row.question, row.context)


def test_gpu_hours_times_price_is_cost() -> None:
    cost = gpu_cost(wall_time_s=7 * 3600, gpu_count=1)
    assert (cost.gpu_hours, cost.price_per_gpu_hour) == (7.0, A40_PRICE_PER_HOUR)
    assert cost.cost_usd == pytest.approx(7 * 0.475)
    assert gpu_cost(1800, 8, 2.0).cost_usd == pytest.approx(8.0)


def test_cost_from_run_json_reprices(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps(gpu_cost(3600, 2, 1.0, "NVIDIA H200").to_dict()), encoding="utf-8")
    assert cost_from_run_json(path).cost_usd == pytest.approx(2.0)
    assert cost_from_run_json(path, price_per_gpu_hour=3.0).cost_usd == pytest.approx(6.0)
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(InputError, match="lacks"):
        cost_from_run_json(path)


# --- bad input fails fast: before the model loads -------------------------------------------------------------


@pytest.fixture
def no_model_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the base model is the long step; these errors must come before it."""

    def refuse(config: LoraRunConfig) -> Any:
        raise AssertionError("the model was loaded before the bad input was reported")

    monkeypatch.setattr(lora_trainer, "load_model", refuse)


def _tiny_config(tiny_model: Path, tmp_path: Path, *overrides: str) -> LoraRunConfig:
    return load_config(CONFIGS / "tiny_cpu.yaml", ["--model_name_or_path", str(tiny_model),
                                                   "--output_dir", str(tmp_path / "run"), *overrides])


@pytest.mark.usefixtures("data_env", "no_model_load")
def test_missing_base_model_path(tmp_path: Path) -> None:
    config = _tiny_config(tmp_path / "no-such-model", tmp_path)
    with pytest.raises(InputError, match=r"no-such-model.*no such directory"):
        lora.train(config)


@pytest.mark.usefixtures("data_env", "no_model_load")
def test_dataset_with_missing_fields(tiny_model: Path, tmp_path: Path) -> None:
    broken = tmp_path / "train.json"
    broken.write_text(json.dumps([{"question": "q", "context": "CREATE TABLE t (a int)", "db_id": "d"}]),
                      encoding="utf-8")
    config = _tiny_config(tiny_model, tmp_path, "--task", "spider_sql", "--train_file", str(broken))
    with pytest.raises(DataError, match=r"row 0: field\(s\) answer missing"):
        lora.train(config)


@pytest.mark.usefixtures("data_env", "no_model_load")
def test_int8_without_bitsandbytes_or_gpu(tiny_model: Path, tmp_path: Path) -> None:
    config = _tiny_config(tiny_model, tmp_path, "--load_in_8bit", "true", "--dtype", "float16")
    with pytest.raises(FtbenchError, match="load_in_8bit=true needs"):
        lora.train(config)


@pytest.mark.usefixtures("data_env", "no_model_load")
def test_not_enough_memory(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lora_checks, "available_memory", lambda: (1024.0, "a 1 KiB test device"))
    with pytest.raises(InsufficientMemory, match=r"need about .* GiB .* only 0.0 GiB is free on a 1 KiB test device"):
        lora.train(_tiny_config(tiny_model, tmp_path))


@pytest.mark.usefixtures("data_env", "no_model_load")
def test_padding_free_rows_longer_than_max_length(tiny_model: Path, tmp_path: Path) -> None:
    config = _tiny_config(tiny_model, tmp_path, "--padding_free", "true", "--max_length", "64")
    with pytest.raises(DataError, match="exceed max_length=64"):
        lora.train(config)


@pytest.mark.usefixtures("no_model_load")
def test_resume_needs_a_checkpoint_and_a_fresh_run_refuses_one(tiny_model: Path, tmp_path: Path) -> None:
    config = _tiny_config(tiny_model, tmp_path)
    with pytest.raises(InputError, match="no checkpoint-N directory"):
        lora.train(config, resume=True)
    checkpoint = Path(config.output_dir) / "checkpoint-10"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}", encoding="utf-8")
    with pytest.raises(InputError, match="already holds checkpoint-10; pass --resume"):
        lora.train(config)


def test_lora_flops_and_mfu() -> None:
    from ftbench.finetune.lora.flops import SHAPES, lora_flops_per_token, mfu, peak_tflops

    assert 33.0e9 < SHAPES["34b"].matmul_params < 34.0e9, "CodeLlama-34B without its input embedding"
    assert 6.4e9 < SHAPES["7b"].matmul_params < 6.8e9
    shape = SHAPES["34b"]
    assert lora_flops_per_token(shape, 0) == 4 * shape.matmul_params
    assert lora_flops_per_token(shape, 200) - lora_flops_per_token(shape, 100) == 6 * 48 * 8192 * 100
    assert peak_tflops("NVIDIA H200") == 989.5 and peak_tflops("cpu") is None
    assert mfu(1000.0, 1e12, 1000.0) == pytest.approx(1.0) and mfu(1.0, 1.0, None) is None


# --- trl's keys: each one honoured, or refused with a reason; none silently ignored -----------------------------


@pytest.mark.parametrize(("override", "message"), [
    ("--use_peft false", r"use_peft=False is not supported by lora_sft.py: .*LoRA adapters only"),
    ("--load_in_4bit true", r"load_in_4bit=True is not supported .*4-bit QLoRA.*load_in_8bit"),
    ("--bnb_4bit_quant_type fp4", r"bnb_4bit_quant_type='fp4' is not supported .*QLoRA"),
    ("--dataset_text_field prompt", r"dataset_text_field='prompt' is not supported .*builds the datasets"),
    ("--chat_template_path t.jinja", r"chat_template_path='t.jinja' is not supported .*completion-form prompts"),
    ("--assistant_only_loss true", r"assistant_only_loss=True is not supported .*loss: completion"),
    ("--model_init_kwargs {\"revision\":\"v1\"}", r"model_init_kwargs=.* not supported .*use dtype.*model_revision"),
    ("--include_num_input_tokens_seen false", r"include_num_input_tokens_seen=.* cannot be set here: .*run.json"),
    ("--completion_only_loss true", r"completion_only_loss=True cannot be set here: .*loss: completion"),
    ("--do_predict true", r"do_predict=True cannot be set here: .*never predicts"),
])
def test_trl_keys_lora_sft_would_ignore_or_overwrite_are_refused(override: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_config(CONFIGS / "tiny_cpu.yaml", override.split())


def test_trl_keys_that_agree_with_ftbench_are_accepted() -> None:
    config = load_config(CONFIGS / "tiny_cpu.yaml", ["--loss", "completion", "--completion_only_loss", "true",
                                                     "--use_peft", "true", "--load_in_4bit", "false",
                                                     "--do_train", "true"])
    assert config.training.completion_only_loss is True


def test_num_train_epochs_without_max_steps_trains_by_epochs(tmp_path: Path) -> None:
    """ftbench's default max_steps (400) would otherwise win over the epochs asked for, as Trainer lets it."""
    by_epochs = load_config(CONFIGS / "codellama34b_spider.yaml", ["--num_train_epochs", "2"]).training
    assert (by_epochs.num_train_epochs, by_epochs.max_steps) == (2, -1)
    both = load_config(CONFIGS / "codellama34b_spider.yaml", ["--num_train_epochs", "2", "--max_steps", "50"])
    assert both.training.max_steps == 50, "given both, max_steps wins (Trainer's rule)"
    path = tmp_path / "epochs.yaml"
    path.write_text("model_name_or_path: m\ntask: viggo\noutput_dir: o\nnum_train_epochs: 1\n", encoding="utf-8")
    assert load_config(path).training.max_steps == -1, "ftbench's default max_steps does not override the file"
    assert load_config(path, ["--max_steps", "7"]).training.max_steps == 7
    with pytest.raises(InputError, match=r"num_train_epochs=0\.0 must be > 0"):
        load_config(CONFIGS / "codellama34b_spider.yaml", ["--num_train_epochs", "0"])


def test_dataloader_pin_memory_given_is_kept_on_a_gpu_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """On CPU transformers turns pinning off itself (use_cpu); with a GPU, ftbench's default (pin) must not win."""
    from ftbench.finetune.lora import config as lora_config

    monkeypatch.setattr(lora_config, "cuda_available", lambda: True)
    assert load_config(CONFIGS / "tiny_cpu.yaml").training.dataloader_pin_memory
    assert not load_config(CONFIGS / "tiny_cpu.yaml", ["--dataloader_pin_memory", "false"]
                           ).training.dataloader_pin_memory


@pytest.mark.usefixtures("data_env")
def test_model_revision_and_trust_remote_code_reach_every_from_pretrained(
        tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    seen: dict[str, dict[str, Any]] = {}
    for name in ("AutoConfig", "AutoTokenizer", "AutoModelForCausalLM"):
        cls = getattr(transformers, name)
        real = cls.from_pretrained

        def spy(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            seen[_name] = kwargs
            return _real(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)
    config = _tiny_config(tiny_model, tmp_path, "--model_revision", "v1.0", "--trust_remote_code", "true",
                          "--train_limit", "2", "--eval_limit", "1")
    lora.prepare(config)
    lora.load_model(config)
    assert set(seen) == {"AutoConfig", "AutoTokenizer", "AutoModelForCausalLM"}
    assert all((kw["revision"], kw["trust_remote_code"]) == ("v1.0", True) for kw in seen.values()), seen


def _fake_checkpoint(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text("{}", encoding="utf-8")
    return path


def test_trls_resume_from_checkpoint_picks_the_checkpoint(tmp_path: Path) -> None:
    elsewhere = _fake_checkpoint(tmp_path / "old-run" / "checkpoint-20")
    config = load_config(CONFIGS / "tiny_cpu.yaml", ["--output_dir", str(tmp_path / "run"),
                                                     "--resume_from_checkpoint", str(elsewhere)])
    assert lora.checkpoint_to_resume(config) == elsewhere
    assert lora.checkpoint_to_resume(config, resume=str(elsewhere)) == elsewhere, "both given, in agreement"
    with pytest.raises(InputError, match=r"^--resume and resume_from_checkpoint=.* disagree; give one of them"):
        lora.checkpoint_to_resume(config, resume=True)
    with pytest.raises(InputError, match=r"^--resume other and resume_from_checkpoint=.* disagree"):
        lora.checkpoint_to_resume(config, resume="other")


def test_resume_from_checkpoint_true_in_a_yaml_file_is_the_last_checkpoint(tmp_path: Path) -> None:
    """As trl's sft.py passes it to Trainer.train: true means the last checkpoint in output_dir."""
    for step in (10, 20):
        _fake_checkpoint(tmp_path / "run" / f"checkpoint-{step}")
    path = tmp_path / "resume.yaml"
    path.write_text(f"model_name_or_path: m\ntask: viggo\noutput_dir: {tmp_path / 'run'}\n"
                    "resume_from_checkpoint: true\n", encoding="utf-8")
    assert lora.checkpoint_to_resume(load_config(path)) == tmp_path / "run" / "checkpoint-20"
    plain = load_config(CONFIGS / "tiny_cpu.yaml", ["--output_dir", str(tmp_path / "run")])
    assert lora.checkpoint_to_resume(plain, resume=True) == tmp_path / "run" / "checkpoint-20", "lora_sft.py --resume"


def test_resume_from_a_path_that_is_no_checkpoint_says_how_to_resume(tmp_path: Path) -> None:
    config = load_config(CONFIGS / "tiny_cpu.yaml", ["--output_dir", str(tmp_path / "run"),
                                                     "--resume_from_checkpoint", "true"])
    with pytest.raises(InputError, match=r"^true \(looked for in .*\): not a checkpoint directory .*--resume without"):
        lora.checkpoint_to_resume(config)


@pytest.mark.usefixtures("data_env", "no_model_load")
def test_a_fresh_run_refuses_an_output_dir_holding_a_finished_run(tiny_model: Path, tmp_path: Path) -> None:
    """Without checkpoints left (save_total_limit, or deleted), the run would overwrite adapter/ and run.json."""
    config = _tiny_config(tiny_model, tmp_path)
    finished = Path(config.output_dir)
    (finished / "adapter").mkdir(parents=True)
    (finished / "run.json").write_text('{"kind": "lora"}', encoding="utf-8")
    with pytest.raises(InputError, match=r"already holds a finished run .*choose another output_dir"):
        lora.train(config)
    assert (finished / "run.json").read_text(encoding="utf-8") == '{"kind": "lora"}'


def test_resuming_a_finished_run_at_its_last_step_is_refused(tmp_path: Path) -> None:
    """It would train nothing and rewrite run.json; raising max_steps is how to go on."""
    last = _fake_checkpoint(tmp_path / "run" / "checkpoint-30")
    (last / "trainer_state.json").write_text('{"global_step": 30}', encoding="utf-8")
    (tmp_path / "run" / "run.json").write_text('{"kind": "lora"}', encoding="utf-8")
    config = load_config(CONFIGS / "tiny_cpu.yaml", ["--output_dir", str(tmp_path / "run")])
    with pytest.raises(InputError, match=r"checkpoint-30 is at step 30 and the run already finished \(max_steps=30\)"):
        lora.checkpoint_to_resume(config, resume=True)
    longer = load_config(CONFIGS / "tiny_cpu.yaml", ["--output_dir", str(tmp_path / "run"), "--max_steps", "60"])
    assert lora.checkpoint_to_resume(longer, resume=True) == last


def test_do_eval_false_trains_without_evaluating(tmp_path: Path) -> None:
    """transformers turns do_eval back on whenever eval_strategy is not "no" (ftbench's default: steps), and Trainer
    evaluates by eval_strategy alone: do_eval: false must mean eval_strategy: no, or be refused beside another."""
    for override in (["--do_eval", "false"], ["--do_eval=False"], ["--do-eval", "no"]):
        training = load_config(CONFIGS / "tiny_cpu.yaml", override).training
        assert (training.do_eval, training.eval_strategy) == (False, "no"), override
    path = tmp_path / "no-eval.yaml"
    path.write_text("model_name_or_path: m\ntask: viggo\noutput_dir: o\ndo_eval: false\n", encoding="utf-8")
    assert load_config(path).training.eval_strategy == "no"
    assert load_config(path, ["--do_eval"]).training.eval_strategy == "steps", "the command line wins"
    assert load_config(path, ["--eval_strategy", "no"]).training.do_eval is False
    assert load_config(CONFIGS / "tiny_cpu.yaml").training.eval_strategy == "steps"
    with pytest.raises(InputError, match="do_eval=false and eval_strategy='steps' disagree"):
        load_config(path, ["--eval_strategy", "steps"])

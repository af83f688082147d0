"""The tiny model trains from tiny_cpu.yaml on the shared data; its adapter loads in peft and lm-eval; resume works."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ftbench.errors import InputError
from ftbench.finetune import lora
from ftbench.finetune.lora import trainer as lora_trainer
from ftbench.finetune.lora.config import LoraRunConfig, load_config
from ftbench.finetune.record import cost_from_run_json
from ftbench.pricing import CPU_PRICE_PER_CORE_HOUR
from tests.conftest import have_mirror, mirror_dir
from tests.lmeval_runs import evaluate_adapter

CONFIG = Path(__file__).resolve().parents[1] / "training" / "configs" / "tiny_cpu.yaml"
STEPS = 30


@pytest.fixture(scope="module")
def data_dir_env() -> Iterator[None]:
    if not have_mirror():
        pytest.skip(f"dataset mirror not found at {mirror_dir()}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FTBENCH_DATA_DIR", str(mirror_dir()))
        yield


def tiny_config(tiny_model: Path, output_dir: Path, *overrides: str) -> LoraRunConfig:
    return load_config(CONFIG, ["--model_name_or_path", str(tiny_model), "--output_dir", str(output_dir), *overrides])


@pytest.fixture(scope="module")
def trained(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory, data_dir_env: None) -> lora.TrainResult:
    """One 30-step run of tiny_cpu.yaml, shared by the checks below."""
    return lora.train(tiny_config(tiny_model, tmp_path_factory.mktemp("lora") / "run"))


def test_loss_goes_down(trained: lora.TrainResult) -> None:
    train_curve, eval_curve = trained.record.train_loss_curve, trained.record.eval_loss_curve
    assert train_curve[-1]["loss"] < train_curve[0]["loss"]
    assert [p["step"] for p in eval_curve] == [10, 20, 30]
    assert eval_curve[-1]["eval_loss"] < eval_curve[0]["eval_loss"]


def test_run_json_fields_are_present_and_consistent(trained: lora.TrainResult) -> None:
    record = json.loads(trained.run_json.read_text(encoding="utf-8"))
    assert trained.run_json.parent == trained.adapter_dir.parent, "run.json sits beside the adapter"
    assert (record["steps"], record["max_steps"], record["resumed_from"]) == (STEPS, STEPS, None)
    assert record["tokens_seen"] > STEPS * 8 * 50, "30 steps of 8 ViGGO examples of 50+ tokens"
    assert record["gpu_hours"] == pytest.approx(record["wall_time_s"] / 3600 * record["gpu_count"])
    assert record["cost_usd"] == pytest.approx(record["gpu_hours"] * record["price_per_gpu_hour"])
    # A CPU run counts the cores it used and is priced per core-hour, never as A40 hours ($0.475).
    assert (record["price_per_gpu_hour"], record["gpu_name"]) == (CPU_PRICE_PER_CORE_HOUR, "cpu")
    import torch

    assert record["gpu_count"] == torch.get_num_threads()
    assert (record["world_size"], record["global_batch_size"]) == (1, 8)
    assert record["config"]["model_name_or_path"] and record["config"]["lora_r"] == 8
    assert "git_hash" in record and record["versions"]["peft"]
    assert cost_from_run_json(trained.run_json).cost_usd == pytest.approx(record["cost_usd"])


def test_adapter_loads_in_peft_and_changes_the_model(trained: lora.TrainResult, tiny_model: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[5, 17, 42, 99, 7]])
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    with torch.no_grad():
        before = base(ids).logits
        tuned = PeftModel.from_pretrained(base, str(trained.adapter_dir)).eval()
        after = tuned(ids).logits
    assert not torch.allclose(before, after), "a trained adapter changes the logits"


def test_merged_model_matches_the_adapter(trained: lora.TrainResult, tiny_model: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    merged_dir = lora.merge_adapter(trained.adapter_dir, tmp_path / "merged")
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(merged_dir)(ids).logits
        peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model),
                                               str(trained.adapter_dir)).eval()
        expected = peft_model(ids).logits
    torch.testing.assert_close(merged, expected, rtol=1e-4, atol=1e-4)
    assert (merged_dir / "tokenizer.json").is_file()


def test_training_tokens_are_the_prompt_text_plus_eos(tiny_model: Path, tmp_path: Path, data_dir_env: None) -> None:
    """What trl feeds the model decodes to exactly the training text, then the EOS token."""
    config = tiny_config(tiny_model, tmp_path / "run", "--train_limit", "2", "--eval_limit", "1",
                         "--max_length", "2048")
    data = lora.prepare(config)
    trainer = lora.build_trainer(config, lora.load_model(config), data.tokenizer, *data.datasets(config.task.loss))
    ids = trainer.train_dataset[0]["input_ids"]
    assert data.tokenizer.decode(ids) == data.train_examples[0].text + data.tokenizer.eos_token


def _quantized_trainer(tiny_model: Path, tmp_path: Path) -> Any:
    """A trainer over the tiny model marked the way trl 1.16 detects a bitsandbytes model (``is_loaded_in_8bit``)."""
    config = tiny_config(tiny_model, tmp_path / "run", "--train_limit", "2", "--eval_limit", "1")
    data = lora.prepare(config)
    model = lora.load_model(config)
    model.is_loaded_in_8bit = True
    return lora.build_trainer(config, model, data.tokenizer, *data.datasets(config.task.loss))


def _trainable_dtypes(trainer: Any) -> dict[str, Any]:
    return {name: p.dtype for name, p in trainer.model.named_parameters() if p.requires_grad}


def test_trainable_lora_weights_of_a_quantized_model_are_fp32(tiny_model: Path, tmp_path: Path,
                                                                data_dir_env: None) -> None:
    """trl casts them to bf16 for an int8 model; fp16 autocast's GradScaler cannot unscale bf16 gradients."""
    import torch

    dtypes = _trainable_dtypes(_quantized_trainer(tiny_model, tmp_path))
    assert len(dtypes) == 4 * 2 * 2, "lora_A and lora_B of q/k/v/o in both layers"
    assert set(dtypes.values()) == {torch.float32}


def test_trl_really_casts_a_quantized_models_lora_weights(tiny_model: Path, tmp_path: Path, data_dir_env: None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The marking above reaches trl's cast: without ftbench's upcast the weights come out bf16."""
    import torch

    monkeypatch.setattr(lora_trainer, "upcast_trainable_parameters", lambda model: 0)
    assert set(_trainable_dtypes(_quantized_trainer(tiny_model, tmp_path)).values()) == {torch.bfloat16}


@pytest.mark.slow
def test_adapter_evaluates_through_lm_eval(trained: lora.TrainResult, tiny_model: Path, tmp_path: Path) -> None:
    results = evaluate_adapter(tiny_model, Path(trained.adapter_dir), tmp_path / "lm-eval")
    assert {"exact_match,none", "mr_match,none", "slot_f1,none", "valid_mr,none"} <= set(results)


class _Interrupted(Exception):
    """Stands in for a crash or a killed job."""


def _callback(on_step_end: Any) -> Any:
    from transformers import TrainerCallback

    class _Hook(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            on_step_end(state.global_step)

    return _Hook()


def test_do_eval_false_trains_without_evaluating(tiny_model: Path, tmp_path: Path, data_dir_env: None) -> None:
    """do_eval: false once still evaluated every eval_steps (transformers turns it back on beside eval_strategy)."""
    result = lora.train(tiny_config(tiny_model, tmp_path / "run", "--do_eval", "false", "--max_steps", "10"))
    assert result.record.eval_loss_curve == [] and result.record.train_loss_curve
    evaluated = lora.train(tiny_config(tiny_model, tmp_path / "run2", "--max_steps", "10"))
    assert [point["step"] for point in evaluated.record.eval_loss_curve] == [10], "the default evaluates"


def test_resume_continues_from_the_checkpoint(tiny_model: Path, tmp_path: Path, data_dir_env: None) -> None:
    config = tiny_config(tiny_model, tmp_path / "run")

    def crash_at_15(step: int) -> None:
        if step == 15:
            raise _Interrupted

    with pytest.raises(_Interrupted):
        lora.train(config, callbacks=[_callback(crash_at_15)])
    assert sorted(p.name for p in Path(config.output_dir).glob("checkpoint-*")) == ["checkpoint-10"]

    # trl's own flag, as its sft.py passes it to Trainer.train, into a new output_dir (lora_sft.py's --resume picks
    # the same checkpoint-10: tests/test_lora_config.py). It once parsed and was ignored: a silent restart at step 0.
    checkpoint = Path(config.output_dir) / "checkpoint-10"
    # Another adapter shape is refused before the model loads (it failed inside Trainer with a traceback of sizes).
    for other, named in ((["--lora_r", "4"], "lora_r: 4 here, 8 in the checkpoint"),
                         (["--lora_target_modules", "q_proj", "v_proj"], "lora_target_modules: ['q_proj', 'v_proj']")):
        with pytest.raises(InputError, match=re.escape(named)):
            lora.train(tiny_config(tiny_model, tmp_path / "other", "--resume_from_checkpoint", str(checkpoint), *other))
    resumed = tiny_config(tiny_model, tmp_path / "run2", "--resume_from_checkpoint", str(checkpoint))
    steps_run: list[int] = []
    result = lora.train(resumed, callbacks=[_callback(steps_run.append)])
    assert steps_run == list(range(11, STEPS + 1)), "picks up after checkpoint-10, no step twice"
    assert (result.record.steps, result.record.resumed_from) == (STEPS, str(checkpoint))
    logged = [p["step"] for p in result.record.train_loss_curve]
    assert logged == sorted(set(logged)) and logged[-1] == STEPS


@pytest.mark.slow
def test_benchmark_runs_both_recipes_on_cpu(data_dir_env: None) -> None:
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_lora_train.py"
    done = subprocess.run([sys.executable, str(script), "--shape", "tiny", "--device", "cpu", "--steps", "2",
                           "--warmup", "1"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()
            if line.startswith(("study ", "fast ")) and "tokens/s:" not in line}
    assert set(rows) == {"study", "fast"} and all(float(row[1]) > 0 for row in rows.values())
    assert "fast / study tokens/s" in done.stdout

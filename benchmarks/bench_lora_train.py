"""LoRA training speed: the study's recipe vs the fast variant, side by side, on a random-initialised model.

Builds a CodeLlama-shaped model with random weights (no download), trains it with each recipe's config through
the same trl SFTTrainer path as training/lora_sft.py on real spider_sql (or viggo) examples, and prints real
(non-padding) tokens/s, step time, model FLOPs utilisation (see ftbench.finetune.lora.flops) and the wall time and
cost of the study's 400-step run at that speed.

    # H200 (or any >= 80 GB GPU), the figures for the README:
    python benchmarks/bench_lora_train.py --shape 34b --steps 10 --price-per-hour 3.50
    python benchmarks/bench_lora_train.py --shape 7b --steps 10
    python benchmarks/bench_lora_train.py --shape 34b --study-weights int8     # needs bitsandbytes
    # CPU smoke run (the tests run this; its figures say nothing about GPUs):
    FTBENCH_DATA_DIR=../shared/data python benchmarks/bench_lora_train.py --shape tiny --device cpu --steps 2

Token counts come from a tokenizer trained on the data (or --tokenizer, e.g. CodeLlama's): the per-example
lengths, hence the padding share, depend on it. Each step here is one micro-batch (gradient accumulation 1).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftbench.finetune.lora import (
    SHAPES,
    LlamaShape,
    LoraRunConfig,
    build_trainer,
    load_config,
    lora_flops_per_token,
    mfu,
    peak_tflops,
    task_examples,
    to_dataset,
)

CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"
STUDY_HOURS = {"spider_sql": 7.0, "viggo": 9.0}  # the study's A40 wall times for 400 steps
CPU_OVERRIDES = ("--dtype", "float32", "--fp16", "false", "--bf16", "false", "--load_in_8bit", "false",
                 "--attn_implementation", "sdpa")
NO_EVAL_NO_SAVE = {"eval_strategy": "no", "save_strategy": "no", "logging_strategy": "no", "report_to": "none",
                   "disable_tqdm": True}


@dataclass(frozen=True)
class Measurement:
    recipe: str
    tokens_per_s: float
    step_s: float
    mean_tokens_per_example: float
    peak_memory_gib: float | None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="34b")
    parser.add_argument("--device", choices=("cuda", "cpu"), default=None, help="default: cuda when available")
    parser.add_argument("--task", choices=("spider_sql", "viggo"), default="spider_sql")
    parser.add_argument("--study-config", type=Path, default=None, help="default: codellama34b_<task>.yaml")
    parser.add_argument("--fast-config", type=Path, default=None, help="default: codellama34b_<task>_fast.yaml")
    parser.add_argument("--study-weights", choices=("fp16", "int8"), default="fp16",
                        help="int8 = the study's bitsandbytes loading (needs bitsandbytes and CUDA)")
    parser.add_argument("--steps", type=int, default=10, help="timed micro-batch steps per recipe")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (allocator, kernels)")
    parser.add_argument("--tokenizer", default=None, help="tokenizer to count tokens with (e.g. CodeLlama's)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="override the device's peak")
    parser.add_argument("--price-per-hour", type=float, default=None, help="$/GPU-hour for the cost estimate")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    device = args.device or ("cuda" if _cuda() else "cpu")
    shape = SHAPES[args.shape]
    tokenizer = _tokenizer(args.tokenizer)
    recipes = {"study": _recipe(args.study_config or CONFIGS / f"codellama34b_{_short(args.task)}.yaml", device),
               "fast": _recipe(args.fast_config or CONFIGS / f"codellama34b_{_short(args.task)}_fast.yaml", device)}
    results = [measure(name, config, shape, tokenizer, device, args) for name, config in recipes.items()]
    report(results, shape, device, args)


def _short(task: str) -> str:
    return "spider" if task == "spider_sql" else task


def _recipe(path: Path, device: str) -> LoraRunConfig:
    overrides = ["--model_name_or_path", "unused", "--output_dir", tempfile.mkdtemp(prefix="bench-lora-")]
    return load_config(path, [*overrides, *(CPU_OVERRIDES if device == "cpu" else ())])


def measure(name: str, config: LoraRunConfig, shape: LlamaShape, tokenizer: Any, device: str,
            args: argparse.Namespace) -> Measurement:
    """Train ``warmup + steps`` micro-batches of ``config``'s recipe; time the last ``steps``."""
    import torch

    batches = args.steps + args.warmup
    examples = task_examples(config.task.task, "train", limit=config.training.per_device_train_batch_size * batches)
    model = random_model(shape, config, tokenizer, device, args.study_weights if name == "study" else None)
    timer = _StepTimer(args.warmup)
    overrides = {**NO_EVAL_NO_SAVE, "max_steps": args.steps + args.warmup, "gradient_accumulation_steps": 1,
                 "use_cpu": device == "cpu", "warmup_steps": 0}
    trainer = build_trainer(config, model, tokenizer, to_dataset(examples, config.task.loss), None,
                            callbacks=[timer.callback()], args_overrides=overrides)
    trainer.train()
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    memory = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    del trainer, model
    _free(device)
    return Measurement(name, timer.tokens_per_s(), timer.step_s(), statistics.mean(lengths), memory)


def random_model(shape: LlamaShape, config: LoraRunConfig, tokenizer: Any, device: str, weights: str | None) -> Any:
    """A Llama model of ``shape`` with random weights, built directly on ``device`` in the recipe's dtype."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    llama = LlamaConfig(vocab_size=max(shape.vocab_size, len(tokenizer)), hidden_size=shape.hidden_size,
                        intermediate_size=shape.intermediate_size, num_hidden_layers=shape.num_layers,
                        num_attention_heads=shape.num_heads, num_key_value_heads=shape.num_kv_heads,
                        max_position_embeddings=4096, rope_theta=1e6, tie_word_embeddings=False,
                        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(llama, dtype=getattr(torch, config.dtype),
                                                 attn_implementation=config.model.attn_implementation)
    if weights == "int8":
        model = _to_int8(model, device, bool(config.training.activation_checkpointing))
    return model


def _to_int8(model: Any, device: str, checkpointing: bool) -> Any:
    """Swap every projection for a bitsandbytes int8 layer, as ``load_in_8bit=True`` loading does."""
    import bitsandbytes as bnb
    import torch
    from peft import prepare_model_for_kbit_training

    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Linear) and child_name != "lm_head":
                layer = bnb.nn.Linear8bitLt(child.in_features, child.out_features, bias=child.bias is not None,
                                            has_fp16_weights=False, threshold=6.0)
                layer.weight = bnb.nn.Int8Params(child.weight.data.cpu(), requires_grad=False,
                                                 has_fp16_weights=False)
                setattr(parent, child_name, layer.to(device))  # quantizes on the move to CUDA
    model.is_loaded_in_8bit = True
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)


class _StepTimer:
    """Real tokens and wall time of each step after the warm-up ones."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.marks: list[tuple[float, int]] = []

    def callback(self) -> Any:
        from transformers import TrainerCallback

        timer = self

        class _Mark(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                _sync()
                if state.global_step >= timer.warmup:
                    timer.marks.append((time.perf_counter(), int(state.num_input_tokens_seen)))

        return _Mark()

    def tokens_per_s(self) -> float:
        (t0, n0), (t1, n1) = self.marks[0], self.marks[-1]
        return (n1 - n0) / (t1 - t0)

    def step_s(self) -> float:
        return (self.marks[-1][0] - self.marks[0][0]) / (len(self.marks) - 1)


def report(results: list[Measurement], shape: LlamaShape, device: str, args: argparse.Namespace) -> None:
    name = _device_name(device)
    peak = args.peak_tflops or peak_tflops(name)
    print(f"\nLoRA training, {shape.name} shape (random weights), {args.task}, device {name}, "
          f"peak {peak or 'unknown'} TFLOP/s, {args.steps} timed steps of one micro-batch")
    print(f"{'recipe':<7} {'tokens/s':>10} {'step s':>8} {'tok/example':>11} {'MFU':>7} {'peak GiB':>9} "
          f"{'400-step run':>13} {'cost':>9}")
    for m in results:
        flops = lora_flops_per_token(shape, m.mean_tokens_per_example)
        util = mfu(m.tokens_per_s, flops, peak)
        run_tokens = 400 * 128 * m.mean_tokens_per_example
        hours = run_tokens / m.tokens_per_s / 3600
        cost = f"${hours * args.price_per_hour:.2f}" if args.price_per_hour else "n/a"
        print(f"{m.recipe:<7} {m.tokens_per_s:>10.1f} {m.step_s:>8.3f} {m.mean_tokens_per_example:>11.1f} "
              f"{f'{util:.1%}' if util is not None else 'n/a':>7} "
              f"{f'{m.peak_memory_gib:.1f}' if m.peak_memory_gib is not None else 'n/a':>9} {hours:>12.2f}h {cost:>9}")
    fast, study = results[1], results[0]
    print(f"fast / study tokens/s: {fast.tokens_per_s / study.tokens_per_s:.2f}x; the study's 400-step run took "
          f"{STUDY_HOURS[args.task]:.0f} h on an A40 (${STUDY_HOURS[args.task] * 0.475:.2f} at $0.475/h)")


def _tokenizer(path: str | None) -> Any:
    from transformers import AutoTokenizer

    if path:
        tokenizer = AutoTokenizer.from_pretrained(path)
        tokenizer.pad_token = tokenizer.pad_token or tokenizer.unk_token or tokenizer.eos_token
        return tokenizer
    from ftbench.tiny import build_tiny_model, corpus_from_data

    folder = build_tiny_model(Path(tempfile.mkdtemp(prefix="bench-tok-")), corpus_from_data(limit=200))
    return AutoTokenizer.from_pretrained(folder)


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _free(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _device_name(device: str) -> str:
    import platform

    import torch

    return str(torch.cuda.get_device_name(0)) if device == "cuda" else f"cpu ({platform.processor() or 'unknown'})"


if __name__ == "__main__":
    main()

"""The demo's recipe: train a tiny Llama from scratch on the task data, then fine-tune it fully or with LoRA.

What makes a 0.9M-parameter model learn ViGGO on two CPU cores (the recipe measured in issue 15):

- the tokenizer holds each task's fixed instruction as one token (:func:`ftbench.tiny.build_tiny_model`), so a
  ViGGO prompt is ~50 tokens instead of ~200 and the model's capacity goes to the sentence and the answer;
- loss on the completion only (the answer and its end), not on the prompt;
- AdamW at 3e-3 with a cosine schedule and a short warm-up;
- batches of examples of similar length, at most ``batch_tokens`` tokens (padding included) each.

The work is fixed by step count, never by seconds, so a run on a busy machine is slower but learns the same.
A plain PyTorch loop, because the steps are ~0.1 s and a fixed-*token* batch is what the recipe needs
(``transformers.Trainer`` batches a fixed number of examples); LoRA comes from peft, as in
:mod:`ftbench.finetune.lora`. Each run writes the model (or adapter) and a ``run.json`` record in the format
of :mod:`ftbench.finetune.lora.run`, with its loss curves and CPU- or GPU-hours.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ftbench.finetune.lora.data import TrainingExample
from ftbench.finetune.lora.run import build_cost, git_hash, library_versions
from ftbench.finetune.record import LoraRunRecord as RunRecord
from ftbench.finetune.record import write_run_json

#: Called after each step with (steps done, total steps, latest training loss).
Progress = Callable[[int, int, float], None]


@dataclass(frozen=True)
class Shard:
    """This process's part of a data-parallel run of ``world`` processes (a ``torch.distributed`` group already
    joined): it takes every ``world``-th example of each batch from its ``rank`` on; the gradients are summed
    across the processes each step, so every process takes the same optimizer steps as one process on whole
    batches would (up to float rounding). Rank 0 evaluates, saves and reports."""

    rank: int
    world: int

    def take(self, indices: Sequence[int]) -> list[int]:
        return list(indices[self.rank:: self.world])


@dataclass(frozen=True)
class Recipe:
    """One training run: from which weights, how many steps, full-parameter or LoRA, and where in the learning-rate
    schedule it runs: a run of ``steps`` steps from ``first_step`` of a ``schedule_steps``-step schedule (the
    whole schedule when ``schedule_steps`` is None). The demo's recipes continue the base's schedule from where
    the base stopped, as one run forked in two."""

    name: str
    steps: int
    first_step: int = 0
    schedule_steps: int | None = None
    learning_rate: float = 3e-3
    lora_r: int | None = None  # None: every parameter trains
    lora_alpha: int = 16
    batch_tokens: int = 3000
    warmup_steps: int = 20
    weight_decay: float = 0.0
    eval_every: int = 25
    seed: int = 0
    lora_target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                            "down_proj")

    @property
    def method(self) -> str:
        return "full" if self.lora_r is None else f"lora r={self.lora_r}"


@dataclass(frozen=True)
class Encoded:
    """Token ids of one example and where its completion starts (the loss covers ids[start:])."""

    ids: tuple[int, ...]
    start: int


@dataclass
class Curves:
    train: list[dict[str, float]] = field(default_factory=list)
    eval: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class ScratchResult:
    model_dir: Path  # full weights (full recipe) or the adapter (LoRA recipe)
    run_json: Path
    record: RunRecord

    @classmethod
    def read(cls, out_dir: Path) -> ScratchResult:
        """A finished run, from the folder :func:`train` wrote."""
        from ftbench.errors import InputError
        from ftbench.finetune.record import read_run_json

        record = read_run_json(out_dir / "run.json")
        if not isinstance(record, RunRecord):
            raise InputError(f"{out_dir / 'run.json'} is not the record of a local training run")
        return cls(out_dir / "model", out_dir / "run.json", record)


def encode(examples: Sequence[TrainingExample], tokenizer: Any) -> list[Encoded]:
    """Prompt and full text tokenized as lm-eval will see them; the EOS token ends every example."""
    prompts = tokenizer([e.prompt for e in examples], add_special_tokens=False)["input_ids"]
    texts = tokenizer([e.text for e in examples], add_special_tokens=False)["input_ids"]
    return [Encoded((*text, tokenizer.eos_token_id), len(prompt)) for prompt, text in zip(prompts, texts, strict=True)]


def token_batches(examples: Sequence[Encoded], batch_tokens: int, rng: random.Random) -> list[list[int]]:
    """Indices of examples grouped by length: each batch's padded size (count × longest) is at most
    ``batch_tokens``; batch order shuffled. An example longer than the budget trains alone."""
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i].ids), rng.random()))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        longest = len(examples[index].ids)  # sorted: the newest is the longest
        if current and (len(current) + 1) * longest > batch_tokens:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def collate(examples: Sequence[Encoded], pad_id: int) -> dict[str, Any]:
    """Right-padded ids, attention mask and labels (-100 on the prompt and the padding)."""
    import torch

    width = max(len(e.ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        tokens = torch.tensor(example.ids, dtype=torch.long)
        ids[row, : len(tokens)] = tokens
        mask[row, : len(tokens)] = 1
        labels[row, example.start: len(tokens)] = tokens[example.start:]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def cosine_lr(step: int, recipe: Recipe) -> float:
    """Learning rate at the run's ``step``: linear warm-up, then cosine decay to 0 at the schedule's last step."""
    at, total = recipe.first_step + step, recipe.schedule_steps or recipe.steps
    if at < recipe.warmup_steps:
        return recipe.learning_rate * (at + 1) / recipe.warmup_steps
    progress = (at - recipe.warmup_steps) / max(1, total - recipe.warmup_steps)
    return recipe.learning_rate * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train(model_dir: Path, recipe: Recipe, train_set: Sequence[TrainingExample],
          eval_set: Sequence[TrainingExample], out_dir: Path, progress: Progress | None = None) -> ScratchResult:
    """Train ``recipe`` from the weights in ``model_dir``; writes ``out_dir/model`` and ``out_dir/run.json``."""
    result = train_shard(model_dir, recipe, train_set, eval_set, out_dir, progress)
    assert result is not None  # one process: rank 0
    return result


def train_shard(model_dir: Path, recipe: Recipe, train_set: Sequence[TrainingExample],
                eval_set: Sequence[TrainingExample], out_dir: Path, progress: Progress | None = None,
                shard: Shard | None = None) -> ScratchResult | None:
    """:func:`train`, or this process's part of a data-parallel run of it (``shard``): rank 0 evaluates, saves
    and returns the result, the other ranks return None."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    torch.manual_seed(recipe.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = _trainable(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32), recipe)
    leader = shard is None or shard.rank == 0
    data, held_out = encode(train_set, tokenizer), encode(eval_set, tokenizer) if leader else []
    curves, tokens_seen = _loop(model, recipe, data, held_out, tokenizer.pad_token_id,
                                progress if leader else None, shard)
    if not leader:
        return None
    saved = out_dir / "model"
    model.save_pretrained(saved)
    tokenizer.save_pretrained(saved)
    world = 1 if shard is None else shard.world
    record = _record(recipe, model_dir, saved, curves, tokens_seen, time.monotonic() - started, world)
    return ScratchResult(saved, write_run_json(out_dir, record), record)


def _trainable(model: Any, recipe: Recipe) -> Any:
    if recipe.lora_r is None:
        return model
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=recipe.lora_r, lora_alpha=recipe.lora_alpha, lora_dropout=0.0, bias="none",
                        target_modules=list(recipe.lora_target_modules), task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def _loop(model: Any, recipe: Recipe, data: list[Encoded], held_out: list[Encoded], pad_id: int,
          progress: Progress | None, shard: Shard | None = None) -> tuple[Curves, int]:
    import torch

    rng = random.Random(recipe.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    # fused: one kernel for all parameters (measured 3.5 instead of 7-20 ms a step on this CPU)
    optimizer = torch.optim.AdamW(params, lr=recipe.learning_rate, weight_decay=recipe.weight_decay, fused=True)
    curves, tokens_seen = Curves(), 0
    batches: Iterator[list[int]] = iter([])
    model.train()
    for step in range(recipe.steps):
        indices = next(batches, None)
        if indices is None:  # a new epoch
            batches = iter(token_batches(data, recipe.batch_tokens, rng))
            indices = next(batches)
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, recipe)
        value, tokens = shard_step(model, params, [data[i] for i in indices], pad_id, shard)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens_seen += tokens
        curves.train.append({"step": step + 1, "loss": round(value, 4)})
        if held_out and ((step + 1) % recipe.eval_every == 0 or step + 1 == recipe.steps):
            curves.eval.append({"step": step + 1, "eval_loss": round(eval_loss(model, held_out, pad_id), 4)})
        if progress is not None:
            progress(step + 1, recipe.steps, value)
    model.eval()
    return curves, tokens_seen


def labelled_tokens(examples: Sequence[Encoded]) -> int:
    """How many tokens of ``examples`` the loss covers (each completion's, after the first position)."""
    return sum(len(example.ids) - max(example.start, 1) for example in examples)


def shard_step(model: Any, params: Sequence[Any], examples: Sequence[Encoded], pad_id: int,
               shard: Shard | None) -> tuple[float, int]:
    """Forward and backward on one batch (this process's share of it, with ``shard``), leaving in ``params``'
    gradients those of the whole batch's mean completion loss; returns that loss and the batch's tokens.

    With a shard, the loss is the sum of this share's token losses over the whole batch's labelled tokens, so
    the gradients summed across the processes (one all-reduce of one flat buffer, the loss and token count
    riding along) are the whole batch's."""
    import torch

    if shard is None:
        batch = collate(examples, pad_id)
        loss = completion_loss(model, batch)
        loss.backward()
        return float(loss.detach()), int(batch["attention_mask"].sum())
    import torch.distributed as dist

    mine = [examples[i] for i in shard.take(range(len(examples)))]
    value, tokens = 0.0, 0
    if mine:  # a batch of one long example leaves the other ranks nothing to do
        batch = collate(mine, pad_id)
        loss = completion_loss(model, batch, over=labelled_tokens(examples))
        loss.backward()
        value, tokens = float(loss.detach()), int(batch["attention_mask"].sum())
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([*(grad.reshape(-1) for grad in grads), torch.tensor([value, float(tokens)])])
    dist.all_reduce(flat)
    offset = 0
    for param, grad in zip(params, grads, strict=True):
        param.grad = flat[offset: offset + grad.numel()].view_as(grad)
        offset += grad.numel()
    return float(flat[-2]), round(float(flat[-1]))


def completion_loss(model: Any, batch: dict[str, Any], over: int | None = None) -> Any:
    """Mean cross-entropy over the labelled (completion) tokens, as ``model(**batch).loss`` computes it, with the
    output layer run only at the positions that predict a labelled token: the prompt's and the padding's logits
    are never needed, and the 2,048-way output layer is the biggest matrix of the model. (Keeping every position
    from the earliest completion token on, as before, computed 1.24× the logits needed on the demo's batches.)
    With ``over``: the sum of the token losses divided by ``over`` (a whole batch's labelled tokens, of which
    ``batch`` holds a share)."""
    import torch

    causal = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft model's Llama
    hidden = causal.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    targets = batch["labels"][:, 1:]  # position p predicts token p + 1
    labelled = targets != -100
    logits = causal.lm_head(hidden[:, :-1][labelled])
    if over is None:
        return torch.nn.functional.cross_entropy(logits.float(), targets[labelled])
    return torch.nn.functional.cross_entropy(logits.float(), targets[labelled], reduction="sum") / over


def eval_loss(model: Any, held_out: Sequence[Encoded], pad_id: int, batch_size: int = 32) -> float:
    """Mean completion-token loss over ``held_out`` (the model is left in training mode)."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(held_out), batch_size):
            batch = collate(held_out[start: start + batch_size], pad_id)
            tokens = int((batch["labels"][:, 1:] != -100).sum())
            total += float(completion_loss(model, batch)) * tokens
            count += tokens
    model.train()
    return total / max(count, 1)


def _record(recipe: Recipe, base: Path, saved: Path, curves: Curves, tokens_seen: int, wall_s: float,
            world: int = 1) -> RunRecord:
    cost = build_cost(wall_s, world_size=world)
    config = {**asdict(recipe), "method": recipe.method, "base_model": str(base), "loss": "completion",
              "lr_scheduler": "cosine", "optim": "adamw_torch_fused"}
    return RunRecord(
        config=config, git_hash=git_hash(), adapter_dir=str(saved), steps=recipe.steps, max_steps=recipe.steps,
        tokens_seen=tokens_seen, wall_time_s=cost.wall_time_s, gpu_name=cost.gpu_name, gpu_count=cost.gpu_count,
        world_size=world, per_device_train_batch_size=None, global_batch_size=None,
        gpu_hours=cost.gpu_hours, price_per_gpu_hour=cost.price_per_gpu_hour, cost_usd=cost.cost_usd,
        resumed_from=None, train_loss_curve=curves.train, eval_loss_curve=curves.eval, versions=library_versions(),
    )

"""Seconds per training step of the demo's from-scratch recipe, old way and new way side by side.

    FTBENCH_DATA_DIR=../shared/data python benchmarks/bench_scratch_step.py [--steps 15] [--rounds 2]

Builds the demo's 0.91M-parameter model once, then times the same batches (ViGGO and 400 SQL training rows,
length-sorted batches of at most 3,000 tokens) in fresh processes, alternating, for each combination of:

- loss: ``full`` (``model(**batch).loss``: the output layer over every position, as before) or ``completion``
  (:func:`ftbench.finetune.scratch.completion_loss`: the output layer only where a completion token is
  predicted);
- OpenMP wait policy: ``ACTIVE`` (threads spin while they wait; what PyTorch gets unless told otherwise) or
  ``PASSIVE`` (threads sleep; what ``ftbench demo`` sets).

Alternating in one run keeps the ratios meaningful on a machine that other work also loads; the load average is
printed with every figure. The first two steps of each process are warm-up and not timed.

    FTBENCH_DATA_DIR=../shared/data python benchmarks/bench_scratch_step.py --fork [--steps 15] [--rounds 2]

times instead the demo's fork stage (completion loss, sleeping threads, ViGGO only): the full and LoRA r=8
recipes' steps in turn in one process on every core (what ``ftbench demo --in-turn`` does), against both at once
in two processes on half the cores each (what ``ftbench demo`` does unless the machine is busy; the slower of the
two sets the time).
Both workers of a pair set up first and start stepping together.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

VARIANTS = (("full", "ACTIVE"), ("completion", "ACTIVE"), ("full", "PASSIVE"), ("completion", "PASSIVE"))
WARMUP = 2


def build(folder: Path) -> Path:
    from ftbench.demo import demo_examples
    from ftbench.tiny import DEMO_SHAPE, WHOLE_TOKENS, build_tiny_model

    train_set, _ = demo_examples(400)
    return build_tiny_model(folder, [example.text for example in train_set], DEMO_SHAPE, whole_tokens=WHOLE_TOKENS)


def worker(model_dir: Path, loss_kind: str, steps: int, fork: Fork | None = None) -> None:
    import random

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ftbench.demo import LORA_TARGETS, demo_examples
    from ftbench.finetune.scratch import Recipe, collate, completion_loss, encode, token_batches
    from ftbench.finetune.scratch import _trainable as trainable

    if fork is not None:
        torch.set_num_threads(fork.threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if fork is not None:
        model = trainable(model, Recipe(fork.method, steps, lora_r=8 if fork.method == "lora" else None,
                                        lora_target_modules=LORA_TARGETS))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    data = encode(demo_examples(400 if fork is None else 0)[0], tokenizer)
    batches = token_batches(data, 3000, random.Random(0))[: steps + WARMUP]
    if fork is not None:
        fork.wait_for_partner()
    timed = 0.0
    for index, indices in enumerate(batches):
        batch = collate([data[i] for i in indices], tokenizer.pad_token_id)
        started = time.perf_counter()
        loss = model(**batch).loss if loss_kind == "full" else completion_loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if index >= WARMUP:
            timed += time.perf_counter() - started
    print(json.dumps({"s_per_step": timed / steps, "threads": torch.get_num_threads()}))


@dataclass(frozen=True)
class Fork:
    """A worker of the fork-stage comparison: its recipe, threads, and the folder where a pair meets."""

    method: str  # full | lora
    threads: int
    meet: Path | None  # None: no partner

    def wait_for_partner(self) -> None:
        if self.meet is None:
            return
        (self.meet / self.method).touch()
        while len(list(self.meet.iterdir())) < 2:
            time.sleep(0.01)


def fork_seconds(model_dir: Path, steps: int, side_by_side: bool, meet: Path) -> float:
    """Seconds for both recipes' timed steps: in turn on every core, or at once on half the cores each."""
    cores = len(os.sched_getaffinity(0))
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}

    def start(method: str) -> subprocess.Popen[str]:
        threads, partner = (max(1, cores // 2), str(meet)) if side_by_side else (cores, "")
        return subprocess.Popen([sys.executable, __file__, "--worker", str(model_dir), "--steps", str(steps),
                                 "--method", method, "--threads", str(threads), "--meet", partner],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def seconds(process: subprocess.Popen[str]) -> float:
        out, err = process.communicate()
        if process.returncode != 0:
            sys.exit(f"worker failed:\n{err[-2000:]}")
        return float(json.loads(out.strip().splitlines()[-1])["s_per_step"]) * steps

    if side_by_side:
        meet.mkdir()
        pair = [start("full"), start("lora")]
        return max(seconds(process) for process in pair)
    return sum(seconds(start(method)) for method in ("full", "lora"))


def compare_forks(model_dir: Path, steps: int, rounds: int, tmp: Path) -> None:
    times: dict[bool, list[float]] = {False: [], True: []}
    for round_index in range(1, rounds + 1):
        for side_by_side in (False, True):
            seconds = fork_seconds(model_dir, steps, side_by_side, tmp / f"meet-{round_index}")
            times[side_by_side].append(seconds)
            how = "at once, half the cores each" if side_by_side else "in turn, every core"
            print(f"round {round_index}: {how:<30} {seconds:.2f} s for {steps} steps of each recipe ({load()})",
                  flush=True)
    in_turn, at_once = statistics.median(times[False]), statistics.median(times[True])
    print(f"median in turn {in_turn:.2f} s, at once {at_once:.2f} s: {in_turn / at_once:.2f}x faster at once")


def measure(model_dir: Path, loss_kind: str, policy: str, steps: int) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": policy, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, __file__, "--worker", str(model_dir), "--loss", loss_kind,
                           "--steps", str(steps)], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        sys.exit(f"worker failed:\n{done.stderr[-2000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["s_per_step"])


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}, {five:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=15, help="timed steps per process")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fork", action="store_true", help="time the fork stage: recipes in turn vs at once")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--loss", choices=("full", "completion"), default="completion", help=argparse.SUPPRESS)
    parser.add_argument("--method", choices=("full", "lora"), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--meet", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        fork = Fork(args.method, args.threads, Path(args.meet) if args.meet else None) if args.method else None
        worker(args.worker, args.loss, args.steps, fork)
        return
    with tempfile.TemporaryDirectory(prefix="bench-scratch-") as tmp:
        model_dir = build(Path(tmp) / "model")
        print(f"{os.cpu_count()} CPU cores; {args.steps} timed steps per process, {args.rounds} rounds")
        if args.fork:
            compare_forks(model_dir, args.steps, args.rounds, Path(tmp))
            return
        times: dict[tuple[str, str], list[float]] = {variant: [] for variant in VARIANTS}
        for round_index in range(1, args.rounds + 1):
            for variant in VARIANTS:
                seconds = measure(model_dir, *variant, args.steps)
                times[variant].append(seconds)
                print(f"round {round_index}: loss={variant[0]:<10} OMP_WAIT_POLICY={variant[1]:<7} "
                      f"{seconds:.3f} s/step ({load()})", flush=True)
    old = statistics.median(times[("full", "ACTIVE")])
    for variant, values in times.items():
        median = statistics.median(values)
        print(f"median loss={variant[0]:<10} OMP_WAIT_POLICY={variant[1]:<7} {median:.3f} s/step, "
              f"{old / median:.2f}x the old way (full, ACTIVE)")


if __name__ == "__main__":
    main()

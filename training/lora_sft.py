"""LoRA fine-tuning of a causal LM on spider_sql or viggo with trl's SFTTrainer and peft.

Launch (one commented YAML per experiment in training/configs/; ``--key value`` overrides any key). The arguments are
trl's ``SFTConfig`` and ``ModelConfig`` plus ftbench's task, data and price (``--help`` lists them), parsed by
trl's ``TrlParser`` as trl's own ``sft.py`` parses them:

    pip install -e '.[train]' bitsandbytes                   # bitsandbytes: only for load_in_8bit configs
    python training/lora_sft.py --config training/configs/codellama34b_spider.yaml           # the study's recipe
    python training/lora_sft.py --config training/configs/codellama34b_spider_fast.yaml      # bf16, padding-free
    python training/lora_sft.py --config training/configs/codellama34b_viggo.yaml --max_steps 100 \
        --report_to tensorboard
    python training/lora_sft.py --config training/configs/codellama34b_spider.yaml --resume  # continue after a crash
    python training/lora_sft.py --config training/configs/codellama34b_spider.yaml --resume_from_checkpoint \
        ftbench-out/lora/codellama34b_spider/checkpoint-200      # trl's flag: from that checkpoint
    python training/lora_sft.py --config training/configs/codellama34b_spider.yaml --check   # pre-flight checks only

    # Several GPUs: one rank per GPU (DDP, every config); FSDP or DeepSpeed ZeRO-3 for the bf16 (*_fast) configs
    accelerate launch --config_file training/configs/accelerate/ddp.yaml --num_processes 4 \
        training/lora_sft.py --config training/configs/codellama34b_spider.yaml
    accelerate launch --config_file training/configs/accelerate/fsdp.yaml --num_processes 4 \
        training/lora_sft.py --config training/configs/codellama34b_spider_fast.yaml

    # CPU, seconds: build the tiny model, then train it
    ftbench demo --out ftbench-out/demo
    FTBENCH_DATA_DIR=../shared/data python training/lora_sft.py --config training/configs/tiny_cpu.yaml

Writes ``<output_dir>/checkpoint-N/`` every ``save_steps``, the adapter to ``<output_dir>/adapter/`` and
``<output_dir>/run.json`` (config, git hash, steps, tokens seen, loss curves, wall time, GPU, world size, per-rank and
global batch, GPU-hours = wall time × world size, cost); under ``accelerate launch`` only rank 0 writes.
Errors end with one line on stderr and an exit code of ``ftbench.errors`` (the README's table); Ctrl-C exits 130
and keeps the checkpoints. Evaluate the adapter with lm-eval::

    lm_eval --model hf --model_args pretrained=codellama/CodeLlama-34b-hf,peft=<output_dir>/adapter --tasks spider_sql
"""

from __future__ import annotations

import argparse
import sys

from ftbench.errors import run_reporting_errors
from ftbench.finetune.lora import (
    LoraRunConfig,
    WallClock,
    build_trainer,
    checkpoint_to_resume,
    config_parser,
    load_model,
    parse_config,
    prepare,
    save_run,
)

INTERRUPTED = "the checkpoint-N folders saved in output_dir are kept; run the same command with --resume to continue"


def parse_args(argv: list[str] | None = None) -> tuple[LoraRunConfig, argparse.Namespace]:
    """The run config (trl's parser: ``--config FILE`` and ``--key value``) and this script's own options."""
    parser = config_parser()
    parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                        help="continue from the last checkpoint in output_dir (or from CHECKPOINT; trl's "
                             "--resume_from_checkpoint CHECKPOINT does the same)")
    parser.add_argument("--check", action="store_true", help="run the pre-flight checks and stop")
    return parse_config(sys.argv[1:] if argv is None else argv, parser)


def main(argv: list[str] | None = None) -> int:
    """Train; errors become one line on stderr and the exit code of :mod:`ftbench.errors`."""
    return run_reporting_errors(lambda: run(argv), INTERRUPTED)


def run(argv: list[str] | None = None) -> None:
    # 1. Config: YAML + overrides, every key checked; the checkpoint to resume from, if any.
    config, args = parse_args(argv)
    checkpoint = checkpoint_to_resume(config, args.resume)
    clock = WallClock.resuming(checkpoint)
    # 2. Data: examples from ftbench.data through ftbench.prompts; base model, device and memory checks.
    data = prepare(config)
    if args.check:
        print(f"ok: {len(data.train_examples)} train / {len(data.eval_examples)} eval examples, "
              f"base model {config.base_model}")
        return
    # 3. Model: base weights (int8 when asked); trl adds the LoRA adapter and tokenizes the data.
    model = load_model(config)
    trainer = build_trainer(config, model, data.tokenizer, *data.datasets(config.task.loss), clock=clock)
    # 4. Train: SFTTrainer's loop, checkpoints every save_steps, eval loss every eval_steps.
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    # 5. Save: the adapter and run.json beside it.
    result = save_run(config, trainer, clock, checkpoint)
    if result.main_process:  # rank 0 only under accelerate launch
        print(f"adapter: {result.adapter_dir}\nrun.json: {result.run_json} "
              f"({result.record.steps} steps, {result.record.world_size} rank(s), {result.record.gpu_hours:.3f} GPU-h, "
              f"${result.record.cost_usd:.2f})")


if __name__ == "__main__":
    sys.exit(main())

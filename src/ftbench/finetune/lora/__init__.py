"""LoRA fine-tuning with peft + trl, the library side of ``training/lora_sft.py``::

    config = load_config(Path("training/configs/codellama34b_spider.yaml"), ["--max_steps", "100"])
    result = train(config, resume=True)          # -> <output_dir>/adapter/ and <output_dir>/run.json

- :mod:`.config` — the run config: trl's ``SFTConfig`` and ``ModelConfig`` plus ftbench's task arguments;
- :mod:`.checks` — pre-flight checks (launch, base model, device support, memory) before anything loads;
- :mod:`.data` — training examples from :mod:`ftbench.prompts`, as trl datasets;
- :mod:`.trainer` — model, ``SFTTrainer``, resume, adapter, ``run.json``, merging;
- :mod:`.run` — the facts ``run.json`` records (git hash, device, wall time across resumes, loss curves);
- :mod:`.flops` — FLOPs per token and model FLOPs utilisation, for ``benchmarks/bench_lora_train.py``.
"""

from ftbench.finetune.lora.config import (
    LoraRunConfig,
    TaskArguments,
    config_keys,
    config_parser,
    load_config,
    parse_config,
)
from ftbench.finetune.lora.data import TrainingExample, task_examples, to_dataset
from ftbench.finetune.lora.flops import SHAPES, LlamaShape, lora_flops_per_token, mfu, peak_tflops
from ftbench.finetune.lora.run import WallClock
from ftbench.finetune.lora.trainer import (
    ADAPTER_DIR,
    PreparedData,
    TrainResult,
    build_trainer,
    checkpoint_to_resume,
    is_quantized,
    load_model,
    load_tokenizer,
    merge_adapter,
    prepare,
    resume_checkpoint,
    save_run,
    train,
    upcast_trainable_parameters,
)

__all__ = [
    "ADAPTER_DIR",
    "SHAPES",
    "LlamaShape",
    "LoraRunConfig",
    "PreparedData",
    "TaskArguments",
    "TrainResult",
    "TrainingExample",
    "WallClock",
    "build_trainer",
    "checkpoint_to_resume",
    "config_keys",
    "config_parser",
    "is_quantized",
    "load_config",
    "load_model",
    "load_tokenizer",
    "lora_flops_per_token",
    "merge_adapter",
    "mfu",
    "parse_config",
    "peak_tflops",
    "prepare",
    "resume_checkpoint",
    "save_run",
    "task_examples",
    "to_dataset",
    "train",
    "upcast_trainable_parameters",
]

"""Pre-flight checks of a LoRA run: each fails in seconds, with a message that says what to change,
before any dataset is tokenized or any weight is loaded."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftbench._paths import where
from ftbench.errors import InputError, InsufficientMemory, MissingDependency

if TYPE_CHECKING:
    from ftbench.finetune.lora.config import LoraRunConfig

#: Head-room over the weights for LoRA parameters, optimizer state and the CUDA context (activations come on top).
_OVERHEAD = 1.15
_BYTES_PER_PARAM = {"float32": 4, "float16": 2, "bfloat16": 2}
_FLASH_MODULES = {"flash_attention_2": "flash_attn", "flash_attention_3": "flash_attn_interface"}
_REPORTER_MODULES = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",)}


def check_base_model(base_model: str, **hub_kwargs: Any) -> Any:
    """The base model's ``transformers`` config (read without loading weights); InputError when it cannot be found.
    ``hub_kwargs``: ``revision`` and ``trust_remote_code``, as for ``from_pretrained``."""
    from transformers import AutoConfig

    path = Path(base_model).expanduser()
    if _looks_like_path(base_model) and not path.exists():
        raise InputError(f"base_model {where(base_model)}: no such directory")
    if path.is_dir() and not (path / "config.json").is_file():
        raise InputError(f"base_model {base_model!r}: directory has no config.json; is it a Hugging Face model?")
    try:
        return AutoConfig.from_pretrained(str(path) if path.is_dir() else base_model, **hub_kwargs)
    except (OSError, ValueError) as err:
        raise InputError(f"base_model {base_model!r}: cannot read its config, neither locally nor from the hub "
                         f"({err})") from err


def _looks_like_path(name: str) -> bool:
    """Hub ids are ``org/name``; anything absolute, relative or deeper is meant as a local directory."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


def check_device_support(config: LoraRunConfig) -> None:
    """int8, fp16 and FlashAttention need CUDA and their packages; loggers need theirs."""
    cuda = cuda_available()
    model = config.model
    if model.load_in_8bit:
        _require_module("bitsandbytes", "load_in_8bit=true needs bitsandbytes (pip install bitsandbytes)")
        _require_cuda(cuda, "load_in_8bit=true (bitsandbytes int8)")
    if config.training.fp16:
        _require_cuda(cuda, "fp16=true (mixed precision)")
    flash = _FLASH_MODULES.get(model.attn_implementation or "")
    if flash:
        _require_module(flash, f"attn_implementation={model.attn_implementation} needs the {flash} package")
        _require_cuda(cuda, f"attn_implementation={model.attn_implementation}")
    for reporter in config.reporters:
        modules = _REPORTER_MODULES[reporter]
        if not any(importlib.util.find_spec(m) for m in modules):
            raise MissingDependency(f"report_to={reporter} needs {' or '.join(modules)} (pip install {modules[0]})")


def check_launch(config: LoraRunConfig, environ: Mapping[str, str] | None = None,
                 visible_gpus: int | None = None) -> None:
    """Several GPUs need one process each (``accelerate launch``); int8 weights cannot be sharded by FSDP/ZeRO-3."""
    env = os.environ if environ is None else environ
    distributed = "LOCAL_RANK" in env or int(env.get("WORLD_SIZE", "1")) > 1
    gpus = _visible_gpus() if visible_gpus is None else visible_gpus
    if gpus > 1 and not distributed:
        raise InputError(
            f"{gpus} GPUs are visible to a single process; trl's SFTTrainer refuses the nn.DataParallel that would "
            "follow. Use all of them with `accelerate launch --config_file training/configs/accelerate/ddp.yaml "
            f"--num_processes {gpus} training/lora_sft.py --config CONFIG`, or one with CUDA_VISIBLE_DEVICES=0")
    sharded = [name for name, var in (("FSDP", "ACCELERATE_USE_FSDP"), ("DeepSpeed", "ACCELERATE_USE_DEEPSPEED"))
               if env.get(var, "false").lower() in ("1", "true")]
    if config.model.load_in_8bit and sharded:
        raise InputError(
            f"load_in_8bit=true cannot be sharded by {sharded[0]}: bitsandbytes int8 weights are not FSDP/ZeRO-3 "
            "shardable. Launch with training/configs/accelerate/ddp.yaml (one int8 copy per GPU), or shard a bf16 "
            "config (the *_fast.yaml ones); sharding a quantized model needs 4-bit QLoRA (bnb_4bit_quant_storage), "
            "which ftbench's configs do not offer")


def _visible_gpus() -> int:
    import torch

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def _require_module(module: str, message: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise MissingDependency(f"{message}; or change the config")


def _require_cuda(cuda: bool, what: str) -> None:
    if not cuda:
        raise InputError(f"{what} needs a CUDA GPU and none is visible; on CPU use dtype=float32, "
                         "fp16=false, bf16=false, load_in_8bit=false, attn_implementation=sdpa")


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def check_memory(config: LoraRunConfig, model_config: Any) -> None:
    """Fail when the base model's weights alone will not fit in the free memory of the training device."""
    params = count_parameters(model_config, trust_remote_code=bool(config.hub_kwargs["trust_remote_code"]))
    int8, dtype = config.model.load_in_8bit, config.dtype
    per_param = 1 if int8 else _BYTES_PER_PARAM[dtype]
    needed = params * per_param * _OVERHEAD
    free, where = available_memory()
    if needed > free:
        raise InsufficientMemory(
            f"{config.base_model}: {params / 1e9:.2f}B parameters need about {needed / 2**30:.1f} GiB for weights "
            f"({per_param} byte(s) each, {dtype}{', int8' if int8 else ''}) but only "
            f"{free / 2**30:.1f} GiB is free on {where}; use load_in_8bit=true, a smaller model or a bigger device "
            "(check_memory=false skips this check)")


def count_parameters(model_config: Any, trust_remote_code: bool = False) -> int:
    """Parameters of the model ``model_config`` describes, counted on the meta device (no memory, no weights)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
            model_config, trust_remote_code=trust_remote_code)
    return int(sum(p.numel() for p in model.parameters()))


def available_memory() -> tuple[float, str]:
    """(free bytes, device name) of the device this rank would train on: its CUDA device, else host RAM."""
    import torch

    if torch.cuda.is_available():
        index = int(os.environ.get("LOCAL_RANK", "0"))
        free, _total = torch.cuda.mem_get_info(index)
        return float(free), f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    psutil: Any = importlib.import_module("psutil")  # comes with accelerate; untyped
    return float(psutil.virtual_memory().available), "host RAM"

"""Serve the open model for evaluation: vLLM with LoRA adapters on a GPU, or ``transformers serve`` on CPU.

The library builds the command (a list of arguments, pinned by tests), checks the adapters against the
base model before anything starts, waits until the server answers ``/health``, and prints the lm-eval
command lines that evaluate each served model with the same generation settings as in-process runs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ftbench.errors import FtbenchError, InputError, MissingDependency

Engine = Literal["vllm", "transformers"]
#: LoRA ranks vLLM accepts for --max-lora-rank (it rounds nothing itself).
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
COMPLETION_TASKS = ("spider_sql", "viggo")
CHAT_TASKS = ("spider_sql_chat", "viggo_chat")


class ServerFailed(FtbenchError):
    """The server process exited or never became healthy."""

    exit_code = 9


@dataclass(frozen=True)
class Adapter:
    """A LoRA adapter directory, as read from its ``adapter_config.json``."""

    name: str
    path: Path
    rank: int
    base_model: str


@dataclass(frozen=True)
class ServeSpec:
    """What to serve and how."""

    base_model: str
    adapters: tuple[Adapter, ...] = ()
    engine: Engine = "vllm"
    host: str = "127.0.0.1"
    port: int = 8000
    dtype: str = "auto"
    tensor_parallel_size: int = 1
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"


def read_adapter(spec: str) -> Adapter:
    """Parse ``NAME=PATH`` (or just ``PATH``, named after its folder) and read the adapter's config."""
    name, _, raw_path = spec.rpartition("=") if "=" in spec else ("", "", spec)
    path = Path(raw_path).expanduser()
    config_file = path / "adapter_config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise InputError(f"{config_file}: not found; --adapter expects NAME=PATH of a peft adapter folder") from err
    except json.JSONDecodeError as err:
        raise InputError(f"{config_file}: not valid JSON ({err.msg})") from err
    return Adapter(name=name or path.resolve().name, path=path.resolve(), rank=int(config.get("r", 0)),
                   base_model=str(config.get("base_model_name_or_path") or ""))


def check_adapters(spec: ServeSpec) -> None:
    """Refuse adapters made for another base model, duplicate names, and ranks vLLM cannot serve."""
    names = [adapter.name for adapter in spec.adapters]
    if len(set(names)) != len(names):
        raise InputError(f"adapter names must be unique, got {', '.join(names)}")
    for adapter in spec.adapters:
        if adapter.base_model and not same_model(adapter.base_model, spec.base_model):
            raise InputError(f"adapter {adapter.name!r} was trained on {adapter.base_model!r}, "
                             f"but the server would load {spec.base_model!r}")
        if spec.engine == "vllm" and adapter.rank > VLLM_LORA_RANKS[-1]:
            raise InputError(f"adapter {adapter.name!r} has rank {adapter.rank}; vLLM serves at most "
                             f"rank {VLLM_LORA_RANKS[-1]}")
    if spec.engine == "transformers" and spec.adapters:
        raise InputError("the transformers engine serves one merged model: run `ftbench merge-adapter "
                         "ADAPTER OUT` and serve OUT as the base model")


def same_model(a: str, b: str) -> bool:
    """Hub ids compare as text; local paths compare after resolving."""
    if a == b:
        return True
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()


def max_lora_rank(adapters: tuple[Adapter, ...]) -> int:
    """The smallest rank vLLM accepts that covers every adapter."""
    needed = max((adapter.rank for adapter in adapters), default=VLLM_LORA_RANKS[0])
    return next(rank for rank in VLLM_LORA_RANKS if rank >= needed)


def server_command(spec: ServeSpec) -> list[str]:
    """The argv that starts the server."""
    builders = {"vllm": _vllm_command, "transformers": _transformers_command}
    return builders[spec.engine](spec)


def _vllm_command(spec: ServeSpec) -> list[str]:
    argv = ["vllm", "serve", spec.base_model, "--host", spec.host, "--port", str(spec.port),
            "--dtype", spec.dtype, "--tensor-parallel-size", str(spec.tensor_parallel_size)]
    if spec.adapters:
        argv += ["--enable-lora", "--max-lora-rank", str(max_lora_rank(spec.adapters)),
                 "--max-loras", str(len(spec.adapters)), "--lora-modules"]
        argv += [f"{adapter.name}={adapter.path}" for adapter in spec.adapters]
    return [*argv, *spec.extra_args]


def _transformers_command(spec: ServeSpec) -> list[str]:
    dtype = "float32" if spec.dtype == "auto" else spec.dtype
    return ["transformers", "serve", spec.base_model, "--host", spec.host, "--port", str(spec.port),
            "--device", "cpu", "--dtype", dtype, *spec.extra_args]


def served_model_names(spec: ServeSpec) -> list[str]:
    """The ``model`` field requests must carry: each adapter's name, else the base model."""
    return [adapter.name for adapter in spec.adapters] or [spec.base_model]


def lm_eval_commands(spec: ServeSpec, model: str, tokenizer: str | None = None, num_concurrent: int = 16,
                     ) -> list[str]:
    """lm-eval command lines that evaluate ``model`` on the served endpoint: completion and chat tasks."""
    tokenizer_arg = f",tokenizer={tokenizer or spec.base_model},tokenized_requests=False"
    out = f"runs/eval/{Path(model).name}"
    completions = (f"lm_eval --model local-completions --model_args model={model},"
                   f"base_url={spec.base_url}/completions,num_concurrent={num_concurrent},max_retries=3"
                   f"{tokenizer_arg} --tasks {','.join(COMPLETION_TASKS)} --log_samples --output_path {out}")
    chat = (f"lm_eval --model local-chat-completions --model_args model={model},"
            f"base_url={spec.base_url}/chat/completions,num_concurrent={num_concurrent},max_retries=3 "
            f"--apply_chat_template --tasks {','.join(CHAT_TASKS)} --log_samples --output_path {out}-chat")
    return [completions, chat]


def require_engine(engine: Engine) -> str:
    """The executable for ``engine``, or a clear error naming the extra to install."""
    beside_python = Path(sys.executable).parent / engine  # the active environment's, even if not on PATH
    executable = str(beside_python) if beside_python.is_file() else shutil.which(engine)
    if executable is None:
        hint = {"vllm": "pip install 'ftbench[serve]' on a CUDA machine, or use --engine transformers",
                "transformers": "pip install 'transformers[serving]'"}[engine]
        raise MissingDependency(f"`{engine}` is not installed ({hint})")
    return executable


def start_server(spec: ServeSpec, log_file: Path) -> subprocess.Popen[bytes]:
    """Start the server in its own process group, its output going to ``log_file``."""
    argv = server_command(spec)
    argv[0] = require_engine(spec.engine)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("wb") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(process: subprocess.Popen[bytes], base_url: str, log_file: Path, timeout_s: float) -> None:
    """Poll ``/health`` until it answers 200; fail early if the process dies, with the end of its log."""
    health = base_url.removesuffix("/v1") + "/health"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"server exited with code {process.returncode}:\n{_tail(log_file)}")
        if _answers(health):
            return
        time.sleep(0.5)
    stop_server(process)
    raise ServerFailed(f"server not healthy after {timeout_s:.0f} s at {health}:\n{_tail(log_file)}")


def stop_server(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM the server's process group, then SIGKILL what is left after ``grace_s``."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _tail(log_file: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def serve_until_interrupted(spec: ServeSpec, log_file: Path, health_timeout_s: float,
                            on_ready: Callable[[], None]) -> int:
    """Start the server, call ``on_ready`` once healthy, and keep serving until it exits or Ctrl-C."""
    check_adapters(spec)
    process = start_server(spec, log_file)
    try:
        wait_healthy(process, spec.base_url, log_file, health_timeout_s)
        on_ready()
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_server(process)

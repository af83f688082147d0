"""Serve the open model for evaluation: vLLM with LoRA adapters on a GPU, or ``transformers serve`` on CPU.

The library builds the command (a list of arguments, pinned by tests), checks the adapters against the
base model before anything starts, waits until the server answers ``/health``, and prints the lm-eval
command lines that evaluate each served model with the same generation settings as in-process runs.

vLLM facts this relies on (read in vllm 0.33.0, not run here): ``--lora-modules`` takes ``name=path`` items or JSON
objects ``{"name", "path", "base_model_name"}``; an item containing ``,`` is parsed as JSON, so paths with ``=`` or
``,`` need the JSON form, which is what ftbench always sends. Chat requests to a model without a chat template are
refused with HTTP 400 unless the server was given ``--chat-template``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from ftbench.errors import InputError, MissingDependency, ServerFailed

Engine = Literal["vllm", "transformers"]
#: LoRA ranks vLLM accepts for --max-lora-rank (it rounds nothing itself).
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
COMPLETION_TASKS = ("spider_sql", "viggo")
CHAT_TASKS = ("spider_sql_chat", "viggo_chat")


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
    chat_template: Path | None = None
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"


#: Flags ftbench sets itself; passing them again after ``--`` would silently override or duplicate them.
OWN_VLLM_FLAGS = ("--host", "--port", "--dtype", "--tensor-parallel-size", "--enable-lora", "--max-lora-rank",
                  "--max-loras", "--lora-modules", "--chat-template")


def read_adapter(spec: str) -> Adapter:
    """Parse ``NAME=PATH`` (or just ``PATH``, named after its folder) and read the adapter's config.

    The name ends at the first ``=``, so the path may hold ``=`` and ``,``; an existing folder is a bare PATH."""
    bare = Path(spec).expanduser().is_dir() or "=" not in spec
    name, raw_path = ("", spec) if bare else spec.split("=", 1)
    if not bare and not name.strip():
        raise InputError(f"--adapter {spec!r}: empty NAME; use NAME=PATH")
    path = Path(raw_path).expanduser()
    config_file = path / "adapter_config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise InputError(f"{config_file}: not found; --adapter expects NAME=PATH of a peft adapter folder") from err
    except json.JSONDecodeError as err:
        raise InputError(f"{config_file}: not valid JSON ({err.msg})") from err
    return Adapter(name=name or path.resolve().name, path=path.resolve(), rank=adapter_rank(config),
                   base_model=str(config.get("base_model_name_or_path") or ""))


def adapter_rank(config: dict[str, object]) -> int:
    """The largest LoRA rank in a peft ``adapter_config.json``: ``r``, or a larger one in ``rank_pattern``."""
    pattern = config.get("rank_pattern") or {}
    ranks = [config.get("r") or 0, *(pattern.values() if isinstance(pattern, dict) else ())]
    return max(int(str(rank)) for rank in ranks)


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


def check_extra_args(spec: ServeSpec) -> None:
    """Refuse extra engine flags that ftbench already sets, and a chat template the engine cannot take."""
    own = [arg for arg in spec.extra_args if arg.split("=", 1)[0] in OWN_VLLM_FLAGS]
    if own:
        raise InputError(f"{', '.join(own)}: set by ftbench serve itself; use its own option instead "
                         "(ftbench serve --help)")
    if spec.chat_template is not None and spec.engine != "vllm":
        raise InputError("--chat-template is passed to vLLM; the transformers engine uses the model's own template")
    if spec.chat_template is not None and not spec.chat_template.is_file():
        raise InputError(f"--chat-template {spec.chat_template}: no such file")


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
        argv += [lora_module(adapter, spec.base_model) for adapter in spec.adapters]
    if spec.chat_template is not None:
        argv += ["--chat-template", str(spec.chat_template.resolve())]
    return [*argv, *spec.extra_args]


def lora_module(adapter: Adapter, base_model: str) -> str:
    """vLLM's JSON form of a ``--lora-modules`` item: unlike ``name=path`` it survives ``=`` and ``,`` in paths."""
    return json.dumps({"name": adapter.name, "path": str(adapter.path), "base_model_name": base_model})


def _transformers_command(spec: ServeSpec) -> list[str]:
    return ["transformers", "serve", spec.base_model, "--host", spec.host, "--port", str(spec.port),
            "--device", "cpu", "--dtype", _transformers_dtype(spec), *spec.extra_args]


def served_model_names(spec: ServeSpec) -> list[str]:
    """The ``model`` field requests must carry: each adapter's name, else the base model."""
    return [adapter.name for adapter in spec.adapters] or [spec.base_model]


def lm_eval_commands(spec: ServeSpec, model: str, tokenizer: str | None = None, num_concurrent: int = 16,
                     chat: bool = True) -> list[str]:
    """lm-eval command lines that evaluate ``model`` on the served endpoint: completion tasks, and the chat tasks
    when ``chat`` (the served model has a chat template; vLLM refuses chat requests without one)."""
    tokenizer_arg = f",tokenizer={tokenizer or spec.base_model},tokenized_requests=False"
    out = f"runs/eval/{Path(model).name}"
    completions = (f"lm_eval --model local-completions --model_args model={model},"
                   f"base_url={spec.base_url}/completions,num_concurrent={num_concurrent},max_retries=3"
                   f"{tokenizer_arg} --tasks {','.join(COMPLETION_TASKS)} --log_samples --output_path {out}")
    chat_line = (f"lm_eval --model local-chat-completions --model_args model={model},"
                 f"base_url={spec.base_url}/chat/completions,num_concurrent={num_concurrent},max_retries=3 "
                 f"--apply_chat_template --tasks {','.join(CHAT_TASKS)} --log_samples --output_path {out}-chat")
    return [completions, chat_line] if chat else [completions]


def has_chat_template(model: str) -> bool | None:
    """Whether ``model``'s tokenizer carries a chat template; None when its tokenizer cannot be read (offline)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError):
        return None
    return bool(getattr(tokenizer, "chat_template", None))


def require_engine(engine: Engine) -> str:
    """The executable for ``engine``, or a clear error naming the extra to install."""
    beside_python = Path(sys.executable).parent / engine  # the active environment's, even if not on PATH
    executable = str(beside_python) if beside_python.is_file() else shutil.which(engine)
    if executable is None:
        hint = {"vllm": "pip install 'ftbench[serve]' on a CUDA machine, or use --engine transformers",
                "transformers": "pip install 'transformers[serving]'"}[engine]
        raise MissingDependency(f"`{engine}` is not installed ({hint})")
    return executable


def free_port() -> int:
    """A local TCP port nothing listens on now (a server started a moment later can bind it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _executable_command(spec: ServeSpec) -> list[str]:
    """:func:`server_command` with the engine's executable found on PATH (or MissingDependency)."""
    argv = server_command(spec)
    argv[0] = require_engine(spec.engine)
    return argv


def start_server(spec: ServeSpec, log_file: Path) -> subprocess.Popen[bytes]:
    """Start the server in its own process group, its output going to ``log_file``."""
    argv = _executable_command(spec)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("wb") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


class ServerProcess(Protocol):
    """What :func:`wait_healthy` and :func:`stop_server` need of a server's process (``subprocess.Popen`` has it);
    the process leads its own process group."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def serve_here(spec: ServeSpec) -> None:
    """Serve ``spec`` from this process until it is signalled: with transformers' own server class (what
    ``transformers serve`` runs) where it takes the spec's options, so that a process that has imported torch
    and transformers already (``ftbench demo`` forks one from its fork server) answers in ~2 s instead of the
    command's ~11 s on a CPU; otherwise the command itself, in this process's place (exec)."""
    options = _transformers_server_options(spec)
    if options is not None:
        try:
            import inspect

            from transformers.cli.serve import Serve

            inspect.signature(Serve).bind(**options)
        except (ImportError, TypeError):  # a transformers whose server class is not this one
            pass
        else:
            Serve(**options)
            return
    argv = _executable_command(spec)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)


def _transformers_server_options(spec: ServeSpec) -> dict[str, Any] | None:
    """The keyword arguments of transformers' ``Serve`` that :func:`server_command` passes as flags; None where the
    command has flags (the spec's extra arguments) that have no such translation here."""
    if spec.engine != "transformers" or spec.extra_args:
        return None
    return {"force_model": spec.base_model, "host": spec.host, "port": spec.port, "device": "cpu",
            "dtype": _transformers_dtype(spec)}


def _transformers_dtype(spec: ServeSpec) -> str:
    return "float32" if spec.dtype == "auto" else spec.dtype


def wait_healthy(process: ServerProcess, base_url: str, log_file: Path, timeout_s: float) -> None:
    """Poll ``/health`` until it answers 200; fail early if the process dies, with the end of its log."""
    health = base_url.removesuffix("/v1") + "/health"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise ServerFailed(f"server exited with code {code}:\n{_tail(log_file)}")
        if _answers(health):
            return
        time.sleep(0.25)
    stop_server(process)
    raise ServerFailed(f"server not healthy after {timeout_s:.0f} s at {health}:\n{_tail(log_file)}")


def stop_server(process: ServerProcess, grace_s: float = 10.0) -> None:
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
    check_extra_args(spec)
    process = start_server(spec, log_file)
    try:
        wait_healthy(process, spec.base_url, log_file, health_timeout_s)
        on_ready()
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_server(process)

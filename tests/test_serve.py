"""`ftbench serve`: the vLLM argv, the checks before anything starts, and a real server on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftbench import serve
from ftbench.cli import main
from ftbench.errors import InputError, MissingDependency

BASE = "codellama/CodeLlama-34b-hf"


def _adapter(tmp_path: Path, name: str, rank: int = 8, base: str = BASE) -> Path:
    path = tmp_path / name
    path.mkdir()
    (path / "adapter_config.json").write_text(json.dumps({"r": rank, "base_model_name_or_path": base}))
    return path


def test_vllm_command_for_one_adapter(tmp_path: Path) -> None:
    adapter = serve.read_adapter(f"sql={_adapter(tmp_path, 'a')}")
    spec = serve.ServeSpec(base_model=BASE, adapters=(adapter,), port=8001, dtype="float16")
    assert serve.server_command(spec) == [
        "vllm", "serve", BASE, "--host", "127.0.0.1", "--port", "8001", "--dtype", "float16",
        "--tensor-parallel-size", "1", "--enable-lora", "--max-lora-rank", "8", "--max-loras", "1",
        "--lora-modules", f"sql={tmp_path / 'a'}"]


def test_vllm_command_for_several_adapters_covers_the_largest_rank(tmp_path: Path) -> None:
    adapters = (serve.read_adapter(f"sql={_adapter(tmp_path, 'a', rank=8)}"),
                serve.read_adapter(f"viggo={_adapter(tmp_path, 'b', rank=24)}"))
    spec = serve.ServeSpec(base_model=BASE, adapters=adapters, tensor_parallel_size=2)
    argv = serve.server_command(spec)
    assert argv[argv.index("--max-lora-rank") + 1] == "32"
    assert argv[argv.index("--tensor-parallel-size") + 1] == "2"
    assert argv[argv.index("--lora-modules") + 1:] == [f"sql={tmp_path / 'a'}", f"viggo={tmp_path / 'b'}"]
    assert serve.served_model_names(spec) == ["sql", "viggo"]


def test_adapter_without_a_name_is_named_after_its_folder(tmp_path: Path) -> None:
    assert serve.read_adapter(str(_adapter(tmp_path, "lora-spider"))).name == "lora-spider"


@pytest.mark.parametrize(("adapters", "engine", "message"), [
    ((("a", 8, "meta-llama/Llama-2-7b-hf"),), "vllm", "trained on 'meta-llama/Llama-2-7b-hf'"),
    ((("a", 1024, BASE),), "vllm", "rank 1024; vLLM serves at most rank 512"),
    ((("a", 8, BASE), ("a", 8, BASE)), "vllm", "adapter names must be unique"),
    ((("a", 8, BASE),), "transformers", "ftbench merge-adapter"),
])
def test_bad_adapters_are_refused_before_anything_starts(tmp_path: Path, adapters: tuple[tuple[str, int, str], ...],
                                                          engine: serve.Engine, message: str) -> None:
    parsed = tuple(serve.Adapter(name, tmp_path, rank, base) for name, rank, base in adapters)
    with pytest.raises(InputError, match=message):
        serve.check_adapters(serve.ServeSpec(base_model=BASE, adapters=parsed, engine=engine))


def test_missing_adapter_config_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"adapter_config\.json: not found"):
        serve.read_adapter(f"x={tmp_path}")


def test_missing_vllm_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(serve.sys, "executable", str(tmp_path / "python"))
    with pytest.raises(MissingDependency, match=r"`vllm` is not installed \(pip install 'ftbench\[serve\]'"):
        serve.require_engine("vllm")


def test_dry_run_prints_the_server_and_lm_eval_commands(tmp_path: Path) -> None:
    adapter = _adapter(tmp_path, "a")
    result = CliRunner().invoke(main, ["serve", BASE, "--adapter", f"sql={adapter}", "--port", "8002", "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"vllm serve {BASE} --host 127.0.0.1 --port 8002")
    assert any("--model local-completions --model_args model=sql,base_url=http://127.0.0.1:8002/v1/completions"
               in line for line in lines)
    assert any("--model local-chat-completions" in line and "--apply_chat_template" in line for line in lines)


def test_serve_cli_reports_bad_adapter_cleanly(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", BASE, "--adapter", f"x={tmp_path}", "--dry-run"])
    assert result.exit_code == 2
    assert "error:" in result.stderr and "adapter_config.json" in result.stderr

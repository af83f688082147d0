"""`ftbench serve`: the vLLM argv, the checks before anything starts, and a real server on CPU."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftbench import serve
from ftbench.cli import main
from ftbench.errors import InputError, MissingDependency

BASE = "codellama/CodeLlama-34b-hf"


def _adapter(tmp_path: Path, name: str, rank: int = 8, base: str = BASE, **extra: object) -> Path:
    path = tmp_path / name
    path.mkdir()
    (path / "adapter_config.json").write_text(json.dumps({"r": rank, "base_model_name_or_path": base, **extra}))
    return path


def _module(name: str, path: Path) -> str:
    return json.dumps({"name": name, "path": str(path), "base_model_name": BASE})


def test_vllm_command_for_one_adapter(tmp_path: Path) -> None:
    adapter = serve.read_adapter(f"sql={_adapter(tmp_path, 'a')}")
    spec = serve.ServeSpec(base_model=BASE, adapters=(adapter,), port=8001, dtype="float16")
    assert serve.server_command(spec) == [
        "vllm", "serve", BASE, "--host", "127.0.0.1", "--port", "8001", "--dtype", "float16",
        "--tensor-parallel-size", "1", "--enable-lora", "--max-lora-rank", "8", "--max-loras", "1",
        "--lora-modules", _module("sql", tmp_path / "a")]


def test_vllm_command_for_several_adapters_covers_the_largest_rank(tmp_path: Path) -> None:
    adapters = (serve.read_adapter(f"sql={_adapter(tmp_path, 'a', rank=8)}"),
                serve.read_adapter(f"viggo={_adapter(tmp_path, 'b', rank=24)}"))
    spec = serve.ServeSpec(base_model=BASE, adapters=adapters, tensor_parallel_size=2)
    argv = serve.server_command(spec)
    assert argv[argv.index("--max-lora-rank") + 1] == "32"
    assert argv[argv.index("--tensor-parallel-size") + 1] == "2"
    assert argv[argv.index("--lora-modules") + 1:] == [_module("sql", tmp_path / "a"), _module("viggo", tmp_path / "b")]
    assert serve.served_model_names(spec) == ["sql", "viggo"]


def test_adapter_without_a_name_is_named_after_its_folder(tmp_path: Path) -> None:
    assert serve.read_adapter(str(_adapter(tmp_path, "lora-spider"))).name == "lora-spider"


@pytest.mark.parametrize("folder", ["lr=3e-4,r=8", "a=b", "plain"])
def test_adapter_paths_with_equals_and_commas_reach_vllm_intact(tmp_path: Path, folder: str) -> None:
    """The name ends at the first `=`; vLLM gets JSON, which it parses whenever an item holds a `,`."""
    path = _adapter(tmp_path, folder)
    adapter = serve.read_adapter(f"sql={path}")
    assert (adapter.name, adapter.path) == ("sql", path)
    argv = serve.server_command(serve.ServeSpec(base_model=BASE, adapters=(adapter,)))
    sent = argv[argv.index("--lora-modules") + 1]
    assert json.loads(sent) == {"name": "sql", "path": str(path), "base_model_name": BASE}
    assert serve.read_adapter(str(path)).name == folder, "an existing folder is a bare PATH even with `=` in it"


def test_rank_pattern_raises_the_rank_vllm_must_allow(tmp_path: Path) -> None:
    path = _adapter(tmp_path, "a", rank=8, rank_pattern={"q_proj": 64, "v_proj": 16})
    adapter = serve.read_adapter(f"sql={path}")
    assert adapter.rank == 64
    argv = serve.server_command(serve.ServeSpec(base_model=BASE, adapters=(adapter,)))
    assert argv[argv.index("--max-lora-rank") + 1] == "64"
    big = serve.read_adapter(f"big={_adapter(tmp_path, 'b', rank=8, rank_pattern={'o_proj': 1024})}")
    with pytest.raises(InputError, match="rank 1024"):
        serve.check_adapters(serve.ServeSpec(base_model=BASE, adapters=(big,)))


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
    assert not any("local-chat-completions" in line for line in lines), "CodeLlama-34b-hf has no chat template"


def test_serve_cli_reports_bad_adapter_cleanly(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", BASE, "--adapter", f"x={tmp_path}", "--dry-run"])
    assert result.exit_code == 2
    assert "error:" in result.stderr and "adapter_config.json" in result.stderr


def test_engine_flags_after_double_dash_are_passed_through(tmp_path: Path) -> None:
    adapter = _adapter(tmp_path, "a")
    result = CliRunner().invoke(main, ["serve", BASE, "--adapter", f"sql={adapter}", "--dry-run", "--",
                                       "--max-model-len", "4096", "--gpu-memory-utilization", "0.9",
                                       "--data-parallel-size", "2"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].endswith(
        "--max-model-len 4096 --gpu-memory-utilization 0.9 --data-parallel-size 2")


def test_a_mistyped_option_before_double_dash_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", BASE, "--adpter", "x", "--dry-run"])
    assert result.exit_code == 2 and "No such option '--adpter'" in result.output


@pytest.mark.parametrize("flag", ["--port", "--lora-modules", "--max-lora-rank=16"])
def test_engine_flags_ftbench_sets_are_refused(tmp_path: Path, flag: str) -> None:
    result = CliRunner().invoke(main, ["serve", BASE, "--dry-run", "--", flag, "1"])
    assert result.exit_code == 2
    assert "set by ftbench serve itself" in result.stderr


def _without_chat_template(model: Path, out: Path) -> Path:
    shutil.copytree(model, out)
    (out / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((out / "tokenizer_config.json").read_text(encoding="utf-8"))
    config.pop("chat_template", None)
    (out / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return out


def test_chat_commands_only_for_a_model_with_a_chat_template(tiny_model: Path, tmp_path: Path) -> None:
    with_template = CliRunner().invoke(main, ["serve", str(tiny_model), "--dry-run"])
    assert with_template.exit_code == 0, with_template.output
    assert "local-chat-completions" in with_template.output

    bare = _without_chat_template(tiny_model, tmp_path / "bare")
    without = CliRunner().invoke(main, ["serve", str(bare), "--dry-run"])
    assert without.exit_code == 0, without.output
    assert "local-chat-completions" not in without.output and "local-completions" in without.output
    assert "has no chat template" in without.output

    template = tmp_path / "chat.jinja"
    template.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}", encoding="utf-8")
    given = CliRunner().invoke(main, ["serve", str(bare), "--chat-template", str(template), "--dry-run"])
    assert given.exit_code == 0, given.output
    assert f"--chat-template {template}" in given.output.splitlines()[0]
    assert "local-chat-completions" in given.output


def test_unreadable_tokenizer_means_no_chat_commands(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", str(tmp_path / "nowhere"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "local-chat-completions" not in result.output and "could not be checked" in result.output


def test_free_port_is_one_a_server_can_listen_on() -> None:
    import socket

    port = serve.free_port()
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))  # OSError (address in use) if something held it
        server.listen()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass

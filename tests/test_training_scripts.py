"""The scripts in training/ end with the exit codes of ftbench.errors, each after one line on stderr."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ftbench.errors import EXIT_INTERRUPTED, InputError

ROOT = Path(__file__).resolve().parents[1]
#: The scripts and the command-line module a script forwards to.
SCRIPTS = [*sorted((ROOT / "training").glob("*.py")), ROOT / "src" / "ftbench" / "finetune" / "openai" / "cli.py"]


def _literal_exit_codes(path: Path) -> list[str]:
    """``return 0``, ``sys.exit(130)`` and the like: exit codes written as numbers instead of ftbench.errors names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        value = node.value if isinstance(node, ast.Return) else None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name) and node.args and \
                getattr(node.func, "attr", getattr(node.func, "id", "")) == "exit":
            value = node.args[0]
        if isinstance(value, ast.Constant) and isinstance(value.value, int) and not isinstance(value.value, bool):
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_scripts_take_their_exit_codes_from_the_errors_module(path: Path) -> None:
    assert _literal_exit_codes(path) == []


def test_the_literal_check_sees_a_number(tmp_path: Path) -> None:
    path = tmp_path / "script.py"
    path.write_text("import sys\ndef main() -> int:\n    return 0\nsys.exit(130)\nsys.exit(main())\n",
                    encoding="utf-8")
    assert _literal_exit_codes(path) == ["script.py:3: return 0", "script.py:4: sys.exit(130)"]


def _lora_sft() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lora_sft_under_test", ROOT / "training" / "lora_sft.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _args(tmp_path: Path, *extra: str) -> list[str]:
    return ["--config", str(ROOT / "training" / "configs" / "tiny_cpu.yaml"), "--output_dir", str(tmp_path / "run"),
            *extra]


def test_lora_sft_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _lora_sft().main(_args(tmp_path, "--lora_rank", "8"))
    err = capsys.readouterr().err
    assert code == InputError.exit_code
    assert err.startswith("error: command line: unknown config key(s) lora_rank") and err.count("\n") == 1


def test_lora_sft_ctrl_c_is_exit_130_and_says_how_to_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    script = _lora_sft()

    def interrupted(*args: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(script, "prepare", interrupted)
    assert script.main(_args(tmp_path)) == EXIT_INTERRUPTED
    assert capsys.readouterr().err.strip().splitlines() == [
        "interrupted: the checkpoint-N folders saved in output_dir are kept; run the same command with --resume "
        "to continue"]


# --- a new user's mistakes: one line naming what to fix, a documented exit code ------------------------------


def test_relative_paths_from_another_folder_say_where_they_were_looked_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's commands run from the repository root; from elsewhere, the message shows the folder used."""
    from ftbench.finetune.openai import cli as openai_cli

    monkeypatch.chdir(tmp_path)
    runs = [(_lora_sft().main, ["--config", "training/configs/tiny_cpu.yaml"], "config file not found"),
            (openai_cli.main, ["validate", "--config", "training/configs/openai_spider.yaml"],
             "config file not found"),
            (openai_cli.main, ["validate", "--tokenizer", "estimate", "spider.jsonl"],
             "cannot read training file (No such file or directory)")]
    for main, argv, problem in runs:
        assert main(argv) == InputError.exit_code
        err = capsys.readouterr().err
        assert err.endswith(f" (looked for in {tmp_path}): {problem}\n") and err.count("\n") == 1, err


def test_a_base_model_path_from_another_folder_says_where_it_was_looked_for(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from ftbench.finetune.lora.checks import check_base_model

    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=rf"ftbench-out/demo/tiny-model \(looked for in {tmp_path}\): no such dir"):
        check_base_model("ftbench-out/demo/tiny-model")


def test_a_missing_train_file_is_not_blamed_on_the_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ftbench.data import load_viggo
    from ftbench.errors import DataError
    from ftbench.finetune.lora.data import task_examples

    monkeypatch.setenv("FTBENCH_DATA_DIR", str(tmp_path / "mirror"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as raised:
        task_examples("viggo", "train", "data/train.csv")
    assert str(raised.value) == f"data/train.csv (looked for in {tmp_path}): file not found"
    with pytest.raises(DataError, match=r"viggo/test\.csv: file not found \(FTBENCH_DATA_DIR points at a mirror"):
        load_viggo("test")


def test_estimate_on_a_file_with_a_bad_row_names_the_file_and_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ftbench.finetune.openai import cli as openai_cli

    path = tmp_path / "train.jsonl"
    good = '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
    path.write_text(good * 3 + "{not json\n", encoding="utf-8")
    assert openai_cli.main(["estimate", "--tokenizer", "estimate", str(path)]) == InputError.exit_code
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}:4: ") and f"`validate {path}` lists every problem" in err, err
    assert err.count("\n") == 1


@pytest.mark.usefixtures("data_env")
def test_a_lora_output_dir_that_cannot_be_written_fails_before_the_model_loads(
        tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Else the first checkpoint (save_steps in) would fail, losing those steps."""
    from ftbench.errors import OutputError
    from ftbench.finetune import lora
    from ftbench.finetune.lora import trainer as lora_trainer
    from ftbench.finetune.lora.config import load_config

    monkeypatch.setattr(lora_trainer, "load_model", lambda config: pytest.fail("the model loaded first"))
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder", encoding="utf-8")
    config = load_config(ROOT / "training" / "configs" / "tiny_cpu.yaml",
                         ["--model_name_or_path", str(tiny_model), "--output_dir", str(in_the_way / "run")])
    with pytest.raises(OutputError, match=r"a-file/run: cannot write the run there"):
        lora.train(config)


def test_openai_submit_to_an_out_that_cannot_be_written_stops_before_any_request(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Else the job would be created (and paid for) with nowhere to record it."""
    from ftbench.finetune.openai import cli as openai_cli

    train = tmp_path / "train.jsonl"
    row = '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
    train.write_text(row * 10, encoding="utf-8")
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-key")
    code = openai_cli.main(["submit", "--train", str(train), "--out", str(in_the_way / "out"), "--base-url",
                            "http://127.0.0.1:9/v1", "--max-attempts", "1"])
    err = capsys.readouterr().err
    assert code == InputError.exit_code, err
    assert err.splitlines()[-1].startswith(f"error: {in_the_way / 'out'}: cannot write the run there")


@pytest.mark.parametrize("text", ["false\n", "0\n", "[]\n", "just text\n"])
def test_both_config_readers_refuse_a_file_that_is_not_a_mapping(tmp_path: Path, text: str) -> None:
    """One reader serves both scripts: a YAML scalar or list is an error naming the file (the OpenAI reader used to
    take a bare `false` or `0` for an empty config)."""
    from ftbench.finetune._config_file import read_config_mapping
    from ftbench.finetune.openai.config import load_config

    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    for read in (read_config_mapping, load_config):
        with pytest.raises(InputError, match=r"run\.yaml: expected a YAML mapping of config keys"):
            read(path)


def test_an_empty_config_is_the_defaults_for_openai_and_an_error_for_lora(tmp_path: Path) -> None:
    from ftbench.finetune._config_file import read_config_mapping
    from ftbench.finetune.openai.config import OpenAIRunConfig, load_config

    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    assert load_config(path) == OpenAIRunConfig()
    with pytest.raises(InputError, match=r"empty\.yaml: expected a YAML mapping of config keys, got NoneType"):
        read_config_mapping(path)

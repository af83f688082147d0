"""Shared fixtures: the data mirror (skip when absent) and a tiny Llama model built once per session."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from ftbench._paths import absolute_path_env
from ftbench.data import data_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
# The README runs the tests with FTBENCH_DATA_DIR=../shared/data; subprocesses (lm_eval, servers) run in
# other folders, so the test session, like the ftbench CLI, resolves it once against its own folder.
absolute_path_env()


def mirror_dir() -> Path:
    """``$FTBENCH_DATA_DIR``, else ``../shared/data`` beside the checkout."""
    return data_dir(REPO_ROOT.parent / "shared" / "data")


def have_mirror() -> bool:
    return (mirror_dir() / "spider_sql" / "spider_create_context_val.json").is_file()


needs_data = pytest.mark.skipif(not have_mirror(), reason=f"dataset mirror not found at {mirror_dir()} "
                                "(set FTBENCH_DATA_DIR; CI has ../shared/data)")


@pytest.fixture
def data_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point FTBENCH_DATA_DIR at the mirror for this test (skips without it)."""
    if not have_mirror():
        pytest.skip(f"dataset mirror not found at {mirror_dir()}")
    monkeypatch.setenv("FTBENCH_DATA_DIR", str(mirror_dir()))
    yield mirror_dir()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny Llama model with a tokenizer trained on the mirror's prompts (seconds on CPU)."""
    if not have_mirror():
        pytest.skip(f"dataset mirror not found at {mirror_dir()}")
    from ftbench.tiny import build_tiny_model, corpus_from_data

    saved = os.environ.get("FTBENCH_DATA_DIR")
    os.environ["FTBENCH_DATA_DIR"] = str(mirror_dir())
    try:
        return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", corpus_from_data(limit=200))
    finally:
        if saved is None:
            del os.environ["FTBENCH_DATA_DIR"]
        else:
            os.environ["FTBENCH_DATA_DIR"] = saved


@pytest.fixture(scope="session")
def hf_runs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The output folders of ``hf_run`` and ``hf_chat_run``, two independent runs started at once."""
    from .lmeval_runs import hf_args, include_path_args, run_clis

    plain, chat = tmp_path_factory.mktemp("hf-run"), tmp_path_factory.mktemp("hf-chat-run")
    run_clis([(["lm_eval", *hf_args(tiny_model), "--tasks", "spider_sql,viggo", "--limit", "3", "--log_samples",
                "--output_path", str(plain / "out"), *include_path_args()], plain),
              (["ftbench", "eval", *hf_args(tiny_model), "--tasks", "spider_sql_chat,viggo_chat",
                "--apply_chat_template", "--limit", "2", "--log_samples", "--output_path", str(chat / "out")], chat)])
    return plain / "out", chat / "out"


@pytest.fixture(scope="session")
def hf_run(hf_runs: tuple[Path, Path]) -> Path:
    """Plain `lm_eval` (no --include_path after a wheel install) on spider_sql and viggo, 3 examples each."""
    return hf_runs[0]


@pytest.fixture(scope="session")
def hf_chat_run(hf_runs: tuple[Path, Path]) -> Path:
    """`ftbench eval` on the chat variants with the chat template, 2 examples each."""
    return hf_runs[1]


#: Set to 1 (CI does, after installing every extra): a missing optional package or tool fails its tests
#: instead of skipping them, so a broken install cannot pass as "skipped".
REQUIRE_INSTALLED_ENV = "FTBENCH_REQUIRE_INSTALLED"


def require_installed() -> bool:
    """True when ``FTBENCH_REQUIRE_INSTALLED=1``: what a test needs must be there."""
    return os.environ.get(REQUIRE_INSTALLED_ENV) == "1"


def importorskip(module: str, reason: str) -> ModuleType:
    """``pytest.importorskip`` that fails instead of skipping under ``FTBENCH_REQUIRE_INSTALLED=1``."""
    if not require_installed():
        skipped_or_found: ModuleType = pytest.importorskip(module, reason=reason)
        return skipped_or_found
    try:
        return importlib.import_module(module)
    except ImportError as err:
        pytest.fail(f"{module} is not installed ({REQUIRE_INSTALLED_ENV}=1): {reason}: {err}")

"""Shared fixtures: the data mirror (skip when absent) and a tiny Llama model built once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def mirror_dir() -> Path:
    """``$FTBENCH_DATA_DIR``, else ``../shared/data`` beside the checkout."""
    value = os.environ.get("FTBENCH_DATA_DIR")
    return Path(value) if value else REPO_ROOT.parent / "shared" / "data"


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

"""The served path: a real `transformers serve` on the tiny model, evaluated with lm-eval's API models.

Scores over the endpoint must equal the in-process `hf` scores for the same model and examples, and a
rerun with `--use_cache` must not need the server at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ftbench import serve

from .conftest import importorskip
from .lmeval_runs import answers, read_outputs, run_cli

pytestmark = pytest.mark.slow
importorskip("fastapi", reason="`transformers serve` needs transformers[serving] (the dev extra has it)")


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[serve.ServeSpec]:
    spec = serve.ServeSpec(base_model=str(tiny_model), engine="transformers", port=serve.free_port())
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    process = serve.start_server(spec, log)
    try:
        serve.wait_healthy(process, spec.base_url, log, timeout_s=180)
        yield spec
    finally:
        serve.stop_server(process)
    assert process.poll() is not None


def _completions_args(spec: serve.ServeSpec, base_url: str | None = None) -> list[str]:
    url = base_url or f"{spec.base_url}/completions"
    return ["--model", "local-completions", "--model_args",
            f"model={spec.base_model},base_url={url},tokenizer={spec.base_model},tokenized_requests=False,"
            "num_concurrent=2,max_retries=1"]


def _metrics(results: dict[str, object], task: str) -> dict[str, object]:
    block = results["results"][task]  # type: ignore[index]
    return {key: value for key, value in block.items() if not key.startswith("alias")}


#: The completion tasks' run over the endpoint, with lm-eval's response cache (a rerun must not need the server).
COMPLETIONS = ["--tasks", "spider_sql,viggo", "--limit", "3", "--log_samples"]


@pytest.fixture(scope="module")
def served_completions(server: serve.ServeSpec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of one ``ftbench eval`` of the completion tasks against the server, with ``--use_cache`` under
    ``cache/`` and lm-eval's output under ``out/``."""
    work = tmp_path_factory.mktemp("served-completions")
    run_cli(["ftbench", "eval", *_completions_args(server), *COMPLETIONS, "--use_cache", str(work / "cache" / "tiny"),
             "--output_path", str(work / "out")], cwd=work)
    return work


def test_served_completions_score_as_in_process_hf(served_completions: Path, hf_run: Path) -> None:
    served_results, served = read_outputs(served_completions / "out")
    hf_results, local = read_outputs(hf_run)
    for task in ("spider_sql", "viggo"):
        assert answers(served[task]) == answers(local[task])
        assert _metrics(served_results, task) == _metrics(hf_results, task)


def test_served_chat_scores_as_in_process_hf(server: serve.ServeSpec, hf_chat_run: Path, tmp_path: Path) -> None:
    run_cli(["ftbench", "eval", "--model", "local-chat-completions", "--model_args",
             f"model={server.base_model},base_url={server.base_url}/chat/completions,num_concurrent=2,max_retries=1",
             "--apply_chat_template", "--tasks", "spider_sql_chat,viggo_chat", "--limit", "2", "--log_samples",
             "--output_path", str(tmp_path / "out")], cwd=tmp_path)
    served_results, served = read_outputs(tmp_path / "out")
    hf_results, local = read_outputs(hf_chat_run)
    for task in ("spider_sql_chat", "viggo_chat"):
        assert answers(served[task]) == answers(local[task])
        assert _metrics(served_results, task) == _metrics(hf_results, task)


def test_rerun_with_use_cache_needs_no_server(server: serve.ServeSpec, served_completions: Path,
                                             tmp_path: Path) -> None:
    """The run of ``served_completions`` again, on its cache, with nothing listening at the model's URL."""
    dead_url = f"http://127.0.0.1:{serve.free_port()}/v1/completions"
    run_cli(["ftbench", "eval", *_completions_args(server, dead_url), *COMPLETIONS, "--use_cache",
             str(served_completions / "cache" / "tiny"), "--output_path", str(tmp_path / "second")], cwd=tmp_path,
            timeout=120)
    first, second = read_outputs(served_completions / "out")[1], read_outputs(tmp_path / "second")[1]
    assert set(first) == set(second) == {"spider_sql", "viggo"}
    for task in ("spider_sql", "viggo"):
        assert second[task] == first[task]


def test_the_demo_serves_from_a_process_forked_from_its_fork_server(tiny_model: Path, tmp_path: Path) -> None:
    """transformers' own server class in a fork of the preloaded fork server answers and stops as ``transformers
    serve`` does (a clean exit: nothing of multiprocessing left for the demo's process to report leaked); a spec
    with flags that class does not take runs the command itself in the fork's place."""
    import json
    import urllib.request

    from ftbench.demo import start_fork_server, start_forked_server
    from ftbench.errors import ServerFailed

    start_fork_server()
    spec = serve.ServeSpec(base_model=str(tiny_model), engine="transformers", port=serve.free_port())
    log = tmp_path / "forked.log"
    process = start_forked_server(spec, log)
    try:
        serve.wait_healthy(process, spec.base_url, log, timeout_s=180)
        request = urllib.request.Request(f"{spec.base_url}/completions", headers={"Content-Type": "application/json"},
                                         data=json.dumps({"model": spec.base_model, "prompt": "SELECT",
                                                          "max_tokens": 3}).encode())
        with urllib.request.urlopen(request, timeout=60) as response:
            assert isinstance(json.load(response)["choices"][0]["text"], str)
    finally:
        serve.stop_server(process)
    assert process.poll() == 0
    assert "Application shutdown complete" in log.read_text(encoding="utf-8")

    flagged = serve.ServeSpec(base_model=str(tiny_model), engine="transformers", port=serve.free_port(),
                              extra_args=("--no-such-flag",))
    process = start_forked_server(flagged, log)
    with pytest.raises(ServerFailed, match=r"(?s)exited with code 2:.*transformers serve --help"):  # its usage error
        serve.wait_healthy(process, flagged.base_url, log, timeout_s=120)

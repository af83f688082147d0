"""Evaluating OpenAI (and OpenAI-compatible) chat models through lm-eval with the request the task asks for.

lm-eval 0.4.13's `openai-chat-completions` treats `gpt-3.5-turbo…` names as reasoning models (no `stop`,
temperature 1). Our `ftbench-openai-chat` sends temperature 0, the task's stop sequences and max_tokens; the
end-to-end test captures the request bodies `ftbench eval` sends to a local fake of the API.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from ftbench import prompts
from ftbench.data import load_spider_sql, load_viggo
from ftbench.errors import ApiKeyError, InputError
from ftbench.lmeval import tasks_dir
from ftbench.lmeval.openai_chat import MODEL_NAMES, ChatCompletions, OpenAIChat, chat_payload, register_models

from .fake_openai import FakeOpenAI, chat_usage
from .lmeval_runs import read_outputs, run_cli

FT_MODEL = "ft:gpt-3.5-turbo-0613:acme::abc123"
MESSAGES = [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]


def task_generation_kwargs(task_folder: str, yaml_name: str) -> dict[str, Any]:
    """The generation_kwargs a task YAML declares (tags like !function are ignored)."""
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    config = yaml.load((tasks_dir() / task_folder / yaml_name).read_text(), Loader=Loader)
    return dict(config["generation_kwargs"])


SQL_GEN = task_generation_kwargs("spider_sql", "spider_sql.yaml")
INPUT_FIELD = {"spider_sql_chat": "question", "viggo_chat": "target"}


def sql_gen() -> dict[str, Any]:
    """A fresh copy: lm-eval's own classes append to ``until`` in place."""
    return copy.deepcopy(SQL_GEN)


def test_lm_evals_openai_chat_model_mistakes_gpt_3_5_for_a_reasoning_model_and_ours_does_not() -> None:
    from lm_eval.models.openai_completions import OpenAIChatCompletion

    theirs = OpenAIChatCompletion(model=FT_MODEL)._create_payload(MESSAGES, gen_kwargs=sql_gen())
    if "stop" in theirs and theirs["temperature"] == 0:
        pytest.skip("this lm-eval no longer drops stop/temperature for gpt-3.5 names")
    ours = chat_payload(FT_MODEL, MESSAGES, sql_gen(), 256, 1234)
    assert theirs["temperature"] == 1 and "stop" not in theirs
    assert ours["temperature"] == 0.0
    assert ours["stop"] == SQL_GEN["until"] and ours["max_tokens"] == SQL_GEN["max_gen_toks"]
    assert ours["messages"] == MESSAGES and ours["model"] == FT_MODEL and ours["seed"] == 1234


def test_plain_lm_eval_route_local_chat_completions_sends_greedy_requests_with_stops() -> None:
    """The route that needs no ftbench code: `lm_eval --model local-chat-completions` with OpenAI's URL."""
    from lm_eval.models.openai_completions import LocalChatCompletion

    model = LocalChatCompletion(model=FT_MODEL, base_url="https://api.openai.com/v1/chat/completions")
    payload = model._create_payload(MESSAGES, generate=True, gen_kwargs=sql_gen(), eos=None)
    assert payload["temperature"] == 0.0 and payload["stop"] == SQL_GEN["until"]
    assert payload["max_tokens"] == SQL_GEN["max_gen_toks"]


@pytest.mark.parametrize(("gen_kwargs", "temperature"), [
    ({"temperature": 0.7}, 0.0),  # without do_sample the request stays greedy
    ({"do_sample": True, "temperature": 0.7}, 0.7),
])
def test_temperature_is_zero_unless_the_task_samples(gen_kwargs: dict[str, Any], temperature: float) -> None:
    assert chat_payload(FT_MODEL, MESSAGES, gen_kwargs, 64, None)["temperature"] == temperature


def test_more_than_four_stop_sequences_keep_the_first_four_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    stops = ["a", "b", "c", "d", "e"]
    with caplog.at_level(logging.WARNING):
        payload = chat_payload(FT_MODEL, MESSAGES, {"until": stops, "max_gen_toks": 9}, 64, None)
    assert payload["stop"] == stops[:4] and payload["max_tokens"] == 9
    assert "dropping ['e']" in caplog.text


def test_a_text_prompt_asks_for_apply_chat_template() -> None:
    with pytest.raises(InputError, match="--apply_chat_template"):
        chat_payload(FT_MODEL, "a plain prompt", {}, 64, None)


def test_register_models_makes_our_names_resolvable_and_is_idempotent() -> None:
    from lm_eval.api.registry import get_model

    register_models()
    register_models()
    assert get_model("ftbench-openai-chat") is OpenAIChat
    assert get_model("ftbench-chat-completions") is ChatCompletions
    assert set(MODEL_NAMES) == {"ftbench-openai-chat", "ftbench-chat-completions"}


def test_openai_model_needs_the_key_and_the_generic_one_a_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ApiKeyError, match="OPENAI_API_KEY is not set"):
        OpenAIChat(model=FT_MODEL)
    with pytest.raises(InputError, match="base_url"):
        ChatCompletions(model="m")
    assert ChatCompletions(model="m", base_url="http://127.0.0.1:9/v1/chat/completions").header == {}


def test_the_key_is_scrubbed_from_lm_evals_request_failure_logs(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from lm_eval.models.api_models import JsonChatStr

    wrong = "sk-proj-WRONGkey9876543210abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    # Whatever an earlier in-process lm-eval run did to its logger (level, propagate=False), capture its warnings.
    monkeypatch.setattr(logging.getLogger("lm_eval"), "propagate", True)
    with FakeOpenAI() as fake:
        model = OpenAIChat(model=FT_MODEL, base_url=f"{fake.url}/chat/completions")
        with caplog.at_level(logging.WARNING, logger="lm_eval"), caplog.at_level(logging.WARNING), \
                pytest.raises(requests.HTTPError) as failure:
            model.model_call([JsonChatStr(json.dumps(MESSAGES))], generate=True, gen_kwargs=sql_gen())
    assert "Incorrect API key provided" in caplog.text  # the server's reason is shown...
    assert wrong not in caplog.text and wrong not in str(failure.value)  # ...without the key it echoed
    assert fake.requests[0].headers["authorization"] == f"Bearer {wrong}"


@pytest.mark.parametrize(("model", "field"), [
    ("o4-mini-2025-04-16", "max_completion_tokens"), ("ft:o4-mini-2025-04-16:acme::x", "max_completion_tokens"),
    ("o3", "max_completion_tokens"), ("gpt-5-mini", "max_completion_tokens"),
    ("gpt-4.1-mini-2025-04-14", "max_tokens"), (FT_MODEL, "max_tokens")])
def test_o_series_models_get_max_completion_tokens(model: str, field: str) -> None:
    payload = chat_payload(model, MESSAGES, sql_gen(), 64, None)
    other = {"max_tokens", "max_completion_tokens"} - {field}
    assert payload[field] == SQL_GEN["max_gen_toks"] and not other & set(payload)


def test_an_o_series_fine_tune_is_answered_by_the_fake_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake refuses max_tokens for o-series models with OpenAI's 400, as OpenAI does."""
    from lm_eval.models.api_models import JsonChatStr

    with FakeOpenAI() as fake:
        monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
        model = OpenAIChat(model="ft:o4-mini-2025-04-16:acme::x", base_url=f"{fake.url}/chat/completions")
        reply = model.model_call([JsonChatStr(json.dumps(MESSAGES))], generate=True, gen_kwargs=sql_gen())
        refused = requests.post(f"{fake.url}/chat/completions", timeout=10,
                                headers={"authorization": f"Bearer {fake.api_key}"},
                                json={"model": "o4-mini-2025-04-16", "messages": MESSAGES, "max_tokens": 5})
    assert reply["choices"][0]["message"]["content"] == "SELECT count(*) FROM head"
    assert fake.calls("POST", "/v1/chat/completions")[0].json()["max_completion_tokens"] == SQL_GEN["max_gen_toks"]
    assert refused.status_code == 400 and "max_completion_tokens" in refused.text


@pytest.mark.slow
def test_ftbench_eval_sends_greedy_requests_with_the_tasks_stops_and_system_prompts(
        data_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI() as fake:
        monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
        out = tmp_path / "eval"
        run_cli(["ftbench", "eval", "--model", "ftbench-openai-chat",
                 "--model_args", f"model={FT_MODEL},base_url={fake.url}/chat/completions",
                 "--tasks", "spider_sql_chat,viggo_chat", "--apply_chat_template", "--limit", "3",
                 "--log_samples", "--output_path", str(out)], cwd=tmp_path)
    bodies = [request.json() for request in fake.calls("POST", "/v1/chat/completions")]
    assert len(bodies) == 6
    sql_docs = {ex.question: ex for ex in load_spider_sql("val")}
    viggo_targets = {ex.target for ex in load_viggo("test")}
    viggo_gen = task_generation_kwargs("viggo", "viggo.yaml")
    for body in bodies:
        system, user = body["messages"]
        assert body["model"] == FT_MODEL and body["temperature"] == 0
        assert (system["role"], user["role"]) == ("system", "user")
        if user["content"] in sql_docs:
            assert system["content"] == prompts.sql_system_message(sql_docs[user["content"]].context)
            assert body["stop"] == SQL_GEN["until"] and body["max_tokens"] == SQL_GEN["max_gen_toks"]
        else:
            assert user["content"] in viggo_targets
            assert system["content"] == prompts.viggo_system_message()
            assert body["stop"] == viggo_gen["until"] and body["max_tokens"] == viggo_gen["max_gen_toks"]
    results, samples = read_outputs(out)
    assert {"spider_sql_chat", "viggo_chat"} <= set(results["results"])
    assert samples["spider_sql_chat"][0]["resps"] == [["SELECT count(*) FROM head"]]
    for task, rows in samples.items():  # each request's usage, as the API reported it, is in its logged sample
        for row in rows:
            messages = [{"content": row["doc"]["system"]}, {"content": row["doc"][INPUT_FIELD[task]]}]
            usage = row["arguments"]["gen_args_0"]["arg_1"]["ftbench_usage"]
            assert usage == {key: chat_usage(messages, row["resps"][0][0])[key]
                             for key in ("prompt_tokens", "completion_tokens")}, task
    assert all(fake.api_key not in path.read_text() for path in out.rglob("*") if path.is_file())


def test_the_chat_model_does_not_import_training_code() -> None:
    """lm-eval's side needs the OpenAI client, never the fine-tuning library (ftbench.finetune)."""
    import subprocess
    import sys

    code = ("import sys, ftbench.lmeval.openai_chat; "
            "print(sorted(m for m in sys.modules if m.startswith('ftbench.finetune')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"

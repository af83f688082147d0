"""A scripted model behind an OpenAI-compatible API on 127.0.0.1, for end-to-end tests with known scores.

``POST /v1/completions`` (lm-eval ``local-completions``, prompts sent as text) and ``POST /v1/chat/completions``
(``local-chat-completions``) answer from a script: a list of ``(cue, reply)`` pairs, where the first cue found
in the prompt (for chat: in the messages' text) picks the reply. Replies are cut at the request's ``stop``
strings, as OpenAI's API does. A prompt that no cue matches gets a 400 naming it, so a run that asks for
something unplanned fails instead of scoring a made-up answer. Every request body is recorded.

Shares its server with :mod:`tests.fake_openai` (:mod:`tests.local_server`), kept separate because it plays a
model whose answers a test chooses, not the OpenAI platform.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .local_server import LocalServer, Reply, error_body


@dataclass
class ScriptedModel(LocalServer):
    """``with ScriptedModel([(cue, reply), ...]) as model: model.url``."""

    script: Sequence[tuple[str, str]]
    requests: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reply_to(self, prompt: str, stop: Sequence[str] = ()) -> str | None:
        """The scripted reply for ``prompt`` cut at the first ``stop`` string, or None when no cue matches."""
        reply = next((reply for cue, reply in self.script if cue in prompt), None)
        if reply is None:
            return None
        cut = min((index for s in stop if s and (index := reply.find(s)) >= 0), default=len(reply))
        return reply[:cut]

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        return self.answer(path.split("?", 1)[0], json.loads(body))

    def answer(self, path: str, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append({"path": path, **body})
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else list(stop)
        if path == "/v1/completions":
            prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
            texts = [self.reply_to(prompt, stop) for prompt in prompts]
            choices: list[dict[str, Any]] = [{"index": i, "text": text, "finish_reason": "stop", "logprobs": None}
                       for i, text in enumerate(texts)]
            return self._answer(prompts, texts, "text_completion", choices)
        if path == "/v1/chat/completions":
            prompt = "\n".join(str(message.get("content", "")) for message in body["messages"])
            text = self.reply_to(prompt, stop)
            message = {"role": "assistant", "content": text}
            choices = [{"index": 0, "message": message, "finish_reason": "stop"}]
            return self._answer([prompt], [text], "chat.completion", choices)
        return Reply(404, error_body(f"unknown route {path}"))

    def _answer(self, prompts: list[str], texts: list[str | None], kind: str,
                choices: list[dict[str, Any]]) -> Reply:
        unplanned = [prompt for prompt, text in zip(prompts, texts, strict=True) if text is None]
        if unplanned:
            return Reply(400, error_body(f"no scripted reply for the prompt {unplanned[0][-300:]!r}"))
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        return Reply(200, {"id": f"cmpl-{next(self._ids)}", "object": kind, "created": 0, "model": "scripted",
                           "choices": choices, "usage": usage})

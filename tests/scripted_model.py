"""A scripted model behind an OpenAI-compatible API on 127.0.0.1, for end-to-end tests with known scores.

``POST /v1/completions`` (lm-eval ``local-completions``, prompts sent as text) and ``POST /v1/chat/completions``
(``local-chat-completions``) answer from a script: a list of ``(cue, reply)`` pairs, where the first cue found
in the prompt (for chat: in the messages' text) picks the reply. Replies are cut at the request's ``stop``
strings, as OpenAI's API does. A prompt that no cue matches gets a 400 naming it, so a run that asks for
something unplanned fails instead of scoring a made-up answer. Every request body is recorded.

Modelled on :mod:`tests.fake_openai` (same ``with`` lifecycle and threaded server), kept separate because it
plays a model whose answers a test chooses, not the OpenAI platform.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ScriptedModel:
    """``with ScriptedModel([(cue, reply), ...]) as model: model.url``."""

    script: Sequence[tuple[str, str]]
    requests: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def __enter__(self) -> ScriptedModel:
        handler = type("Handler", (_Handler,), {"model": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def reply_to(self, prompt: str, stop: Sequence[str] = ()) -> str | None:
        """The scripted reply for ``prompt`` cut at the first ``stop`` string, or None when no cue matches."""
        reply = next((reply for cue, reply in self.script if cue in prompt), None)
        if reply is None:
            return None
        cut = min((index for s in stop if s and (index := reply.find(s)) >= 0), default=len(reply))
        return reply[:cut]

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
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
        return 404, _error(f"unknown route {path}")

    def _answer(self, prompts: list[str], texts: list[str | None], kind: str,
                choices: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        unplanned = [prompt for prompt, text in zip(prompts, texts, strict=True) if text is None]
        if unplanned:
            return 400, _error(f"no scripted reply for the prompt {unplanned[0][-300:]!r}")
        return 200, {"id": f"cmpl-{next(self._ids)}", "object": kind, "created": 0, "model": "scripted",
                     "choices": choices, "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}


class _Handler(BaseHTTPRequestHandler):
    model: ScriptedModel
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        status, reply = self.model.handle(self.path.split("?", 1)[0], json.loads(self.rfile.read(length)))
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass

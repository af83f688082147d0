"""A small local stand-in for the OpenAI API: the endpoints ftbench uses, over real HTTP on 127.0.0.1.

Speaks ``POST /v1/files`` (multipart), ``POST /v1/fine_tuning/jobs``, ``GET /v1/fine_tuning/jobs/{id}``,
``GET /v1/fine_tuning/jobs/{id}/events``, ``POST /v1/fine_tuning/jobs/{id}/cancel``, ``GET /v1/models/{id}``
and ``POST /v1/chat/completions``. Like OpenAI's: a retired model is unknown to ``/v1/models``, a model that
cannot be fine-tuned is refused at job creation, and o-series models refuse ``max_tokens``.
Records every request. Can be told to fail: the next N requests answer an
error status (429 storms, 5xx), training files are rejected at job creation, jobs fail, jobs hold in
``running`` until released. A wrong key gets OpenAI's 401, which (like OpenAI's) echoes the key it was given.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .local_server import LocalServer, Reply, error_body


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


#: Models the fake fine-tunes (an undated alias resolves to its dated model in the job, as OpenAI's does).
FINE_TUNABLE = ("gpt-4.1-mini-2025-04-14", "gpt-4.1-2025-04-14", "gpt-4o-mini-2024-07-18", "o4-mini-2025-04-16")
ALIASES = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14"}


@dataclass
class FakeOpenAI(LocalServer):
    """The server's state and knobs; start with ``with FakeOpenAI() as fake: fake.url``."""

    api_key: str = "sk-test-0123456789abcdefSECRET"
    running_polls: int = 3  # retrieves a job spends running (one metrics event each) before it ends
    outcome: str = "succeeded"  # or "failed"
    failure: dict[str, Any] = field(default_factory=lambda: {
        "code": "server_error", "message": "The job failed due to an internal error.", "param": None})
    reject_training_file: str | None = None  # reason given when creating a job
    hold: threading.Event | None = None  # while set-able and not set, running jobs stay running
    chat_reply: Callable[[dict[str, Any]], str] = lambda body: "SELECT count(*) FROM head"
    models: set[str] = field(default_factory=lambda: set(FINE_TUNABLE) | {"gpt-4o-mini", "gpt-4.1-mini", "o3"})
    fine_tunable: set[str] = field(default_factory=lambda: set(FINE_TUNABLE))
    requests: list[Recorded] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _failures: deque[Reply] = field(default_factory=deque)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- lifecycle (the server itself: LocalServer) ---
    def __exit__(self, *exc: object) -> None:
        if self.hold is not None:
            self.hold.set()
        super().__exit__(*exc)

    # --- knobs ---
    def fail_next(self, count: int, status: int = 429, code: str | None = "rate_limit_exceeded",
                  message: str = "Rate limit reached for requests", headers: dict[str, str] | None = None) -> None:
        for _ in range(count):
            self._failures.append(Reply(status, error_body(message, code, "requests"), headers or {}))

    def calls(self, method: str, pattern: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]

    # --- request handling ---
    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply:
        parts = urlsplit(raw_path)
        with self._lock:
            self.requests.append(Recorded(method, parts.path, parse_qs(parts.query), headers, body))
            if headers.get("authorization") != f"Bearer {self.api_key}":
                given = headers.get("authorization", "").removeprefix("Bearer ")
                return Reply(401, error_body(f"Incorrect API key provided: {given}. You can find your API key at "
                                             "https://platform.openai.com/account/api-keys.", "invalid_api_key"))
            if self._failures:
                return self._failures.popleft()
            return self._route(method, parts.path, headers, body)

    def _route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        job = re.fullmatch(r"/v1/fine_tuning/jobs/([^/]+)(/events|/cancel)?", path)
        model = re.fullmatch(r"/v1/models/(.+)", path)
        if method == "GET" and model:
            return self._model(model.group(1))
        if method == "POST" and path == "/v1/files":
            return self._upload(headers, body)
        if method == "POST" and path == "/v1/fine_tuning/jobs":
            return self._create(json.loads(body))
        if method == "POST" and path == "/v1/chat/completions":
            return self._chat(json.loads(body))
        if job and job.group(1) not in self.jobs:
            return Reply(404, error_body(f"Could not find fine tune job: {job.group(1)}", "fine_tune_not_found"))
        if job and method == "GET" and job.group(2) is None:
            return Reply(200, self._advance(job.group(1)))
        if job and method == "GET" and job.group(2) == "/events":
            data = list(reversed(self.events[job.group(1)]))  # newest first, like OpenAI
            return Reply(200, {"object": "list", "data": data, "has_more": False})
        if job and method == "POST" and job.group(2) == "/cancel":
            return Reply(200, self._end(job.group(1), "cancelled"))
        return Reply(404, error_body(f"Unknown route {method} {path}"))

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):06d}"

    def _upload(self, headers: dict[str, str], body: bytes) -> Reply:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {headers['content-type']}\r\n\r\n".encode() + body)
        fields = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
        upload = fields["file"]
        file_id = self._new_id("file")
        content = upload.get_payload(decode=True)
        self.files[file_id] = {"filename": upload.get_filename(), "content": content,
                               "purpose": fields["purpose"].get_payload(decode=True).decode()}
        return Reply(200, {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                           "filename": upload.get_filename(), "purpose": "fine-tune", "status": "processed"})

    def _create(self, params: dict[str, Any]) -> Reply:
        if params["training_file"] not in self.files:
            return Reply(400, error_body(f"invalid training_file: {params['training_file']}", None,
                                         param="training_file"))
        if self.reject_training_file:
            return Reply(400, error_body(self.reject_training_file, "invalid_file_format", param="training_file"))
        model = ALIASES.get(params["model"], params["model"])
        if model not in self.fine_tunable:
            return Reply(400, error_body(f"Model {params['model']} is not available for fine-tuning or does not exist.",
                                         "model_not_available", param="model"))
        job_id = self._new_id("ftjob")
        method = params.get("method") or {"type": "supervised", "supervised": {}}
        settings = method.get(method["type"], {}).get("hyperparameters") or params.get("hyperparameters", {})
        n_epochs = settings.get("n_epochs", 3)
        self.jobs[job_id] = {
            "object": "fine_tuning.job", "id": job_id, "model": model, "created_at": int(time.time()),
            "method": method,
            "finished_at": None, "fine_tuned_model": None, "organization_id": "org-fake", "result_files": [],
            "status": "validating_files", "validation_file": params.get("validation_file"),
            "training_file": params["training_file"], "trained_tokens": None, "error": None,
            "seed": params.get("seed", 0), "suffix": params.get("suffix"),
            "hyperparameters": {"n_epochs": n_epochs, "batch_size": 8, "learning_rate_multiplier": 2},
            "_polls": 0,
        }
        self.events[job_id] = []
        self._event(job_id, f"Created fine-tuning job: {job_id}")
        return Reply(200, self._public(job_id))

    def _public(self, job_id: str) -> dict[str, Any]:
        return {key: value for key, value in self.jobs[job_id].items() if not key.startswith("_")}

    def _event(self, job_id: str, message: str, level: str = "info", data: dict[str, Any] | None = None) -> None:
        self.events[job_id].append({
            "object": "fine_tuning.job.event", "id": self._new_id("ftevent"), "created_at": int(time.time()),
            "level": level, "message": message, "data": data or {}, "type": "metrics" if data else "message"})

    def _advance(self, job_id: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        if job["status"] == "validating_files":
            job["status"] = "queued"
            self._event(job_id, "Validating training file: " + job["training_file"])
        elif job["status"] == "queued":
            job["status"] = "running"
            self._event(job_id, "Fine-tuning job started")
        elif job["status"] == "running" and (self.hold is None or self.hold.is_set()):
            job["_polls"] += 1
            step, total = job["_polls"], self.running_polls
            self._event(job_id, f"Step {step}/{total}: training loss={1 / step:.2f}",
                        data={"step": step, "total_steps": total, "train_loss": 1 / step})
            if step >= total:
                self._end(job_id, self.outcome)
        return self._public(job_id)

    def _end(self, job_id: str, status: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        job.update(status=status, finished_at=job["created_at"] + 600)
        if status == "succeeded":
            suffix = job["suffix"] or ""
            job.update(fine_tuned_model=f"ft:{job['model']}:fake-org:{suffix}:{job_id[-6:]}",
                       trained_tokens=self._trained_tokens(job))
            self._event(job_id, "The job has successfully completed")
        elif status == "failed":
            job["error"] = dict(self.failure)
            self._event(job_id, f"Fine-tuning job failed: {self.failure['message']}", level="error")
        else:
            self._event(job_id, "Fine-tuning job cancelled")
        return self._public(job_id)

    def _trained_tokens(self, job: dict[str, Any]) -> int:
        """Epochs × (words + 4 per message) over the training file: not tiktoken, but derived from the data."""
        lines = self.files[job["training_file"]]["content"].decode().splitlines()
        per_epoch = sum(len(m["content"].split()) + 4 for line in lines for m in json.loads(line)["messages"])
        return int(job["hyperparameters"]["n_epochs"]) * per_epoch

    def _model(self, model: str) -> Reply:
        if model not in self.models:
            return Reply(404, error_body(f"The model `{model}` does not exist or you do not have access to it.",
                                         "model_not_found"))
        return Reply(200, {"id": model, "object": "model", "created": 1700000000, "owned_by": "system"})

    def _chat(self, params: dict[str, Any]) -> Reply:
        base = str(params.get("model", "")).removeprefix("ft:")
        if re.match(r"o\d", base) and "max_tokens" in params:
            return Reply(400, error_body("Unsupported parameter: 'max_tokens' is not supported with this model. "
                                         "Use 'max_completion_tokens' instead.", "unsupported_parameter",
                                         param="max_tokens"))
        content = self.chat_reply(params)
        return Reply(200, {
            "id": self._new_id("chatcmpl"), "object": "chat.completion", "created": int(time.time()),
            "model": params.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": chat_usage(params.get("messages") or [], content)})


def chat_usage(messages: list[dict[str, Any]], content: str) -> dict[str, int]:
    """Token usage as the fake counts it: words of the messages (+4 each) and of the reply."""
    prompt = sum(len(str(m.get("content", "")).split()) + 4 for m in messages)
    completion = len(content.split())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

"""The base of the tests' local stand-ins for HTTP APIs (:mod:`tests.fake_openai`, :mod:`tests.scripted_model`).

A stand-in subclasses :class:`LocalServer` and answers :meth:`LocalServer.handle`; the base runs a threaded
HTTP server on 127.0.0.1 for the length of a ``with`` block and sends each :class:`Reply` as JSON.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def error_body(message: str, code: str | None = None, type_: str = "invalid_request_error",
               param: str | None = None) -> dict[str, Any]:
    """An error as OpenAI's API (and OpenAI-compatible servers) word it."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class LocalServer:
    """``with Stand() as stand: stand.url``; subclasses answer :meth:`handle`."""

    _server: ThreadingHTTPServer | None = None

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        """The reply to one request (``path`` with its query; header names lower-cased)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        handler = type("Handler", (_Handler,), {"stand_in": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        """The API's base URL, ``http://127.0.0.1:PORT/v1``."""
        assert self._server is not None, "use the stand-in in a with block"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    stand_in: LocalServer
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.stand_in.handle(self.command, self.path, headers, body)
        data = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass

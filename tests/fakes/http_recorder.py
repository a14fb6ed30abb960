"""A real HTTP server on loopback that records requests and answers from a script.

Used where Hub calls out to a URL a user configured (flow HTTP steps, webhooks): the test sees
exactly what Hub sent, and can make the server fail (``script`` of statuses, then 200s).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Recorder:
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    script: list[int] = field(default_factory=list)  # statuses to answer first, in order
    reply: dict[str, Any] = field(default_factory=lambda: {"ok": True})


@contextmanager
def http_recorder() -> Iterator[Recorder]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            recorder.requests.append(Recorded(self.command, self.path, dict(self.headers), body))
            status = recorder.script.pop(0) if recorder.script else 200
            payload = json.dumps(recorder.reply if status < 400 else {"error": status}).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()

"""A webhook receiver on loopback: verifies Standard Webhooks signatures, fails on cue, records.

The signature check is written here from the specification, independently of Hub's signing
code, so a test that passes proves Hub signs the way any receiver checks. Script failures with
:meth:`Receiver.fail`: ``("status", 500)``, ``("status", 429, retry_after)``, ``("hang",
seconds)`` (answer nothing until the client gives up), ``("close",)`` (drop the connection
without an answer) or ``("redirect", 302, location)`` (a redirect to ``location``), each for
``times`` requests; then it answers 200 again.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def verify_standard(secret: str, headers: dict[str, str], body: bytes, tolerance: int = 300) -> bool:
    """Standard Webhooks: HMAC-SHA256 over ``id.timestamp.body`` with the base64 key after
    ``whsec_``, any of the space-separated ``v1,`` signatures, timestamp within 5 minutes."""
    msg_id, stamp, signatures = (headers.get(h, "") for h in (
        "webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (msg_id and stamp.isdigit() and signatures) or abs(time.time() - int(stamp)) > tolerance:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + body,
                                         hashlib.sha256).digest()).decode()
    return any(part.startswith("v1,") and hmac.compare_digest(part[3:], expected)
               for part in signatures.split())


@dataclass
class Arrival:
    """One request as it arrived."""

    headers: dict[str, str]
    raw: bytes
    verified: bool
    answered: str  # "200", "500", "hang", "close", "401", "redirect"
    at: float = field(default_factory=time.monotonic)

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def payload(self) -> Any:
        return json.loads(self.raw)


@dataclass
class Receiver:
    url: str = ""
    secrets: list[str] = field(default_factory=list)  # accepted signing secrets
    arrivals: list[Arrival] = field(default_factory=list)
    script: list[tuple[Any, ...]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, action: tuple[Any, ...], times: int = 1) -> None:
        with self.lock:
            self.script.extend([action] * times)

    @property
    def accepted(self) -> list[Arrival]:
        """Requests answered 2xx (what the sender may consider delivered)."""
        return [a for a in self.arrivals if a.answered == "200"]

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event of every accepted delivery, in arrival order (duplicates included)."""
        return [e for a in self.accepted for e in a.payload["events"]]

    def event_ids(self) -> list[str]:
        return [e["id"] for e in self.events]

    async def wait_for_events(self, count: int, seconds: float = 20.0) -> None:
        deadline = time.monotonic() + seconds
        while len(set(self.event_ids())) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(set(self.event_ids()))} of {count} events arrived")
            await asyncio.sleep(0.02)

    async def wait_for_arrivals(self, count: int, seconds: float = 20.0) -> None:
        deadline = time.monotonic() + seconds
        while len(self.arrivals) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.arrivals)} of {count} requests arrived")
            await asyncio.sleep(0.02)


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            verified = any(verify_standard(s, headers, raw) for s in receiver.secrets)
            with receiver.lock:
                action = receiver.script.pop(0) if receiver.script else ("status", 200)
            if not verified:
                action = ("status", 401)
            kind = action[0]
            answered = str(action[1]) if kind == "status" else kind
            receiver.arrivals.append(Arrival(headers, raw, verified, answered))
            if kind == "hang":
                time.sleep(action[1])
                self.close_connection = True
                return
            if kind == "close":
                self.close_connection = True
                return
            status = int(action[1])
            reply = json.dumps({"ok": status < 300, "status": status}).encode()
            self.send_response(status)
            if kind == "redirect":
                self.send_header("location", str(action[2]))
            elif len(action) > 2:
                self.send_header("retry-after", str(action[2]))
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_PUT = do_POST  # a followed redirect may change the method: record it too

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()

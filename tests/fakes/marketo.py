"""A fake Marketo on loopback: it makes submitAsyncAction invocations and receives their callbacks.

Like Marketo, :meth:`FakeMarketo.invocation` gives each invocation a one-time ``token`` and the
``apiCallBackKey`` for its callback, and the callback endpoint (``POST /callback``) checks what
Marketo checks: ``x-api-key`` is the callback key (else 401), ``x-callback-token`` is a token it
issued (else 401), and the body is a ``flowCallBack``: a ``munchkinId`` string, and
``objectData`` a list of ``{leadData: {id: integer, ...}, activityData: {success: boolean,
errorCode?: string, reason?: string, ...}}`` (else 400). The checks are written here from the
SPI, independently of Hub's code.

Script failures with :meth:`FakeMarketo.fail`: ``("status", 503)``, ``("hang", seconds)`` (answer
nothing until the client gives up) or ``("close",)`` (drop the connection), each for ``times``
callbacks; :meth:`down` refuses connections until :meth:`up`.

``python -m tests.fakes.marketo`` runs it as a process (for benchmarks and manual runs); then
``POST /_fake/invocation`` with ``{"leads": [...] | "count", "flowConfigId", "step"?,
"munchkinId"?}`` answers an invocation body, ``GET /_fake/callbacks`` lists what arrived (answer,
arrival time, leads, leads that succeeded) and ``GET /healthz`` answers 200.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CALLBACK_KEY = "fake-marketo-callback-key"
MUNCHKIN = "123-ABC-456"


def check_callback(body: Any) -> str | None:
    """Why a callback body is not a ``flowCallBack`` Marketo takes, or None."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if not isinstance(body.get("munchkinId"), str) or not body["munchkinId"]:
        return "munchkinId: required string"
    if "errorCode" in body and not isinstance(body["errorCode"], str):
        return "errorCode: must be a string"
    data = body.get("objectData", [])
    if not isinstance(data, list):
        return "objectData: must be a list"
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("leadData"), dict):
            return f"objectData[{i}].leadData: required object"
        lead_id = item["leadData"].get("id")
        if not isinstance(lead_id, int) or isinstance(lead_id, bool):
            return f"objectData[{i}].leadData.id: required integer"
        activity = item.get("activityData", {})
        if not isinstance(activity, dict):
            return f"objectData[{i}].activityData: must be an object"
        if "success" in activity and not isinstance(activity["success"], bool):
            return f"objectData[{i}].activityData.success: must be a boolean"
        for name in ("errorCode", "reason"):
            if name in activity and not isinstance(activity[name], str):
                return f"objectData[{i}].activityData.{name}: must be a string"
    return None


@dataclass
class Callback:
    """One callback request as it arrived, and what the fake answered."""

    headers: dict[str, str]
    raw: bytes
    answered: str  # "200", "400", "401", "503", "hang", "close"
    at: float = field(default_factory=time.time)

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


@dataclass
class FakeMarketo:
    url: str = ""
    callback_key: str = CALLBACK_KEY
    tokens: set[str] = field(default_factory=set)
    callbacks: list[Callback] = field(default_factory=list)
    script: list[tuple[Any, ...]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: Any = None

    @property
    def callback_url(self) -> str:
        return f"{self.url}/callback"

    def fail(self, action: tuple[Any, ...], times: int = 1) -> None:
        with self.lock:
            self.script.extend([action] * times)

    @property
    def accepted(self) -> list[Callback]:
        """Callbacks answered 200 (what Marketo would process)."""
        return [c for c in self.callbacks if c.answered == "200"]

    def invocation(
        self,
        leads: list[dict[str, Any]],
        flow_id: str,
        *,
        step: dict[str, Any] | None = None,
        munchkin_id: str = MUNCHKIN,
        campaign_id: int = 1001,
        callback_url: str | None = None,
    ) -> dict[str, Any]:
        """A submitAsyncAction body as Marketo sends it: ``leads`` are ``objectContext`` objects
        (each with an integer ``id``); ``step`` the flow-step fields besides ``flowConfigId``."""
        token = str(uuid.uuid4())
        with self.lock:
            self.tokens.add(token)
        return {
            "token": token,
            "apiCallBackKey": self.callback_key,
            "callbackUrl": callback_url or self.callback_url,
            "batchid": str(uuid.uuid4()),
            "campaignId": campaign_id,
            "context": {
                "subscription": {"munchkinId": munchkin_id, "prefix": "fakeprefix"},
                "campaign": {"id": campaign_id, "name": "Welcome campaign"},
                "program": {"id": 2002, "name": "Onboarding"},
            },
            "objectData": [
                {
                    "objectType": "lead",
                    "objectContext": lead,
                    "flowStepContext": {"flowConfigId": flow_id, **(step or {})},
                }
                for lead in leads
            ],
        }

    def answer(self, headers: dict[str, str], raw: bytes) -> tuple[str, int, dict[str, Any]]:
        """What Marketo answers a callback: (recorded outcome, status, body)."""
        if headers.get("x-api-key") != self.callback_key:
            return "401", 401, {"error": "x-api-key is not the callback key"}
        with self.lock:
            known = headers.get("x-callback-token") in self.tokens
        if not known:
            return "401", 401, {"error": "x-callback-token is not a token Marketo issued"}
        try:
            body = json.loads(raw)
        except ValueError:
            return "400", 400, {"error": "the body is not JSON"}
        problem = check_callback(body)
        if problem is not None:
            return "400", 400, {"error": problem}
        with self.lock:
            action = self.script.pop(0) if self.script else ("status", 200)
        if action[0] != "status":  # "hang" (for action[1] seconds) or "close"
            return str(action[0]), 0, {"seconds": float(action[1]) if len(action) > 1 else 0.0}
        return str(action[1]), int(action[1]), {"ok": int(action[1]) < 300}

    async def wait_for_callbacks(self, count: int, seconds: float = 20.0, *, accepted: bool = True) -> None:
        deadline = time.monotonic() + seconds
        while len(self.accepted if accepted else self.callbacks) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(self.accepted)} accepted of {len(self.callbacks)} callbacks, expected {count}"
                )
            await asyncio.sleep(0.02)

    def summary(self) -> list[dict[str, Any]]:
        return [
            {
                "answered": c.answered,
                "at": c.at,
                "leads": len(c.body.get("objectData", [])) if c.raw.startswith(b"{") else 0,
                "succeeded": sum(
                    1 for o in c.body.get("objectData", []) if o.get("activityData", {}).get("success")
                )
                if c.raw.startswith(b"{")
                else 0,
            }
            for c in self.callbacks
        ]

    # --- serving --------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self, status: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                if self.path == "/_fake/callbacks":
                    self._reply(200, fake.summary())
                elif self.path == "/healthz":
                    self._reply(200, {"status": "ok"})
                else:
                    self._reply(404, {"error": "not found"})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path == "/_fake/invocation":
                    self._invocation(json.loads(raw or b"{}"))
                    return
                if self.path != "/callback":
                    self._reply(404, {"error": "not found"})
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                outcome, status, body = fake.answer(headers, raw)
                fake.callbacks.append(Callback(headers, raw, outcome))
                if outcome == "hang":
                    time.sleep(body["seconds"])
                    self.close_connection = True
                    return
                if outcome == "close":
                    self.close_connection = True
                    return
                self._reply(status, body)

            def _invocation(self, ask: dict[str, Any]) -> None:
                leads = ask.get("leads") or [
                    {"id": 1_000_000 + i, "email": f"lead{i}@example.com"}
                    for i in range(int(ask.get("count", 1)))
                ]
                self._reply(
                    200,
                    fake.invocation(
                        leads,
                        ask["flowConfigId"],
                        step=ask.get("step"),
                        munchkin_id=ask.get("munchkinId", MUNCHKIN),
                    ),
                )

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def start(self, port: int = 0) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def down(self) -> None:
        """Refuse connections (the port closes) until :meth:`up`."""
        self.stop()

    def up(self) -> None:
        self.start(int(self.url.rsplit(":", 1)[1]))


@contextmanager
def fake_marketo(callback_key: str = CALLBACK_KEY) -> Iterator[FakeMarketo]:
    fake = FakeMarketo(callback_key=callback_key)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.marketo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument(
        "--callback-key",
        default=CALLBACK_KEY + "-" + secrets.token_hex(4),
        help="the apiCallBackKey its invocations carry and its callbacks require",
    )
    args = parser.parse_args(argv)
    fake = FakeMarketo(callback_key=args.callback_key)
    fake.start(args.port)
    print(
        json.dumps({"url": fake.url, "callbackUrl": fake.callback_url, "callbackKey": fake.callback_key}),
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()

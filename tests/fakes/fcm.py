"""A fake FCM HTTP v1 ``messages:send`` on loopback, with the Google OAuth fake beside it.

It checks what FCM checks (PROTOCOLS.md §4, written from Google's documentation): a Bearer
access token issued by :mod:`tests.fakes.google_oauth` and not expired (else 401), the project
in the path being the token's (else 403), ``Content-Type: application/json``, the body shape
(``{"message": {...}}`` with one ``token``; notification strings; ``data`` string to string
without reserved keys; android priority and ttl), the token's format and the 4096-byte payload
limit (else 400 INVALID_ARGUMENT with a ``BadRequest`` naming the field). Accepted messages are
recorded in :attr:`Fcm.messages` and answered ``{"name": "projects/P/messages/N"}``.

Script errors with :meth:`Fcm.fail` (globally, or for one device token), with the envelope FCM
really sends: ``UNREGISTERED`` (404), ``INVALID_ARGUMENT`` (400, about the token),
``INVALID_ARGUMENT_DATA`` (400, about ``message.data``), ``QUOTA_EXCEEDED`` (429, with
``Retry-After`` when given), ``INTERNAL`` (500), ``UNAVAILABLE`` (503), ``UNAUTHENTICATED`` (401),
``SENDER_ID_MISMATCH`` (403), ``THIRD_PARTY_AUTH_ERROR`` (401). Over HTTP/2 (``h2c``),
:meth:`Fcm.goaway` refuses a send with a GOAWAY and :meth:`Fcm.disconnect` drops its connection
without a word, as a Google front end does when it restarts or a connection breaks.

Manual use: ``python -m tests.fakes.fcm [--port P] [--oauth-port P] [--project ID]`` starts both
fakes and prints a service-account JSON to give ``hub push-fcm set`` and the
``HUB_PUSH_FCM_BASE_URL`` to set (with ``HUB_ALLOW_PRIVATE_URLS=true``, the token URI being on
loopback). ``--h2c`` serves FCM over HTTP/2 with prior knowledge (then also set
``HUB_PUSH_FCM_HTTP2_PRIOR_KNOWLEDGE=true``). ``--json-line`` prints one JSON line
``{"baseUrl", "h2c", "serviceAccount"}`` instead (the benchmark reads it). ``--storm S`` answers
every send 429 QUOTA_EXCEEDED for ``S`` seconds from the first one (``--storm-retry-after``
sets its ``Retry-After``), to time how a sender drains a 429 storm.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import secrets
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.cuts import ConnectionCuts
from tests.fakes.google_oauth import GoogleOAuth, read_body, respond

FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
MAX_PAYLOAD = 4096
TOKEN_FORMAT = re.compile(r"[A-Za-z0-9_:-]{32,4096}")
RESERVED_DATA_KEYS = {"from", "notification", "message_type"}
_SEND_PATH = re.compile(r"/v1/projects/(?P<project>[a-z0-9-]+)/messages:send")
_TTL = re.compile(r"\d{1,7}(\.\d{1,9})?s")

# code -> (HTTP status, google.rpc status, message, FcmError errorCode or None, violated field)
ERRORS: dict[str, tuple[int, str, str, str | None, str | None]] = {
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED", None),
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT",
                         "The registration token is not a valid FCM registration token",
                         "INVALID_ARGUMENT", "message.token"),
    "INVALID_ARGUMENT_DATA": (400, "INVALID_ARGUMENT", "Invalid value at 'message.data'",
                              "INVALID_ARGUMENT", "message.data"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Send requests'",
                       "QUOTA_EXCEEDED", None),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered.", "INTERNAL", None),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE", None),
    "UNAUTHENTICATED": (401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected "
                        "OAuth 2 access token, login cookie or other valid authentication credential.",
                        None, None),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH", None),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service",
                               "THIRD_PARTY_AUTH_ERROR", None),
}


def device_token() -> str:
    """A token of the shape FCM gives apps (``<instance id>:APA91b<...>``)."""
    return f"{secrets.token_urlsafe(16)}:APA91b{secrets.token_urlsafe(100)}"


def envelope(code: str, message: str | None = None) -> tuple[int, dict[str, Any]]:
    status, rpc_status, default, error_code, violated = ERRORS[code]
    details: list[dict[str, Any]] = []
    if error_code is not None:
        details.append({"@type": FCM_ERROR, "errorCode": error_code})
    if violated is not None:
        details.append({"@type": BAD_REQUEST, "fieldViolations": [
            {"field": violated, "description": message or default}]})
    error: dict[str, Any] = {"code": status, "message": message or default, "status": rpc_status}
    if details:
        error["details"] = details
    return status, {"error": error}


@dataclass
class Received:
    project: str
    message: dict[str, Any]
    headers: dict[str, str]
    http_version: str
    at: float = field(default_factory=time.monotonic)


@dataclass
class Fcm(ConnectionCuts):
    oauth: GoogleOAuth
    url: str = ""
    messages: list[Received] = field(default_factory=list)
    requests: int = 0
    answered: list[str] = field(default_factory=list)  # "200" or the error code of each request
    script: list[tuple[str, float | None]] = field(default_factory=list)
    token_scripts: dict[str, list[tuple[str, float | None]]] = field(default_factory=dict)
    unregistered: set[str] = field(default_factory=set)
    delay: float = 0.0  # seconds before answering, to observe concurrency
    in_flight: int = 0
    max_in_flight: int = 0
    record: bool = True  # the benchmark turns recording off
    connections: int = 0  # HTTP/2 connections opened (h2c only)
    storm_seconds: float = 0.0  # answer QUOTA_EXCEEDED this long from the first send (a 429 storm)
    storm_retry_after: float | None = None
    storm_started: float | None = None
    _cuts: list[tuple[int, str]] = field(default_factory=list)  # (sends to answer first, "goaway"|"drop")

    def fail(self, code: str, *, token: str | None = None, times: int = 1,
             retry_after: float | None = None) -> None:
        """Answer the next ``times`` sends (to ``token`` only, when given) with error ``code``."""
        if code not in ERRORS:
            raise ValueError(f"unknown FCM error {code}; one of {', '.join(ERRORS)}")
        queue = self.script if token is None else self.token_scripts.setdefault(token, [])
        queue.extend([(code, retry_after)] * times)


    def unregister(self, token: str) -> None:
        """``token`` is answered UNREGISTERED from now on (the app was uninstalled)."""
        self.unregistered.add(token)

    def _scripted(self, token: str) -> tuple[str, float | None] | None:
        if self.storm_seconds:
            if self.storm_started is None:
                self.storm_started = time.monotonic()
            if time.monotonic() - self.storm_started < self.storm_seconds:
                return "QUOTA_EXCEEDED", self.storm_retry_after
        if token in self.unregistered:
            return "UNREGISTERED", None
        queue = self.token_scripts.get(token)
        if queue:
            return queue.pop(0)
        return self.script.pop(0) if self.script else None

    def _check_message(self, body: bytes) -> tuple[str, str] | dict[str, Any]:
        """The message, or (field, problem) of the first violation."""
        try:
            document = json.loads(body)
        except ValueError:
            return "message", "Invalid JSON payload received."
        if not isinstance(document, dict) or set(document) - {"message", "validate_only"}:
            return "message", "Invalid JSON payload received. Unknown name at the top level"
        message = document.get("message")
        if not isinstance(message, dict):
            return "message", "message is required"
        targets = [k for k in ("token", "topic", "condition") if k in message]
        if targets != ["token"]:
            return "message", "exactly one of token, topic or condition is required (the fake takes tokens)"
        if not isinstance(message["token"], str) or not TOKEN_FORMAT.fullmatch(message["token"]):
            return "message.token", "The registration token is not a valid FCM registration token"
        notification = message.get("notification", {})
        if not isinstance(notification, dict) or any(
                not isinstance(notification.get(k, ""), str) for k in ("title", "body", "image")):
            return "message.notification", "title, body and image must be strings"
        data = message.get("data", {})
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            return "message.data", "data values must be strings"
        reserved = [k for k in data if k in RESERVED_DATA_KEYS or k.startswith(("google.", "gcm."))]
        if reserved:
            return "message.data", f"Invalid data payload key: {reserved[0]}"
        android = message.get("android", {})
        if not isinstance(android, dict) or android.get("priority", "NORMAL") not in ("NORMAL", "HIGH"):
            return "message.android.priority", "must be NORMAL or HIGH"
        if "ttl" in android and not (isinstance(android["ttl"], str) and _TTL.fullmatch(android["ttl"])):
            return "message.android.ttl", "Invalid value at 'message.android.ttl' (a Duration such as 3.5s)"
        size = len(json.dumps({k: v for k, v in message.items() if k != "token"}, separators=(",", ":"),
                              ensure_ascii=False).encode())
        if size > MAX_PAYLOAD:
            return "message", f"Message is too big: {size} bytes, the limit is {MAX_PAYLOAD}"
        return message

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            status, answer, headers = self._answer(scope, body)
        finally:
            self.in_flight -= 1
        self.answered.append("200" if status == 200 else answer["error"].get("status", str(status)))
        await respond(send, status, answer, headers)

    def _answer(self, scope: dict[str, Any], body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        match = _SEND_PATH.fullmatch(scope["path"])
        if scope["method"] != "POST" or match is None:
            return 404, {"error": {"code": 404, "message": "Not Found", "status": "NOT_FOUND"}}, {}
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        authorization = headers.get("authorization", "")
        issued = (self.oauth.check_access_token(authorization[7:])
                  if authorization.startswith("Bearer ") else None)
        if issued is None:
            return (*envelope("UNAUTHENTICATED"),
                    {"www-authenticate": 'Bearer realm="https://accounts.google.com/"'})
        project = match["project"]
        if issued.project_id != project:
            return 403, {"error": {"code": 403, "status": "PERMISSION_DENIED", "message":
                                   f"Permission 'cloudmessaging.messages.create' denied on resource "
                                   f"'//cloudresourcemanager.googleapis.com/projects/{project}'"}}, {}
        if not headers.get("content-type", "").startswith("application/json"):
            checked: tuple[str, str] | dict[str, Any] = ("message", "Invalid JSON payload received: "
                                                                    "send application/json")
        else:
            checked = self._check_message(body)
        if isinstance(checked, tuple):
            status, answer = envelope("INVALID_ARGUMENT", checked[1])
            answer["error"]["details"][1]["fieldViolations"][0]["field"] = checked[0]
            return status, answer, {}
        scripted = self._scripted(checked["token"])
        if scripted is not None:
            code, wait = scripted
            status, answer = envelope(code)
            return status, answer, ({"retry-after": f"{wait:g}"} if wait is not None else {})
        if self.record:
            self.messages.append(Received(project, checked, headers, scope.get("http_version", "")))
        number = self.requests
        return 200, {"name": f"projects/{project}/messages/0:{number}%{secrets.token_hex(8)}"}, {}


@dataclass
class FakeGoogle:
    """Both fakes, served: ``oauth.token_uri`` and ``fcm.url`` (the FCM base URL)."""

    oauth: GoogleOAuth
    fcm: Fcm


async def _serve(app: Any, port: int) -> tuple[Any, asyncio.Task[None], str]:
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):  # type: ignore[no-untyped-def]
            yield  # whoever runs us owns the signals

    server = Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None,
                                   access_log=False))
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError(f"the fake did not start: {task}")
        await asyncio.sleep(0.01)
    return server, task, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


@contextlib.asynccontextmanager
async def running(port: int = 0, oauth_port: int = 0, *, h2c: bool = False) -> AsyncIterator[FakeGoogle]:
    """Serve the OAuth and FCM fakes on loopback (random ports by default) in this event loop.

    FCM speaks HTTP/1.1, or with ``h2c`` HTTP/2 with prior knowledge (the client must be told:
    ``HUB_PUSH_FCM_HTTP2_PRIOR_KNOWLEDGE=true``); the token endpoint speaks HTTP/1.1.
    """
    oauth = GoogleOAuth()
    fcm = Fcm(oauth)
    started = []
    h2_server = None
    try:
        server, task, oauth.url = await _serve(oauth, oauth_port)
        started.append((server, task))
        if h2c:
            h2_server, fcm.url = await serve_h2c(fcm, port)
        else:
            server, task, fcm.url = await _serve(fcm, port)
            started.append((server, task))
        yield FakeGoogle(oauth, fcm)
    finally:
        if h2_server is not None:
            h2_server.close()
        for server, task in started:
            server.should_exit = True
            await asyncio.wait_for(task, 15)


async def _main(args: argparse.Namespace) -> None:
    async with running(args.port, args.oauth_port, h2c=args.h2c) as fake:
        fake.fcm.record = not args.json_line  # a benchmark sends too many to keep
        fake.fcm.storm_seconds, fake.fcm.storm_retry_after = args.storm, args.storm_retry_after
        account = fake.oauth.service_account(args.project)
        if args.json_line:
            print(json.dumps({"baseUrl": fake.fcm.url, "h2c": args.h2c, "serviceAccount": account}),
                  flush=True)
        else:
            print(json.dumps(account, indent=2))
            print(f"\nFake FCM at {fake.fcm.url}, fake Google OAuth at {fake.oauth.token_uri}.\n"
                  "Save the JSON above to a file, then:\n"
                  f"  export HUB_PUSH_FCM_BASE_URL={fake.fcm.url} HUB_ALLOW_PRIVATE_URLS=true\n"
                  + ("  export HUB_PUSH_FCM_HTTP2_PRIOR_KNOWLEDGE=true\n" if args.h2c else "") +
                  "  hub push-fcm set --env demo --service-account FILE\n"
                  "Ctrl-C stops.", file=sys.stderr, flush=True)
        stop = asyncio.Event()
        with contextlib.suppress(NotImplementedError):
            import signal

            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        last = 0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5)
            if not args.json_line and fake.fcm.requests != last:
                last = fake.fcm.requests
                print(f"{len(fake.fcm.messages)} messages accepted, {fake.fcm.requests} requests",
                      file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.fcm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="FCM port (default: a free one)")
    parser.add_argument("--oauth-port", type=int, default=0, help="OAuth token endpoint port")
    parser.add_argument("--project", default="hub-demo-project", help="Firebase project id")
    parser.add_argument("--h2c", action="store_true",
                        help="serve FCM over HTTP/2 with prior knowledge instead of HTTP/1.1")
    parser.add_argument("--storm", type=float, default=0.0, metavar="SECONDS",
                        help="answer every send 429 QUOTA_EXCEEDED for SECONDS from the first one")
    parser.add_argument("--storm-retry-after", type=float, default=None, metavar="SECONDS",
                        help="the Retry-After of the storm's answers (default: none)")
    parser.add_argument("--json-line", action="store_true",
                        help='print {"baseUrl", "serviceAccount"} on one line (for scripts)')
    asyncio.run(_main(parser.parse_args(argv)))


class _H2cProtocol(asyncio.Protocol):
    """HTTP/2 without TLS, prior knowledge (h2c), in front of an ASGI app: what FCM speaks (over
    TLS) for clients that multiplex sends on one connection."""

    def __init__(self, app: Any) -> None:
        import h2.config
        import h2.connection

        self.app = app
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                                        header_encoding=None))
        self.streams: dict[int, tuple[list[tuple[bytes, bytes]], list[bytes]]] = {}
        self.transport: Any = None
        self.pending = 0  # streams being answered
        self.going_away = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if isinstance(self.app, Fcm):
            self.app.connections += 1
        self.conn.initiate_connection()
        self.conn.update_settings({0x3: 1000})  # SETTINGS_MAX_CONCURRENT_STREAMS
        transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        import h2.events
        import h2.exceptions

        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.transport.write(self.conn.data_to_send())
            self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self.streams[event.stream_id] = (list(event.headers), [])
                if event.stream_ended:
                    self._dispatch(event.stream_id)
            elif isinstance(event, h2.events.DataReceived):
                if event.stream_id in self.streams:
                    self.streams[event.stream_id][1].append(event.data)
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if event.stream_ended:
                    self._dispatch(event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self._dispatch(event.stream_id)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.transport.close()
        self.transport.write(self.conn.data_to_send())

    def _dispatch(self, stream_id: int) -> None:
        request = self.streams.pop(stream_id, None)
        if request is None or self.transport.is_closing():
            return
        if self.going_away:
            return  # above the GOAWAY's last stream: never processed
        fake = self.app if isinstance(self.app, Fcm) else None
        cut = fake._cut() if fake is not None else None
        if fake is not None and cut is not None:
            fake.requests += 1
        if cut == "drop":
            fake.answered.append("dropped")  # type: ignore[union-attr]
            self.transport.abort()
            return
        if cut == "goaway":
            fake.answered.append("GOAWAY")  # type: ignore[union-attr]
            self.going_away = True
            self.conn.close_connection(error_code=0, last_stream_id=max(0, stream_id - 2))
            self.transport.write(self.conn.data_to_send())
            if not self.pending:
                self.transport.close()
            return
        self.pending += 1
        asyncio.get_running_loop().create_task(self._run(stream_id, *request))

    async def _run(self, stream_id: int, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> None:
        pseudo = {k: v for k, v in headers if k.startswith(b":")}
        path = pseudo.get(b":path", b"/").decode()
        scope = {"type": "http", "http_version": "2", "method": pseudo.get(b":method", b"GET").decode(),
                 "path": path.split("?", 1)[0],
                 "headers": [(k, v) for k, v in headers if not k.startswith(b":")]}
        body = b"".join(chunks)
        answer: dict[str, Any] = {}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            answer[message["type"]] = message

        try:
            await self.app(scope, receive, send)
            start, raw = answer["http.response.start"], answer["http.response.body"]["body"]
            if self.transport.is_closing():
                return
            status = str(start["status"]).encode()
            self.conn.send_headers(stream_id, [(b":status", status), *start["headers"]])
            self.conn.send_data(stream_id, raw, end_stream=True)
            self.transport.write(self.conn.data_to_send())
        finally:
            self.pending -= 1
            if self.going_away and not self.pending and not self.transport.is_closing():
                self.transport.close()


async def serve_h2c(app: Any, port: int = 0) -> tuple[asyncio.Server, str]:
    """Serve ``app`` over HTTP/2 prior knowledge (h2c) on loopback; returns (server, url)."""
    server = await asyncio.get_running_loop().create_server(lambda: _H2cProtocol(app), "127.0.0.1", port)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


if __name__ == "__main__":
    main()

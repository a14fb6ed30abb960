"""A fake APNs provider API: HTTP/2 over TLS on loopback, checking what Apple checks.

Written from Apple's documentation ("Sending notification requests to APNs", "Establishing a
token-based connection to APNs", "Handling notification responses from APNs"), independently of
Hub's sender. It speaks HTTP/2 only (TLS with ALPN ``h2``; a client that does not offer h2 is
disconnected), with a certificate from a ``trustme`` CA whose PEM is written to
:attr:`FakeApns.ca_file` for the client to trust. For ``POST /3/device/<token>`` it checks, and
answers with Apple's status and ``{"reason"}``:

- the method (405 MethodNotAllowed) and the path (404 BadPath, 400 MissingDeviceToken); a
  header sent twice (400 DuplicateHeaders);
- ``authorization: bearer <JWT>``: missing (403 MissingProviderToken); an ES256 signature by
  the public key registered for the header's ``kid``, ``iss`` the team of that key, an integer
  ``iat`` not in the future (403 InvalidProviderToken) and not older than an hour (403
  ExpiredProviderToken). A verified JWT is remembered by its text, so each is verified once;
- ``apns-topic``: present (400 MissingTopic), a bundle id (400 BadTopic), one of the key's
  team's topics (400 TopicDisallowed);
- the device token: hexadecimal, 64 to 200 digits (400 BadDeviceToken), registered for this
  topic when :meth:`FakeApns.register_device` tied it to one (400 DeviceTokenNotForTopic);
- ``apns-push-type`` one of Apple's types, ``apns-priority`` 10, 5 or 1 (and not 10 for a
  background push), ``apns-expiration`` an integer, ``apns-collapse-id`` at most 64 bytes,
  ``apns-id`` a UUID (400 InvalidPushType, BadPriority, BadExpirationDate, BadCollapseId,
  BadMessageId);
- the body: at most 4096 bytes (413 PayloadTooLarge); a JSON object with an ``aps`` dictionary,
  else 400 PayloadEmpty (Apple names no other reason for an unusable payload).

An accepted notification is recorded in :attr:`FakeApns.notifications` (device token, headers,
JSON body) and answered 200 with its ``apns-id`` header (the request's, or a new UUID).

Script answers with :meth:`FakeApns.fail` (globally or for one device token): any reason of
:data:`REASONS` with its status, e.g. 410 Unregistered (with ``timestamp``), 400
BadDeviceToken, 429 TooManyRequests (with ``Retry-After`` when given), 503 ServiceUnavailable,
500 InternalServerError, 403 ExpiredProviderToken. :meth:`FakeApns.unregister` makes a token
410 Unregistered for good. :meth:`FakeApns.goaway` sends a GOAWAY instead of answering a request
(after a number of requests), :meth:`FakeApns.disconnect` drops the connection without one.

Tests: ``async with running() as fake:``, then ``fake.make_key()`` for an auth key (``.p8``
PEM, key id, team id, topic) the fake trusts. Manual use and benchmarks:
``python -m tests.fakes.apns [--port P]`` prints one JSON line ``{"baseUrl", "caFile", "keyP8",
"keyId", "teamId", "topic"}`` and serves until interrupted (without recording notifications);
``--storm S`` answers every send 429 TooManyRequests for ``S`` seconds from the first one
(``--storm-retry-after`` sets its ``Retry-After``), to time how a sender drains a 429 storm.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import re
import secrets
import ssl
import string
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from tests.fakes.cuts import ConnectionCuts

MAX_PAYLOAD = 4096
MAX_TOKEN_AGE = 3600
CLOCK_SKEW = 60
MAX_COLLAPSE_ID = 64
MAX_CONCURRENT_STREAMS = 1000
PUSH_TYPES = {"alert", "background", "location", "voip", "complication", "fileprovider", "mdm",
              "liveactivity", "pushtotalk", "widgets", "controls"}
TOKEN_FORMAT = re.compile(r"(?:[0-9a-fA-F]{2}){32,100}")
_PATH = re.compile(r"/3/device/(?P<token>[^/?]*)")
_BUNDLE_ID = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ID_ALPHABET = string.ascii_uppercase + string.digits

# Apple's reasons and the HTTP status each comes with.
REASONS: dict[str, int] = {
    "BadCollapseId": 400, "BadDeviceToken": 400, "BadExpirationDate": 400, "BadMessageId": 400,
    "BadPriority": 400, "BadTopic": 400, "DeviceTokenNotForTopic": 400, "DuplicateHeaders": 400,
    "IdleTimeout": 400, "InvalidPushType": 400, "MissingDeviceToken": 400, "MissingTopic": 400,
    "PayloadEmpty": 400, "TopicDisallowed": 400,
    "BadCertificate": 403, "BadCertificateEnvironment": 403, "ExpiredProviderToken": 403, "Forbidden": 403,
    "InvalidProviderToken": 403, "MissingProviderToken": 403,
    "BadPath": 404, "MethodNotAllowed": 405, "ExpiredToken": 410, "Unregistered": 410,
    "PayloadTooLarge": 413, "TooManyProviderTokenUpdates": 429, "TooManyRequests": 429,
    "InternalServerError": 500, "ServiceUnavailable": 503, "Shutdown": 503,
}


def device_token() -> str:
    """A token of the shape APNs gives apps: 32 bytes, hexadecimal."""
    return secrets.token_hex(32)


def _apple_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


@dataclass(frozen=True)
class ApnsKey:
    """What a developer takes from the Apple Developer account: the .p8 key and its ids."""

    key_p8: str
    key_id: str
    team_id: str
    topic: str

    def config(self, environment: str = "sandbox") -> dict[str, str]:
        """The body of ``PUT /v1/{env}/push/providers/apns`` for this key."""
        return {"keyP8": self.key_p8, "keyId": self.key_id, "teamId": self.team_id, "topic": self.topic,
                "environment": environment}


@dataclass
class Received:
    token: str
    headers: dict[str, str]
    payload: dict[str, Any]
    connection: int  # which connection (1, 2...) carried it
    at: float = field(default_factory=time.time)


@dataclass
class _Verified:
    team_id: str
    key_id: str
    issued_at: int


@dataclass
class FakeApns(ConnectionCuts):
    url: str = ""  # https://127.0.0.1:PORT, set when served
    ca_file: str = ""  # the PEM of the CA that signed the server's certificate
    keys: dict[str, tuple[ECKey, str]] = field(default_factory=dict)  # key id -> (public key, team)
    topics: dict[str, set[str]] = field(default_factory=dict)  # team id -> bundle ids it may push to
    device_topics: dict[str, str] = field(default_factory=dict)  # token -> its app's topic
    notifications: list[Received] = field(default_factory=list)
    requests: int = 0  # requests received (refused by GOAWAY or a drop included)
    accepted: int = 0
    answered: list[str] = field(default_factory=list)  # "200", the reason, "GOAWAY" or "dropped"
    provider_tokens: list[str] = field(default_factory=list)  # distinct JWTs seen, in order
    connections: int = 0  # HTTP/2 connections opened
    refused_connections: int = 0  # TLS connections that did not negotiate h2
    script: list[tuple[str, float | None]] = field(default_factory=list)
    token_scripts: dict[str, list[tuple[str, float | None]]] = field(default_factory=dict)
    unregistered: dict[str, int] = field(default_factory=dict)  # token -> since (ms)
    delay: float = 0.0  # seconds before answering, to observe concurrency
    in_flight: int = 0
    max_in_flight: int = 0
    record: bool = True  # the benchmark turns recording off
    storm_seconds: float = 0.0  # answer 429 TooManyRequests this long from the first send
    storm_retry_after: float | None = None
    storm_started: float | None = None
    _verified: dict[str, _Verified | str] = field(default_factory=dict)  # JWT -> claims, or the refusal
    _cuts: list[tuple[int, str]] = field(default_factory=list)  # (requests to answer first, "goaway"|"drop")
    _live: set[Any] = field(default_factory=set)

    # --- set-up and scripting ---------------------------------------------------------------

    def make_key(self, topic: str = "com.example.bank", *, team_id: str | None = None,
                 key_id: str | None = None) -> ApnsKey:
        """A new auth key of ``team_id`` (a new team by default) that may push to ``topic``."""
        private = ec.generate_private_key(ec.SECP256R1())
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        team = team_id or _apple_id()
        kid = key_id or _apple_id()
        self.keys[kid] = (ECKey.import_key(public), team)
        self.topics.setdefault(team, set()).add(topic)
        return ApnsKey(pem, kid, team, topic)

    def revoke(self, key_id: str) -> None:
        """The key was revoked in the developer account: its tokens are InvalidProviderToken."""
        self.keys.pop(key_id, None)
        self._verified.clear()

    def register_device(self, token: str, topic: str) -> None:
        """``token`` belongs to the app ``topic``: another topic gets DeviceTokenNotForTopic."""
        self.device_topics[token] = topic

    def fail(self, reason: str, *, token: str | None = None, times: int = 1,
             retry_after: float | None = None) -> None:
        """Answer the next ``times`` valid requests (to ``token`` only, when given) with ``reason``."""
        if reason not in REASONS:
            raise ValueError(f"unknown APNs reason {reason}; one of {', '.join(REASONS)}")
        queue = self.script if token is None else self.token_scripts.setdefault(token, [])
        queue.extend([(reason, retry_after)] * times)

    def unregister(self, token: str, since: float | None = None) -> None:
        """``token`` is answered 410 Unregistered from now on (the app was uninstalled)."""
        self.unregistered[token] = int((time.time() if since is None else since) * 1000)


    # --- checks -----------------------------------------------------------------------------

    def _provider_token(self, authorization: str | None) -> _Verified | str:
        """The verified claims of the bearer JWT, or the reason it is refused."""
        if not authorization:
            return "MissingProviderToken"
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "MissingProviderToken"
        verified = self._verified.get(token)
        if verified is None:
            verified = self._verified[token] = self._verify(token)
            if isinstance(verified, _Verified):
                self.provider_tokens.append(token)
        if isinstance(verified, str):
            return verified
        now = time.time()
        if verified.issued_at > now + CLOCK_SKEW:
            return "InvalidProviderToken"
        if now - verified.issued_at > MAX_TOKEN_AGE:
            return "ExpiredProviderToken"
        return verified

    def _verify(self, token: str) -> _Verified | str:
        try:
            header = json.loads(_b64(token.split(".")[0]))
        except (ValueError, TypeError):
            return "InvalidProviderToken"
        kid = header.get("kid") if isinstance(header, dict) else None
        found = self.keys.get(kid) if isinstance(kid, str) else None
        if found is None or header.get("alg") != "ES256":
            return "InvalidProviderToken"
        key, team = found
        try:
            claims = jwt.decode(token, key, algorithms=["ES256"]).claims
        except (JoseError, ValueError):
            return "InvalidProviderToken"
        iat = claims.get("iat")
        if claims.get("iss") != team or not isinstance(iat, int) or isinstance(iat, bool):
            return "InvalidProviderToken"
        return _Verified(team, str(kid), iat)

    def answer(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes,
               connection: int) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        """(status, response headers, JSON body or None) for one request."""
        named = dict(headers)
        if len(named) != len(headers):
            return _refuse("DuplicateHeaders")
        if method != "POST":
            return _refuse("MethodNotAllowed")
        match = _PATH.fullmatch(path)
        if match is None:
            return _refuse("BadPath")
        token = match["token"]
        if not token:
            return _refuse("MissingDeviceToken")
        verified = self._provider_token(named.get("authorization"))
        if isinstance(verified, str):
            return _refuse(verified)
        topic = named.get("apns-topic")
        if not topic:
            return _refuse("MissingTopic")
        if not _BUNDLE_ID.fullmatch(topic):
            return _refuse("BadTopic")
        if topic not in self.topics.get(verified.team_id, ()):
            return _refuse("TopicDisallowed")
        if not TOKEN_FORMAT.fullmatch(token):
            return _refuse("BadDeviceToken")
        if self.device_topics.get(token, topic) != topic:
            return _refuse("DeviceTokenNotForTopic")
        reason = _check_headers(named)
        if reason is not None:
            return _refuse(reason)
        if len(body) > MAX_PAYLOAD:
            return _refuse("PayloadTooLarge")
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
            return _refuse("PayloadEmpty")
        if token in self.unregistered:
            return _refuse("Unregistered", timestamp=self.unregistered[token])
        queue = self.token_scripts.get(token)
        scripted = queue.pop(0) if queue else (self.script.pop(0) if self.script else None)
        if scripted is None and self.storm_seconds:
            if self.storm_started is None:
                self.storm_started = time.monotonic()
            if time.monotonic() - self.storm_started < self.storm_seconds:
                scripted = ("TooManyRequests", self.storm_retry_after)
        if scripted is not None:
            reason, wait = scripted
            status, extra, answer = _refuse(reason, timestamp=int(time.time() * 1000)
                                            if REASONS[reason] == 410 else None)
            if wait is not None:
                extra["retry-after"] = f"{wait:g}"
            return status, extra, answer
        self.accepted += 1
        if self.record:
            self.notifications.append(Received(token, named, payload, connection))
        return 200, {"apns-id": named.get("apns-id") or str(uuid.uuid4())}, None


def _check_headers(named: dict[str, str]) -> str | None:
    push_type = named.get("apns-push-type")
    if push_type is not None and push_type not in PUSH_TYPES:
        return "InvalidPushType"
    priority = named.get("apns-priority")
    if priority is not None and (priority not in ("10", "5", "1") or (
            priority == "10" and push_type == "background")):
        return "BadPriority"
    expiration = named.get("apns-expiration")
    if expiration is not None and not expiration.isdigit():
        return "BadExpirationDate"
    collapse = named.get("apns-collapse-id")
    if collapse is not None and len(collapse.encode()) > MAX_COLLAPSE_ID:
        return "BadCollapseId"
    message_id = named.get("apns-id")
    if message_id is not None and not _UUID.fullmatch(message_id):
        return "BadMessageId"
    return None


def _refuse(reason: str, timestamp: int | None = None) -> tuple[int, dict[str, str], dict[str, Any]]:
    body: dict[str, Any] = {"reason": reason}
    if timestamp is not None:
        body["timestamp"] = timestamp
    return REASONS[reason], {}, body


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class _Connection(asyncio.Protocol):
    """One client connection: HTTP/2 (the ``h2`` state machine) over the TLS transport."""

    def __init__(self, fake: FakeApns) -> None:
        import h2.config
        import h2.connection

        self.fake = fake
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None))
        self.streams: dict[int, tuple[list[tuple[bytes, bytes]], list[bytes]]] = {}
        self.pending = 0  # streams being answered after a delay
        self.going_away = False
        self.transport: Any = None
        self.number = 0

    def connection_made(self, transport: Any) -> None:
        import h2.settings

        self.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
            self.fake.refused_connections += 1  # APNs speaks HTTP/2 only
            transport.close()
            return
        self.fake.connections += 1
        self.number = self.fake.connections
        self.fake._live.add(transport)
        # Announced in the first SETTINGS frame, so in force before any stream is opened.
        self.conn.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS})
        self.conn.initiate_connection()
        transport.write(self.conn.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        self.fake._live.discard(self.transport)

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
                self.streams[event.stream_id] = (event.headers, [])
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
            elif isinstance(event, h2.events.StreamReset):
                self.streams.pop(event.stream_id, None)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.transport.close()
                return
        if not self.transport.is_closing():
            self.transport.write(self.conn.data_to_send())

    def _dispatch(self, stream_id: int) -> None:
        request = self.streams.pop(stream_id, None)
        if request is None or self.transport.is_closing():
            return
        fake = self.fake
        fake.requests += 1
        if self.going_away:
            return  # above the GOAWAY's last stream: never processed
        cut = fake._cut()
        if cut == "drop":
            fake.answered.append("dropped")
            self.transport.abort()
            return
        if cut == "goaway":
            fake.answered.append("GOAWAY")
            self.going_away = True
            self.conn.close_connection(error_code=0, additional_data=b'{"reason":"Shutdown"}',
                                       last_stream_id=max(0, stream_id - 2))
            self.transport.write(self.conn.data_to_send())
            if not self.pending:
                self.transport.close()
            return
        headers, chunks = request
        pseudo: dict[bytes, bytes] = {}
        regular: list[tuple[str, str]] = []
        for name, value in headers:
            if name[:1] == b":":
                pseudo[name] = value
            else:
                regular.append((name.decode(), value.decode()))
        method = pseudo.get(b":method", b"").decode()
        path = pseudo.get(b":path", b"/").decode()
        body = b"".join(chunks)
        if fake.delay:
            self.pending += 1
            asyncio.get_running_loop().create_task(self._later(stream_id, method, path, regular, body))
            return
        self._respond(stream_id, *fake.answer(method, path, regular, body, self.number))

    async def _later(self, stream_id: int, method: str, path: str, headers: list[tuple[str, str]],
                     body: bytes) -> None:
        fake = self.fake
        fake.in_flight += 1
        fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
        try:
            await asyncio.sleep(fake.delay)
            answer = fake.answer(method, path, headers, body, self.number)
        finally:
            fake.in_flight -= 1
            self.pending -= 1
        self._respond(stream_id, *answer)
        if self.going_away and not self.pending:
            self.transport.close()

    def _respond(self, stream_id: int, status: int, headers: dict[str, str],
                 body: dict[str, Any] | None) -> None:
        self.fake.answered.append("200" if body is None else str(body["reason"]))
        if self.transport.is_closing():
            return
        raw = json.dumps(body).encode() if body is not None else b""
        sent = [(b":status", str(status).encode())]
        sent.extend((k.encode(), v.encode()) for k, v in headers.items())
        if raw:
            sent.append((b"content-type", b"application/json"))
        self.conn.send_headers(stream_id, sent, end_stream=not raw)
        if raw:
            self.conn.send_data(stream_id, raw, end_stream=True)
        self.transport.write(self.conn.data_to_send())


def _server_context(directory: Path) -> tuple[ssl.SSLContext, str]:
    """A TLS context for 127.0.0.1 and localhost offering only h2, and the path of its CA's PEM."""
    import trustme

    ca = trustme.CA(organization_name="Hub fake APNs")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    context.set_alpn_protocols(["h2"])
    ca_file = directory / "fake-apns-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, str(ca_file)


@contextlib.asynccontextmanager
async def running(port: int = 0) -> AsyncIterator[FakeApns]:
    """Serve the fake on 127.0.0.1 (a random port by default) in this event loop."""
    fake = FakeApns()
    with tempfile.TemporaryDirectory(prefix="hub-fake-apns-") as directory:
        context, fake.ca_file = _server_context(Path(directory))
        server = await asyncio.get_running_loop().create_server(
            lambda: _Connection(fake), "127.0.0.1", port, ssl=context)
        fake.url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            yield fake
        finally:
            server.close()
            for transport in list(fake._live):
                transport.abort()
            await server.wait_closed()


async def _main(args: argparse.Namespace) -> None:
    async with running(args.port) as fake:
        fake.record = False  # a benchmark sends too many to keep
        fake.storm_seconds, fake.storm_retry_after = args.storm, args.storm_retry_after
        key = fake.make_key(args.topic)
        print(json.dumps({"baseUrl": fake.url, "caFile": fake.ca_file, "keyP8": key.key_p8,
                          "keyId": key.key_id, "teamId": key.team_id, "topic": key.topic}), flush=True)
        print(f"\nFake APNs at {fake.url}. Save keyP8 above to a file (AuthKey.p8), then:\n"
              f"  export HUB_PUSH_APNS_BASE_URL={fake.url} HUB_PUSH_APNS_CA_FILE={fake.ca_file}\n"
              f"  hub push-apns set --env demo --key-file AuthKey.p8 --key-id {key.key_id} "
              f"--team-id {key.team_id} --topic {key.topic} --environment sandbox\n"
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
            if args.verbose and fake.requests != last:
                last = fake.requests
                print(f"{fake.accepted} notifications accepted, {fake.requests} requests",
                      file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.apns", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--topic", default="com.example.hub.demo", help="the bundle id the key may push to")
    parser.add_argument("--verbose", action="store_true", help="print the counts every 5 s on stderr")
    parser.add_argument("--storm", type=float, default=0.0, metavar="SECONDS",
                        help="answer every send 429 TooManyRequests for SECONDS from the first one")
    parser.add_argument("--storm-retry-after", type=float, default=None, metavar="SECONDS",
                        help="the Retry-After of the storm's answers (default: none)")
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()

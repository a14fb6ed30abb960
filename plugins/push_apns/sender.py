"""``hub_send_push`` for APNs: build the payload and headers, check the size, send, map the answer.

Per process and Hub, a :class:`Runtime` holds, for each APNs host, a few httpcore pools of one
HTTP/2 connection each (``HUB_PUSH_APNS_CONNECTIONS``, taken in turn; each connection multiplexes
many sends, and more than one spreads the TLS and framing work and survives a GOAWAY on one of
them), used without httpx's client layers and request and response models, which cost a sixth
of the CPU of a send; the provider-token
cache; a semaphore per topic (``HUB_PUSH_APNS_CONCURRENCY_PER_TOPIC``) and a short-lived cache
of each environment's configuration. It is made on first use and closed with the Hub
(``Hub.on_close``).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import ssl
import time
import uuid
import weakref
from typing import TYPE_CHECKING, Any

import httpcore
import httpx
import msgspec
from prometheus_client import Counter

from hub.logging import get_logger
from hub.netbackend import AsyncioBackend
from hub_plugins.push_apns import config as configs
from hub_plugins.push_apns.config import ApnsConfig
from hub_plugins.push_apns.errors import classify, parse_failure, result
from hub_plugins.push_apns.settings import PushApnsSettings
from hub_plugins.push_apns.tokens import TokenCache

if TYPE_CHECKING:
    from hub.app import Hub

log = get_logger(__name__)

MAX_PAYLOAD_BYTES = 4096
MAX_COLLAPSE_ID_BYTES = 64
# apns-id is derived from the notification and the device, so a resend is the same notification.
APNS_ID_NAMESPACE = uuid.UUID("5b0c8f8e-1f4e-5d8c-9a43-6a1f0c2d7e31")
_HEX_TOKEN = re.compile(r"[0-9A-Fa-f]{16,400}")
# A connection lost under a send: the request may not have reached APNs; one resend, on a new
# connection, before the core is asked to retry later.
_CONNECTION_LOST = (httpcore.RemoteProtocolError, httpcore.ReadError, httpcore.WriteError,
                    httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
# APNs cannot be reached, or a timeout: the core retries later.
_UNREACHABLE = (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError,
                httpcore.UnsupportedProtocol, httpx.HTTPError)
_encode = msgspec.json.Encoder().encode


def apns_id(notification: dict[str, Any], device: dict[str, Any]) -> str:
    """The ``apns-id`` of ``notification`` to ``device``: the same for every attempt."""
    name = f"{notification.get('notificationId', '')}\n{device.get('deviceId', '')}"
    return str(uuid.uuid5(APNS_ID_NAMESPACE, name))


def build_payload(notification: dict[str, Any]) -> dict[str, Any]:
    """The JSON body: ``aps`` (alert title and body, the default sound), then the data keys at
    the top level (a data key named ``aps`` is left out: the alert is ``aps``)."""
    payload: dict[str, Any] = {"aps": {
        "alert": {"title": str(notification.get("title") or ""), "body": str(notification.get("body") or "")},
        "sound": "default"}}
    data = notification.get("data")
    if isinstance(data, dict):
        payload.update((str(k), v) for k, v in data.items() if k != "aps")
    return payload


def build_headers(notification: dict[str, Any], device: dict[str, Any], cfg: ApnsConfig) -> dict[str, str]:
    """The ``apns-*`` headers of one send (the authorization is added by the sender)."""
    headers = {"apns-topic": str(device.get("apnsTopic") or cfg.topic), "apns-push-type": "alert",
               "apns-priority": "10" if notification.get("priority") == "high" else "5",
               "apns-id": apns_id(notification, device)}
    ttl = notification.get("ttlSeconds")
    if ttl is not None:
        ttl = max(0, int(ttl))
        headers["apns-expiration"] = str(int(time.time()) + ttl if ttl else 0)
    collapse = notification.get("collapseKey")
    if collapse:
        headers["apns-collapse-id"] = str(collapse).encode()[:MAX_COLLAPSE_ID_BYTES].decode(errors="ignore")
    return headers


class Runtime:
    """What one process keeps for one Hub: HTTP/2 connections, provider tokens, semaphores, configs."""

    def __init__(self, hub: Hub) -> None:
        settings: PushApnsSettings = hub.plugin_settings["push_apns"]
        self.settings = settings
        timeout = httpx.Timeout(settings.timeout_seconds, connect=settings.connect_timeout_seconds)
        self.timeout = timeout.as_dict()
        self.ssl_context = httpx.create_ssl_context()  # the CAs httpx trusts (certifi's)
        self.setup_error = ""
        if settings.ca_file:
            try:
                self.ssl_context.load_verify_locations(cafile=settings.ca_file)
            except (OSError, ssl.SSLError) as exc:
                self.setup_error = f"HUB_PUSH_APNS_CA_FILE {settings.ca_file} cannot be used: {exc}"
                log.error("push_apns_ca_file_unusable", path=settings.ca_file, error=str(exc))
        self._transports: dict[str, tuple[list[httpcore.AsyncConnectionPool], itertools.cycle[int]]] = {}
        self._origins: dict[str, tuple[bytes, bytes, int | None, bytes]] = {}
        self.closed = False
        self.token_mints = Counter(
            "hub_push_apns_token_mints", "APNs provider tokens signed, by reason (new, age, refused)",
            ["reason"], registry=hub.metrics.registry)
        self.tokens = TokenCache(refresh_seconds=settings.token_refresh,
                                 on_mint=lambda reason: self.token_mints.labels(reason).inc())
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._configs: dict[str, tuple[float, ApnsConfig | None]] = {}
        self._config_locks: dict[str, asyncio.Lock] = {}

    def transport(self, base_url: str) -> httpcore.AsyncConnectionPool:
        """The next of ``base_url``'s pools, each one HTTP/2 connection (HTTP/1.1 is never used)."""
        found = self._transports.get(base_url)
        if found is None:
            count = max(1, self.settings.connections)
            found = self._transports[base_url] = ([
                httpcore.AsyncConnectionPool(ssl_context=self.ssl_context, http2=True, http1=False,
                                             max_connections=1, max_keepalive_connections=1,
                                             network_backend=AsyncioBackend())
                for _ in range(count)], itertools.cycle(range(count)))
        transports, turn = found
        return transports[next(turn)]

    def semaphore(self, topic: str) -> asyncio.Semaphore:
        semaphore = self._semaphores.get(topic)
        if semaphore is None:
            limit = max(1, self.settings.concurrency_per_topic)
            semaphore = self._semaphores[topic] = asyncio.Semaphore(limit)
        return semaphore

    async def config(self, hub: Hub, env: str) -> ApnsConfig | None:
        """``env``'s configuration, read at most every ``HUB_PUSH_APNS_CONFIG_CACHE_SECONDS``."""
        cached = self._configs.get(env)
        if cached is not None and time.monotonic() < cached[0]:
            return cached[1]
        async with self._config_locks.setdefault(env, asyncio.Lock()):
            cached = self._configs.get(env)
            if cached is not None and time.monotonic() < cached[0]:
                return cached[1]
            loaded = await configs.load(hub, env)
            self._configs[env] = (time.monotonic() + self.settings.config_cache_seconds, loaded)
            return loaded

    def forget_config(self, env: str) -> None:
        self._configs.pop(env, None)

    async def post(self, transport: httpcore.AsyncConnectionPool, url: str, body: bytes,
                   headers: dict[str, str], provider_token: str) -> httpcore.Response:
        """POST through ``transport``; the answer is read whole. Raises :data:`_UNREACHABLE`."""
        base, _, path = url.partition("/3/")
        origin = self._origins.get(base)
        if origin is None:  # parsed once per APNs host, not per send
            parsed = httpx.URL(base)
            origin = self._origins[base] = (parsed.raw_scheme, parsed.raw_host, parsed.port, parsed.netloc)
        scheme, host, port, authority = origin
        target = httpcore.URL(scheme=scheme, host=host, port=port, target=b"/3/" + path.encode())
        sent = [(b"host", authority), (b"authorization", f"bearer {provider_token}".encode())]
        sent.extend((name.encode(), value.encode()) for name, value in headers.items())  # UTF-8 values
        return await transport.request("POST", target, content=body, headers=sent,
                                       extensions={"timeout": self.timeout})

    async def close(self) -> None:
        self.closed = True
        for transports, _ in self._transports.values():
            for transport in transports:
                await transport.aclose()
        self._transports.clear()


_runtimes: weakref.WeakKeyDictionary[Any, Runtime] = weakref.WeakKeyDictionary()


def runtime(hub: Hub) -> Runtime:
    """The :class:`Runtime` of ``hub`` in this process, made on first use, closed with the Hub."""
    found = _runtimes.get(hub)
    if found is None:
        found = _runtimes[hub] = Runtime(hub)

        async def close() -> None:
            _runtimes.pop(hub, None)
            await found.close()

        hub.on_close(close)
    return found


def forget_config(hub: Hub, env: str) -> None:
    """After a change through the API or CLI: this process reads the new configuration now."""
    found = _runtimes.get(hub)
    if found is not None:
        found.forget_config(env)


async def send(hub: Hub, notification: dict[str, Any], device: dict[str, Any]) -> dict[str, Any] | None:
    """The ``hub_send_push`` implementation: None when the device is not APNs' here."""
    if device.get("platform") != "ios" or hub is None:
        return None
    env = str(notification.get("environmentId") or "")
    state = runtime(hub)
    try:
        cfg = await state.config(hub, env)
    except ValueError as exc:
        log.warning("push_apns_config_unreadable", environment=env, error=str(exc))
        return result("failed", f"the APNs configuration of {env} cannot be read ({exc}); save it again")
    if cfg is None:
        return None
    if state.setup_error:  # retried: the sends go out once the setting is fixed and Hub restarted
        return result("retry", state.setup_error)
    token = device.get("token")
    if not isinstance(token, str) or not token:
        return result("invalid_device", "the device has no push token")
    if not _HEX_TOKEN.fullmatch(token):
        return result("invalid_device", "the device token is not an APNs token (hexadecimal digits)")
    body = _encode(build_payload(notification))
    if len(body) > MAX_PAYLOAD_BYTES:
        return result("failed", f"payload is {len(body)} bytes, APNs allows {MAX_PAYLOAD_BYTES}")
    headers = build_headers(notification, device, cfg)
    url = f"{state.settings.url_for(cfg.environment)}/3/device/{token}"
    async with state.semaphore(headers["apns-topic"]):
        outcome = await _post(state, cfg, url, body, headers)
    if outcome["status"] == "failed":
        log.warning("push_apns_failed", environment=env, topic=headers["apns-topic"],
                    device=device.get("deviceId"), detail=outcome["detail"])
    return outcome


async def _post(state: Runtime, cfg: ApnsConfig, url: str, body: bytes,
                headers: dict[str, str]) -> dict[str, Any]:
    """POST to APNs. A provider token APNs refuses is replaced once; a connection lost under the
    send (GOAWAY, reset) gets one resend on the same slot's new connection."""
    try:
        provider_token = state.tokens.get(cfg)
    except ValueError as exc:
        return result("failed", f"the APNs key cannot be used to sign ({exc}); save the configuration again")
    transport = state.transport(state.settings.url_for(cfg.environment))
    reminted = reconnected = False
    while True:
        try:
            answer = await state.post(transport, url, body, headers, provider_token)
        except _CONNECTION_LOST as exc:
            if not reconnected:
                reconnected = True
                continue
            return result("retry", f"APNs closed the connection under the send twice ({type(exc).__name__})")
        except _UNREACHABLE as exc:
            return result("retry", f"APNs unreachable: {type(exc).__name__}")
        if answer.status == 200:
            given = next((v for k, v in answer.headers if k.lower() == b"apns-id"), b"")
            return result("sent", "APNs accepted the notification",
                          message_id=given.decode("ascii", "replace") or headers["apns-id"])
        response = httpx.Response(answer.status, headers=answer.headers, content=answer.content)
        failure = parse_failure(response)
        if failure.needs_new_provider_token:
            if not reminted:
                reminted = True
                provider_token = state.tokens.replace(cfg, provider_token)
                continue
            return result("failed", f"{failure.describe()}, again with a new provider token: check the "
                                    "configuration's keyId, teamId and key, and this machine's clock")
        return classify(response, failure, state.settings.throttle_retry_seconds)

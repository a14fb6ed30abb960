"""``hub_send_push`` for FCM: build the HTTP v1 message, check its size, send it, map the answer.

Per process and Hub, a :class:`Runtime` holds one httpcore connection pool for FCM (HTTP/2, so
one connection carries many concurrent sends; httpx's own layers above it, the client's
redirect, auth and cookie handling and its request and response models, cost almost half the
CPU of a send and serve no purpose here), an ``httpx.AsyncClient`` for token endpoints, the
access-token cache, a semaphore per Firebase project (``HUB_PUSH_FCM_CONCURRENCY_PER_PROJECT``)
and a short-lived cache of each environment's configuration. It is made on first use and closed
with the Hub (``Hub.on_close``).
"""

from __future__ import annotations

import asyncio
import re
import time
import weakref
from typing import TYPE_CHECKING, Any

import httpcore
import httpx
import msgspec
from prometheus_client import Counter

from hub.logging import get_logger
from hub.netbackend import AsyncioBackend
from hub_plugins.push_fcm import config as configs
from hub_plugins.push_fcm.config import PLATFORMS, FcmConfig
from hub_plugins.push_fcm.errors import classify, parse_failure, result
from hub_plugins.push_fcm.oauth import TokenCache, TokenError
from hub_plugins.push_fcm.settings import PushFcmSettings

if TYPE_CHECKING:
    from hub.app import Hub

log = get_logger(__name__)

MAX_PAYLOAD_BYTES = 4096
MAX_TTL_SECONDS = 2_419_200  # FCM keeps a message four weeks at most
_LABEL = re.compile(r"[^A-Za-z0-9._~%-]")
_encode = msgspec.json.Encoder().encode
TRANSPORT_ERRORS = (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError,
                    httpcore.UnsupportedProtocol, httpx.HTTPError)
"""What a send can raise when FCM cannot be reached or the connection breaks: retried."""
CONNECTION_LOST = (httpcore.RemoteProtocolError, httpcore.ReadError, httpcore.WriteError,
                   httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
"""The connection closed under the send (a GOAWAY, a reset): resent once on a new connection."""


def analytics_label(notification_id: str) -> str:
    """FCM's ``fcm_options.analytics_label`` allows ``[a-zA-Z0-9-_.~%]{1,50}``."""
    return _LABEL.sub("_", notification_id)[:50] or "hub"


def _strings(data: Any) -> dict[str, str]:
    if not isinstance(data, dict):
        return {}
    return {str(k): v if isinstance(v, str) else _encode(v).decode() for k, v in data.items()}


def build_message(notification: dict[str, Any], device: dict[str, Any]) -> dict[str, Any]:
    """The ``message`` of ``messages:send`` for one device, with only its platform's block."""
    high = notification.get("priority") == "high"
    ttl = notification.get("ttlSeconds")
    ttl = None if ttl is None else max(0, min(int(ttl), MAX_TTL_SECONDS))
    collapse = notification.get("collapseKey")
    message: dict[str, Any] = {
        "token": device["token"],
        "notification": {"title": str(notification.get("title") or ""),
                         "body": str(notification.get("body") or "")},
    }
    data = _strings(notification.get("data"))
    if data:
        message["data"] = data
    platform = device.get("platform")
    if platform == "android":
        android: dict[str, Any] = {"priority": "HIGH" if high else "NORMAL"}
        if ttl is not None:
            android["ttl"] = f"{ttl}s"
        if collapse:
            android["collapse_key"] = str(collapse)
        message["android"] = android
    elif platform == "web":
        headers = {"Urgency": "high" if high else "normal"}
        if ttl is not None:
            headers["TTL"] = str(ttl)
        if collapse:
            headers["Topic"] = re.sub(r"[^A-Za-z0-9_-]", "_", str(collapse))[:32]
        message["webpush"] = {"headers": headers}
    elif platform == "ios":
        apns_headers = {"apns-priority": "10" if high else "5"}
        if ttl is not None:
            apns_headers["apns-expiration"] = str(int(time.time()) + ttl if ttl else 0)
        if collapse:
            apns_headers["apns-collapse-id"] = str(collapse)[:64]
        message["apns"] = {"headers": apns_headers}
    message["fcm_options"] = {"analytics_label": analytics_label(str(notification.get("notificationId", "")))}
    return message


def payload_size(message: dict[str, Any]) -> int:
    """Bytes of the message as FCM counts them against its 4096-byte limit: the whole message
    (compact JSON, UTF-8) except the target token."""
    return len(_encode({k: v for k, v in message.items() if k != "token"}))


class Runtime:
    """What one process keeps for one Hub: the HTTP client, tokens, semaphores, configs."""

    def __init__(self, hub: Hub) -> None:
        settings: PushFcmSettings = hub.plugin_settings["push_fcm"]
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        limit = max(1, settings.concurrency_per_project)
        timeout = httpx.Timeout(settings.timeout_seconds, connect=settings.connect_timeout_seconds)
        self.timeout = timeout.as_dict()
        # HTTP/2 multiplexes the sends on a connection or two; over HTTP/1.1 (a proxy) each
        # concurrent send needs a connection of its own.
        self.pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(), http2=True, http1=not settings.http2_prior_knowledge,
            max_connections=limit, max_keepalive_connections=limit, network_backend=AsyncioBackend())
        self.token_client = httpx.AsyncClient(http2=True, timeout=timeout)
        self._urls: dict[str, tuple[httpcore.URL, bytes]] = {}
        self.closed = False
        self.token_refreshes = Counter(
            "hub_push_fcm_token_refreshes", "FCM access-token exchanges, by outcome", ["outcome"],
            registry=hub.metrics.registry)
        self.tokens = TokenCache(self.token_client, margin=settings.token_refresh_margin_seconds,
                                 lifetime=settings.token_lifetime_seconds,
                                 on_refresh=lambda outcome: self.token_refreshes.labels(outcome).inc())
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._configs: dict[str, tuple[float, FcmConfig | None]] = {}
        self._config_locks: dict[str, asyncio.Lock] = {}

    def semaphore(self, project_id: str) -> asyncio.Semaphore:
        semaphore = self._semaphores.get(project_id)
        if semaphore is None:
            semaphore = self._semaphores[project_id] = asyncio.Semaphore(
                max(1, self.settings.concurrency_per_project))
        return semaphore

    async def config(self, hub: Hub, env: str) -> FcmConfig | None:
        """``env``'s configuration, read at most every ``HUB_PUSH_FCM_CONFIG_CACHE_SECONDS``."""
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

    def send_url(self, project_id: str) -> tuple[httpcore.URL, bytes]:
        """The ``messages:send`` URL of a project, and its ``Host`` header."""
        found = self._urls.get(project_id)
        if found is None:
            parsed = httpx.URL(f"{self.base_url}/v1/projects/{project_id}/messages:send")
            found = self._urls[project_id] = (httpcore.URL(str(parsed)), parsed.netloc)
        return found

    async def post(self, url: tuple[httpcore.URL, bytes], body: bytes,
                   access_token: str) -> httpcore.Response:
        """POST through the pool; the answer is read whole. Raises :data:`TRANSPORT_ERRORS`."""
        return await self.pool.request("POST", url[0], content=body, extensions={"timeout": self.timeout},
                                       headers=[(b"Host", url[1]),
                                                (b"Authorization", f"Bearer {access_token}".encode()),
                                                (b"Content-Type", b"application/json; charset=UTF-8")])

    async def close(self) -> None:
        self.closed = True
        await self.pool.aclose()
        await self.token_client.aclose()


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
    """The ``hub_send_push`` implementation: None when the device is not FCM's here."""
    platform = device.get("platform")
    if platform not in PLATFORMS or hub is None:
        return None
    env = str(notification.get("environmentId") or "")
    state = runtime(hub)
    try:
        cfg = await state.config(hub, env)
    except ValueError as exc:
        log.warning("push_fcm_config_unreadable", environment=env, error=str(exc))
        return result("failed", f"the FCM configuration of {env} cannot be read ({exc}); save it again")
    if cfg is None or platform not in cfg.platforms:
        return None
    token = device.get("token")
    if not isinstance(token, str) or not token:
        return result("invalid_device", "the device has no push token")
    message = build_message(notification, device)
    size = payload_size(message)
    if size > MAX_PAYLOAD_BYTES:
        return result("failed", f"payload is {size} bytes, FCM allows {MAX_PAYLOAD_BYTES}")
    body = _encode({"message": message})
    async with state.semaphore(cfg.project_id):
        outcome = await _post(state, cfg, body)
    if outcome["status"] == "failed":
        log.warning("push_fcm_failed", environment=env, project=cfg.project_id,
                    device=device.get("deviceId"), detail=outcome["detail"])
    return outcome


async def _post(state: Runtime, cfg: FcmConfig, body: bytes) -> dict[str, Any]:
    """POST ``messages:send``; a 401 gets one new access token and one more try, a connection
    lost under the send (GOAWAY, reset) one resend on a new connection."""
    url = state.send_url(cfg.project_id)
    refreshed = reconnected = False
    while True:
        try:
            access_token = await state.tokens.get(cfg)
        except TokenError as exc:
            return result("failed" if exc.permanent else "retry", f"FCM access token: {exc.detail}",
                          retry_after=exc.retry_after)
        try:
            answer = await state.post(url, body, access_token)
        except CONNECTION_LOST as exc:
            if not reconnected:
                reconnected = True
                continue
            return result("retry", f"FCM closed the connection under the send twice ({type(exc).__name__})")
        except TRANSPORT_ERRORS as exc:
            return result("retry", f"FCM unreachable: {type(exc).__name__}")
        if answer.status == 200:
            try:
                name = msgspec.json.decode(answer.content).get("name")
            except (msgspec.DecodeError, AttributeError):
                name = None
            return result("sent", "FCM accepted the message",
                          message_id=name if isinstance(name, str) else None)
        response = httpx.Response(answer.status, headers=answer.headers, content=answer.content)
        failure = parse_failure(response)
        if failure.needs_new_access_token:
            state.tokens.invalidate(cfg, access_token)
            if not refreshed:
                refreshed = True
                continue
            return result("failed", f"FCM answered 401 {failure.code} again with a new access token: "
                                    "check the service account's Firebase Cloud Messaging permission")
        return classify(response, failure, state.settings.quota_retry_seconds)

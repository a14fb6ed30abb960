"""The Hub object (settings + plugins + database + queue) and the Litestar app factory."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeAlias

import pluggy
from arq import ArqRedis
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

import hub as hub_package
from hub import queue
from hub.db import Database
from hub.embedded_redis import EmbeddedRedis, ensure_redis_url
from hub.logging import configure_logging, get_logger
from hub.metrics import Metrics
from hub.plugins import make_plugin_manager
from hub.registry import collect, load_plugin_settings
from hub.settings import Settings, load_settings

log = get_logger(__name__)


def resolve_secret_key(settings: Settings) -> str:
    """``HUB_SECRET_KEY``, or a key generated once into ``<var_dir>/secret_key`` for development."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.var_dir) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(key)
    log.warning("generated_secret_key", path=str(path),
                hint="set HUB_SECRET_KEY in production so every process signs with the same key")
    return key


class Hub:
    """Everything a Hub process shares: settings, plugins, database, queue.

    Built the same way by ``hub serve`` (inside :func:`create_app`), ``hub worker`` and tests.
    """

    def __init__(self, settings: Settings | None = None, *, plugins: Iterable[Any] = (),
                 pm: pluggy.PluginManager | None = None) -> None:
        self.settings = settings or load_settings()
        self.pm = pm or make_plugin_manager(self.settings, plugins)
        self.registry = collect(self.pm)
        self.plugin_settings = load_plugin_settings(self.registry)
        self.db = Database(self.settings)
        self.secret_key = resolve_secret_key(self.settings)
        self.metrics = Metrics()
        self.redis_url = self.settings.redis_url
        self._redis: ArqRedis | None = None
        self._embedded: EmbeddedRedis | None = None
        self._on_close: list[Callable[[], Awaitable[None]]] = []
        from hub.api.auth import TokenService

        self.tokens = TokenService(self.secret_key, self.settings.token_ttl_seconds)

    @property
    def redis(self) -> ArqRedis:
        if self._redis is None:
            raise RuntimeError("Hub.start() has not been awaited")
        return self._redis

    async def start(self) -> None:
        if self._redis is not None:
            return
        self.redis_url, self._embedded = ensure_redis_url(
            self.settings.redis_url, self.settings.var_dir, self.settings.embedded_redis_port
        )
        self._redis = await queue.connect(self.redis_url)

    def on_close(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Await ``callback()`` when the Hub closes, before Redis and the database go (last
        registered first): for what a plugin starts lazily, such as a pub/sub listener."""
        self._on_close.append(callback)

    async def close(self) -> None:
        while self._on_close:
            callback = self._on_close.pop()
            try:
                await callback()
            except Exception:
                log.exception("on_close_callback_failed", callback=repr(callback))
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
        await self.db.dispose()
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None


HubDep: TypeAlias = NamedDependency[Hub]
"""Route handlers take ``hub: HubDep`` to reach the Hub serving the request."""


def _cors_config(origins: tuple[str, ...]) -> CORSConfig | None:
    """Cross-origin calls from browsers (the JS SDK on the customer's own site). The API
    authenticates with bearer tokens, never cookies, so credentials are never allowed."""
    if not origins:
        return None
    return CORSConfig(allow_origins=list(origins), allow_credentials=False, max_age=600,
                      allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                      allow_headers=["Authorization", "Content-Type", "If-None-Match", "Idempotency-Key"],
                      expose_headers=["ETag", "Retry-After", "Location"])


def create_app(settings: Settings | None = None, *, hub: Hub | None = None,
               plugins: Iterable[Any] = ()) -> Litestar:
    """Build the HTTP API. Routes come from plugins (the core's own routes are plugins too)."""
    from hub.api.auth import authorize_request, check_route_auth
    from hub.api.middleware import request_context_middleware
    from hub.api.problems import exception_handlers

    hub = hub or Hub(settings, plugins=plugins)
    configure_logging(hub.settings)
    handlers = [handler for _plugin, handler in hub.registry.routes]

    async def on_startup(app: Litestar) -> None:
        await hub.start()

    async def on_shutdown(app: Litestar) -> None:
        await hub.close()

    app = Litestar(
        route_handlers=handlers,
        dependencies={"hub": Provide(lambda: hub, use_cache=True, sync_to_thread=False)},
        before_request=authorize_request,
        exception_handlers=exception_handlers(),
        middleware=[request_context_middleware],
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        request_max_body_size=hub.settings.max_body_bytes,
        cors_config=_cors_config(hub.settings.cors_allow_origins),
        openapi_config=OpenAPIConfig(
            title="Hub API",
            version=hub_package.__version__,
            path="/schema",
            components=Components(security_schemes={
                "apiClient": SecurityScheme(
                    type="http", scheme="bearer", bearer_format="JWT",
                    description="Token from POST /v1/{env}/oauth/token (client credentials).",
                ),
            }),
        ),
        state=State({"hub": hub}),
        logging_config=None,  # hub.logging configures structlog and the standard library
        debug=False,
    )
    check_route_auth(app)
    return app

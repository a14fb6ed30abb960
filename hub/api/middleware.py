"""Request context: a request id on every log line and response, access logs, metrics.

This runs on every request, so it is kept cheap (see docs/benchmarks.md): request ids come from a
per-process random prefix and a counter rather than ``uuid4`` (a ``getrandom`` syscall that gives
up the GIL, which the database driver threads then hold), metric children are looked up once per
label set, and the access log line is not even built when the log level hides it.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time
from typing import Any

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from hub.logging import get_logger

log = get_logger("hub.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})

_id_prefix = secrets.token_hex(8)
_id_counter = itertools.count()


def _reseed_request_ids() -> None:
    global _id_prefix, _id_counter
    _id_prefix = secrets.token_hex(8)
    _id_counter = itertools.count()


os.register_at_fork(after_in_child=_reseed_request_ids)


def new_request_id() -> str:
    """32 hex characters, unique across processes: 64 random bits per process, then a counter."""
    return f"{_id_prefix}{next(_id_counter) & 0xFFFFFFFFFFFFFFFF:016x}"


def _info_enabled(level_name: str) -> bool:
    return logging.getLevelNamesMapping().get(level_name.upper(), logging.INFO) <= logging.INFO


def request_context_middleware(app: ASGIApp) -> ASGIApp:
    log_requests: bool | None = None  # decided on the first request, from the Hub's log level

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal log_requests
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value.decode("latin-1")
                if _REQUEST_ID.match(given):
                    request_id = given
                break
        if not request_id:
            request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        header = (b"x-request-id", request_id.encode("latin-1"))
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            hub = scope["app"].state.hub
            hub.metrics.observe_request(scope["method"], route, status, elapsed)
            if log_requests is None:
                log_requests = _info_enabled(hub.settings.log_level)
            if log_requests and (status >= 500 or route not in _QUIET_ROUTES):
                log.info("request", method=scope["method"], route=route, status=status,
                         ms=round(elapsed * 1000, 2))
            structlog.contextvars.unbind_contextvars("request_id")

    return middleware


def _route_template(scope: Scope) -> str:
    handler: Any = scope.get("route_handler")
    paths = getattr(handler, "paths", None)
    if paths:
        return str(next(iter(paths)))
    return "unmatched"

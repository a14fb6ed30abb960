"""Request context: a request id on every log line and response, access logs, metrics."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from hub.logging import get_logger

log = get_logger("hub.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_context_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        given = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            hub = scope["app"].state.hub
            hub.metrics.http_requests.labels(scope["method"], route, str(status)).inc()
            hub.metrics.http_duration.labels(scope["method"], route).observe(elapsed)
            if status >= 500 or route not in ("/healthz", "/readyz", "/metrics"):
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

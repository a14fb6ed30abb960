"""Operations routes: liveness, readiness, Prometheus metrics, loaded plugins."""

from __future__ import annotations

import hmac
from typing import Any

import msgspec
from litestar import Request, Response, get
from sqlalchemy import func, select

from hub import queue
from hub.api.problems import FieldError, Problem
from hub.app import HubDep
from hub.db import tables
from hub.hookspecs import hookimpl
from hub.plugins import describe_plugins
from hub.services import push

TAGS = ["operations"]


class Health(msgspec.Struct):
    status: str
    checks: dict[str, str] = {}


class PluginInfo(msgspec.Struct):
    name: str
    version: str | None
    builtin: bool
    hooks: list[str]


@get("/healthz", opt={"auth": "public"}, tags=TAGS, summary="Liveness", security=[])
async def healthz() -> Health:
    """200 while the process serves requests; it checks nothing else."""
    return Health("ok")


@get("/readyz", opt={"auth": "public"}, tags=TAGS, summary="Readiness: database and Redis",
     security=[])
async def readyz(hub: HubDep) -> Response[Health]:
    """200 when the database and Redis both answer, 503 (naming which failed) otherwise."""
    checks: dict[str, str] = {}
    try:
        await hub.db.ping()
        checks["database"] = "ok"
    except Exception as exc:  # readiness reports failures, it must not raise them
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        await hub.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return Response(Health("ok" if ok else "unavailable", checks), status_code=200 if ok else 503)


@get("/metrics", opt={"auth": "public"}, tags=TAGS, summary="Prometheus metrics", security=[],
     include_in_schema=False)
async def metrics(request: Request[Any, Any, Any], hub: HubDep) -> Response[bytes]:
    token = hub.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Problem(401, "metrics need Authorization: Bearer <HUB_METRICS_TOKEN>",
                          errors=[FieldError("header.authorization", "missing or wrong token")],
                          headers={"WWW-Authenticate": 'Bearer realm="hub-metrics"'})
    async with hub.db.connect() as conn:
        pending = (await conn.execute(select(func.count()).select_from(tables.outbox))).scalar_one()
    hub.metrics.outbox_pending.set(pending)
    hub.metrics.queue_depth.set(await hub.redis.zcard(queue.QUEUE_NAME))
    await push.refresh_metrics(hub)
    return Response(hub.metrics.render(), media_type="text/plain; version=0.0.4")


@get("/-/plugins", opt={"permission": "plugins:read"}, tags=TAGS,
     summary="Loaded plugins, their versions and hooks")
async def plugins(hub: HubDep) -> list[PluginInfo]:
    return msgspec.convert(describe_plugins(hub.pm), list[PluginInfo])


@hookimpl
def hub_register_routes(register: Any) -> None:
    for handler in (healthz, readyz, metrics, plugins):
        register(handler)

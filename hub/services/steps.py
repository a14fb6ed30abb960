"""Steps that block their flow instance while a worker does the work: HTTP calls, customer
updates, push. Each job does its work outside any transaction, then resumes the instance in one.
The work itself may run twice if a worker dies between doing it and resuming (at least once);
resuming is idempotent.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import select
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from hub.core.templates import render
from hub.db import tables
from hub.net import UnsafeURL, check_url
from hub.services import engine
from hub.services.outbox import transaction

if TYPE_CHECKING:
    from hub.app import Hub

MAX_BODY = 65_536
FI = tables.flow_instance.c


async def _blocked(hub: Hub, env: str, instance_id: str, step_id: str, visit: int
                   ) -> tuple[dict[str, Any], Any, dict[str, Any]] | None:
    """The instance, its step and a render context, if it is still blocked at this step."""
    async with hub.db.connect() as conn:
        row = (await conn.execute(select(tables.flow_instance).where(
            FI.environment_id == env, FI.id == instance_id))).mappings().first()
        if row is None or row["status"] != "active" or not any(
                t["step"] == step_id and t["visit"] == visit for t in row["position"]):
            return None
        inst = dict(row)
        defn = await engine.definition(hub, conn, env, inst["flow_id"], inst["flow_version"])
        invocation = await engine.load_invocation(conn, env, inst["invocation_id"])
        c = tables.customer.c
        customer_row = (await conn.execute(select(c.user_id, c.fields, c.tags).where(
            c.environment_id == env, c.user_id == inst["user_id"]))).first()
    customer = engine.customer_context(customer_row) if customer_row else {
        "userId": inst["user_id"], "fields": {}, "tags": []}
    assert invocation is not None
    context = {"variables": inst["variables"], "customer": customer,
               "steps": inst["context"]["steps"],
               "invocation": {"id": invocation["id"], "source": invocation["source"],
                              "metadata": invocation["payload"].get("metadata") or {}}}
    return inst, defn.step(step_id), context


async def _resume(hub: Hub, env: str, instance_id: str, step_id: str, visit: int,
                  outcome: dict[str, Any]) -> bool:
    async with transaction(hub) as tx:
        return await engine.resume_in(hub, tx, env, instance_id, step_id, visit, outcome)


StepWork = Callable[["Hub", str, dict[str, Any], Any, dict[str, Any], int], Awaitable[dict[str, Any]]]


def blocking_step(work: StepWork) -> Callable[..., Awaitable[bool]]:
    """Make ``work(hub, env, instance, step, context, visit) -> outcome`` a job: it runs only while
    the instance is still blocked at that step and visit, then resumes the instance with the
    outcome."""

    @functools.wraps(work)
    async def job(ctx: dict[str, Any], env: str, instance_id: str, step_id: str, visit: int) -> bool:
        hub: Hub = ctx["hub"]
        found = await _blocked(hub, env, instance_id, step_id, visit)
        if found is None:
            return False
        inst, step, context = found
        outcome = await work(hub, env, inst, step, context, visit)
        return await _resume(hub, env, instance_id, step_id, visit, outcome)

    return job


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, httpx.TransportError)


@blocking_step
async def http_request_step(hub: Hub, env: str, inst: dict[str, Any], step: Any,
                            context: dict[str, Any], visit: int) -> dict[str, Any]:
    """Job: make a flow's HTTP request (with its timeout and retries), then resume the flow."""
    config = render({k: step.config.get(k) for k in ("url", "headers", "body")}, context)
    method = step.config.get("method", "POST").upper()
    outcome: dict[str, Any] = {}
    try:
        await check_url(config["url"], allow_private=hub.settings.allow_private_urls)
        async with httpx.AsyncClient(timeout=step.config.get("timeoutSeconds", 10.0),
                                     follow_redirects=False) as client:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(1 + int(step.config.get("retries", 0))),
                wait=wait_exponential_jitter(multiplier=0.5, max=10), retry=retry_if_exception(_retryable),
                reraise=True,
            ):
                with attempt:
                    body = config.get("body")
                    response = await client.request(
                        method, config["url"], headers=config.get("headers") or {},
                        json=body if body is not None and method not in ("GET", "HEAD") else None)
                    if response.status_code >= 500 or response.status_code == 429:
                        response.raise_for_status()
        outcome["response"] = _response(response)
        if not response.is_success:
            outcome["error"] = f"{method} {config['url']} answered {response.status_code}"
    except UnsafeURL as exc:
        outcome["error"] = str(exc)
    except httpx.HTTPStatusError as exc:
        outcome["response"] = _response(exc.response)
        outcome["error"] = f"{method} {config['url']} answered {exc.response.status_code}"
    except httpx.HTTPError as exc:
        outcome["error"] = f"{method} {config['url']} failed: {type(exc).__name__}"
    return outcome


def _response(response: httpx.Response) -> dict[str, Any]:
    text = response.text[:MAX_BODY]
    try:
        body: Any = response.json()
    except ValueError:
        body = text
    return {"status": response.status_code, "body": body,
            "headers": {k: v for k, v in response.headers.items() if k.lower() in (
                "content-type", "location", "etag")}}


@blocking_step
async def update_customer_step(hub: Hub, env: str, inst: dict[str, Any], step: Any,
                               context: dict[str, Any], visit: int) -> dict[str, Any]:
    """Job: apply a flow's profile update through the customers service, then resume."""
    from hub.services.customers import upsert_customers

    item = {"userId": inst["user_id"], **render(
        {k: v for k, v in step.config.items() if k in ("fields", "addTags", "removeTags")}, context)}
    result = (await upsert_customers(hub, env, [item]))["results"][0]
    outcome: dict[str, Any] = {"output": {"status": result["status"]}}
    if result["status"] == "error":
        outcome["error"] = "; ".join(f"{e['field']}: {e['reason']}" for e in result["errors"])
    return outcome


@blocking_step
async def push_step(hub: Hub, env: str, inst: dict[str, Any], step: Any,
                    context: dict[str, Any], visit: int) -> dict[str, Any]:
    """Job: a flow's push step, sent to the customer's devices now, or scheduled for their next
    notification window (``hub.services.push``). The step's output is the notification's summary
    (``status``, ``sent``, ``deliveries``); a push nobody receives (no device, notifications off)
    does not stop the flow, a payload too large for providers fails the step."""
    from hub.services import push

    notification = render({k: step.config.get(k) for k in ("title", "body", "data")}, context)
    platforms = step.config.get("platforms") or list(push.ALL_PLATFORMS)
    return await push.step_push(hub, env, inst, step.id, visit, notification, platforms,
                                step.config.get("priority") or "high")

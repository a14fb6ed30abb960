"""Starting flows over the API: ``/v1/{env}/action-flow/...`` (PROTOCOLS.md §1)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import get, post
from litestar.params import FromPath, JSONBody

from hub.api.problems import FieldError, Problem
from hub.app import HubDep
from hub.hookspecs import hookimpl
from hub.services import triggers

TAGS = ["flows"]


class StartFlows(msgspec.Struct, forbid_unknown_fields=True):
    """``flows``: start requests ``{"flowInvocationId"?, "target": {...}, "payload"?: {...}}``.

    target: one of ``usersById: [ids]``, ``tags: [..]`` with ``match: any|all``, ``filter`` (an
    object of field: value, or a list of ``{"field", "op", "value"}`` with op eq, ne, gt, gte,
    lt, lte, in, exists), ``allTestUsers: true``. payload: ``variables``, ``metadata``,
    ``notificationDetail``, ``cardOptions`` (priority, expires, expiresInterval, embargo,
    targetStreamIds, targetPlatforms).
    """

    flows: list[Any]


class Invocation(msgspec.Struct):
    flowInvocationId: str
    flowConfigId: str
    flowVersion: int
    source: str
    test: bool
    status: str
    targeted: int
    started: int
    target: dict[str, Any]
    createdAt: str | None
    completedAt: str | None
    created: bool | None = None


class StartResult(msgspec.Struct):
    flows: list[Invocation]


class Instance(msgspec.Struct):
    flowInstanceId: str
    flowInvocationId: str
    flowConfigId: str
    flowVersion: int
    userId: str
    status: str
    variables: dict[str, Any]
    steps: dict[str, Any]
    waitingAt: list[str]
    error: str | None
    createdAt: str | None
    endedAt: str | None


class CancelRequest(msgspec.Struct, forbid_unknown_fields=True):
    reason: str = "cancelled through the API"


def _problem(exc: triggers.TriggerError) -> Problem:
    return Problem(exc.status, str(exc), errors=[FieldError(i.field, i.reason) for i in exc.issues])


async def _start(hub: Any, env: str, flow_id: str, data: StartFlows, test: bool) -> StartResult:
    try:
        results = await triggers.start_flows(hub, env, flow_id, data.flows, source="api", test=test)
    except triggers.TriggerError as exc:
        raise _problem(exc) from None
    return StartResult([msgspec.convert(r, Invocation) for r in results])


@post("/v1/{env:str}/action-flow/{flow_id:str}/start", opt={"permission": "flows:trigger"},
      tags=TAGS, status_code=202, summary="Start a published flow")
async def start(hub: HubDep, env: FromPath[str], flow_id: FromPath[str],
                data: JSONBody[StartFlows]) -> StartResult:
    """Durable before it answers 202; a repeated ``flowInvocationId`` starts nothing new."""
    return await _start(hub, env, flow_id, data, test=False)


@post("/v1/{env:str}/action-flow/{flow_id:str}/test", opt={"permission": "flows:trigger"},
      tags=TAGS, status_code=202, summary="Start a flow for test users only")
async def start_test(hub: HubDep, env: FromPath[str], flow_id: FromPath[str],
                     data: JSONBody[StartFlows]) -> StartResult:
    """Like start, but only customers marked ``isTestUser`` get it; events say ``test``."""
    return await _start(hub, env, flow_id, data, test=True)


async def _found(call: Any, kind: str, item_id: str, field: str, as_type: type) -> Any:
    """Await ``call`` and shape its result; an unknown id is a 404 naming the path field."""
    try:
        return msgspec.convert(await call, as_type)
    except triggers.InvocationNotFound:
        raise Problem(404, f"no {kind} {item_id!r}", errors=[FieldError(field, f"no such {kind}")]) from None


def _reason(data: CancelRequest | None) -> str:
    return (data or CancelRequest()).reason


@get("/v1/{env:str}/action-flow/invocations/{invocation_id:str}", opt={"permission": "flows:read"},
     tags=TAGS, summary="An invocation's progress")
async def get_invocation(hub: HubDep, env: FromPath[str], invocation_id: FromPath[str]) -> Invocation:
    return await _found(triggers.get_invocation(hub, env, invocation_id), "invocation", invocation_id,
                        "path.invocationId", Invocation)


@post("/v1/{env:str}/action-flow/invocations/{invocation_id:str}/cancel",
      opt={"permission": "flows:trigger"}, tags=TAGS, status_code=200,
      summary="Cancel an invocation and its running instances")
async def cancel_invocation(hub: HubDep, env: FromPath[str], invocation_id: FromPath[str],
                            data: JSONBody[CancelRequest | None] = None) -> Invocation:
    return await _found(triggers.cancel_invocation(hub, env, invocation_id, _reason(data)), "invocation",
                        invocation_id, "path.invocationId", Invocation)


@get("/v1/{env:str}/action-flow/instances/{instance_id:str}", opt={"permission": "flows:read"},
     tags=TAGS, summary="One flow instance (one customer's run of a flow)")
async def get_instance(hub: HubDep, env: FromPath[str], instance_id: FromPath[str]) -> Instance:
    return await _found(triggers.get_instance(hub, env, instance_id), "flow instance", instance_id,
                        "path.instanceId", Instance)


@post("/v1/{env:str}/action-flow/instances/{instance_id:str}/cancel",
      opt={"permission": "flows:trigger"}, tags=TAGS, status_code=200,
      summary="Cancel one flow instance and its open cards")
async def cancel_instance(hub: HubDep, env: FromPath[str], instance_id: FromPath[str],
                          data: JSONBody[CancelRequest | None] = None) -> Instance:
    async def cancel_then_get() -> dict[str, Any]:
        await triggers.cancel_instance(hub, env, instance_id, _reason(data))
        return await triggers.get_instance(hub, env, instance_id)

    return await _found(cancel_then_get(), "flow instance", instance_id, "path.instanceId", Instance)


@hookimpl
def hub_register_cli(cli: Any) -> None:
    import typer

    from hub.cli import CliError, parse_json_option, run_with_hub

    @cli.command("trigger")
    def trigger(
        flow_id: str = typer.Argument(..., metavar="FLOW"),
        env: str = typer.Option(..., "--env", help="Environment."),
        user: list[str] = typer.Option([], "--user", help="A user id (repeat for several)."),
        tag: list[str] = typer.Option([], "--tag", help="Customers with this tag (repeat: any)."),
        variables: str = typer.Option(None, "--variables", help='JSON object, e.g. \'{"amount": 5}\'.'),
        invocation_id: str = typer.Option(None, "--invocation-id", help="flowInvocationId (idempotency)."),
        test: bool = typer.Option(False, "--test", help="Test users only."),
    ) -> None:
        """Start a published flow, as POST /v1/{env}/action-flow/{flow}/start does.

        Example: hub trigger fraud-alert --env demo --user demo-user --variables '{"amount": "$12"}'
        """
        if bool(user) == bool(tag):
            raise CliError("give --user or --tag (one of them)")
        target: dict[str, Any] = {"usersById": user} if user else {"tags": tag}

        async def go(hub: Any) -> dict[str, Any]:
            try:
                return await triggers.start_invocation(
                    hub, env, flow_id, target=target,
                    variables=parse_json_option(variables, "--variables") or {},
                    invocation_id=invocation_id, source="api", test=test)
            except triggers.TriggerError as exc:
                issues = "; ".join(f"{i.field}: {i.reason}" for i in exc.issues)
                raise CliError(issues or str(exc)) from None

        result = run_with_hub(env, go)
        typer.echo(result["flowInvocationId"])


@hookimpl
def hub_register_routes(register: Any) -> None:
    for handler in (start, start_test, get_invocation, cancel_invocation, get_instance, cancel_instance):
        register(handler)

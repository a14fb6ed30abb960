"""The example plugin's hookimpls: one of every kind of hook Hub has.

Installed through its ``hub.plugins`` entry point (``example = "hub_example.hooks"``), it adds,
without touching Hub's core:

* ``GET /v1/{env}/example/hello``: a greeting from the plugin's settings (``HUB_EXAMPLE_*``)
  and the counter kept by its job;
* ``POST /v1/{env}/example/count?key=...``: enqueues the ``example_count`` job through the outbox;
* the ``example_wait`` step type, the ``example`` UI entry and the ``hub example-hello`` command;
* outbound hooks that record what they were told in ``RECEIVED`` (a real plugin would deliver it),
  and a push sender for devices whose platform is ``example``.
"""

from __future__ import annotations

from typing import Any

import msgspec
import typer
from litestar import get, post
from litestar.params import FromPath, FromQuery

from hub.app import HubDep
from hub.hookspecs import hookimpl
from hub.registry import StepType, UiEntry
from hub.services.outbox import transaction

RECEIVED: list[tuple[str, dict[str, Any]]] = []
"""(hook name, arguments) for every outbound hook call this process received."""


class ExampleSettings(msgspec.Struct, kw_only=True, frozen=True):
    greeting: str = "hello"
    """HUB_EXAMPLE_GREETING"""
    repeat: int = 1
    """HUB_EXAMPLE_REPEAT"""
    channels: tuple[str, ...] = ()
    """HUB_EXAMPLE_CHANNELS (comma-separated)"""


class Hello(msgspec.Struct):
    message: str
    count: int
    channels: list[str]


class Queued(msgspec.Struct):
    jobId: str


def _counter(env: str) -> str:
    return f"example:{env}:count"


@get("/v1/{env:str}/example/hello", opt={"permission": "example:read"}, tags=["example"])
async def hello(env: FromPath[str], hub: HubDep) -> Hello:
    """Greet the environment; ``count`` is how many ``example_count`` jobs have run."""
    settings: ExampleSettings = hub.plugin_settings["example"]
    count = int(await hub.redis.get(_counter(env)) or 0)
    return Hello(" ".join([settings.greeting] * settings.repeat) + f", {env}", count,
                 list(settings.channels))


@post("/v1/{env:str}/example/count", opt={"permission": "example:write"}, tags=["example"],
      status_code=202)
async def count(env: FromPath[str], key: FromQuery[str], hub: HubDep) -> Queued:
    """Enqueue one ``example_count`` job; the same ``key`` twice runs the job once."""
    job_id = f"example:{env}:{key}"
    async with transaction(hub) as tx:
        await tx.enqueue("example_count", [env], job_id=job_id)
    return Queued(job_id)


async def example_count(ctx: dict[str, Any], env: str) -> int:
    """Job: add one to the environment's counter."""
    return int(await ctx["hub"].redis.incr(_counter(env)))


async def run_example_wait(ctx: Any, step: dict[str, Any], instance: Any) -> dict[str, Any]:
    return {"outcome": "next", "waited": step.get("seconds", 0)}


@hookimpl
def hub_register_routes(register: Any) -> None:
    register(hello)
    register(count)


@hookimpl
def hub_register_jobs(register: Any) -> None:
    register(example_count, max_tries=3)


@hookimpl
def hub_register_step_types(register: Any) -> None:
    register(StepType(
        name="example_wait",
        run=run_example_wait,
        schema={"type": "object", "properties": {"seconds": {"type": "integer", "minimum": 0}}},
        description="Wait a little (an example step type).",
    ))


@hookimpl
def hub_register_settings(register: Any) -> None:
    register("example", ExampleSettings)


@hookimpl
def hub_register_ui(register: Any) -> None:
    register(UiEntry(id="example", title="Example", path="/ui/example", section="workbench",
                     permission="workbench:view"))


@hookimpl
def hub_register_cli(cli: typer.Typer) -> None:
    @cli.command("example-hello")
    def example_hello(name: str = typer.Argument("world", help="Who to greet.")) -> None:
        """Say hello from the example plugin. Example: hub example-hello Ada"""
        typer.echo(f"hello, {name}, from the example plugin")


@hookimpl
def hub_card_changed(card: dict[str, Any], previous: dict[str, Any] | None,
                     context: dict[str, Any]) -> str:
    RECEIVED.append(("hub_card_changed", {"card": card, "previous": previous, "context": context}))
    return "example saw the card"


@hookimpl
async def hub_analytics_event(event: dict[str, Any]) -> str:
    RECEIVED.append(("hub_analytics_event", {"event": event}))
    return "example saw the event"


@hookimpl
async def hub_customer_changed(customer: dict[str, Any], changes: dict[str, Any]) -> None:
    RECEIVED.append(("hub_customer_changed", {"customer": customer, "changes": changes}))


@hookimpl
async def hub_send_push(notification: dict[str, Any], device: dict[str, Any]) -> dict[str, Any] | None:
    if device.get("platform") != "example":
        return None  # not ours: the next plugin is asked
    RECEIVED.append(("hub_send_push", {"notification": notification, "device": device}))
    return {"status": "sent", "detail": f"example delivered to {device['token']}", "retryAfter": None}

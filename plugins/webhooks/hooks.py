"""The webhooks plugin's hookimpls; the work is done in ``inbound`` and ``outbound``."""

from __future__ import annotations

from typing import Any

from hub.hookspecs import hookimpl
from hub_plugins.webhooks import inbound, outbound, ui
from hub_plugins.webhooks.settings import WebhooksSettings


@hookimpl
def hub_register_settings(register: Any) -> None:
    register("webhooks", WebhooksSettings)


@hookimpl
def hub_register_routes(register: Any) -> None:
    for handler in (*inbound.ROUTES, *outbound.ROUTES):
        register(handler)
    register(ui.router())  # the staff UI's settings page


@hookimpl
def hub_register_ui(register: Any) -> None:
    register(ui.ENTRY)


@hookimpl
def hub_register_jobs(register: Any) -> None:
    for job in inbound.JOBS:
        register(job)
    for job in outbound.JOBS:  # the delivery sweeper runs on a schedule
        register(job, **outbound.JOB_OPTIONS.get(job.__name__, {}))


@hookimpl
async def hub_analytics_event(hub: Any, event: dict[str, Any]) -> None:
    await outbound.analytics_event(hub, event)

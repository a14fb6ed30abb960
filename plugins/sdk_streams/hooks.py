"""The sdk_streams plugin's hookimpls; the work is done in the modules they delegate to."""

from __future__ import annotations

from typing import Any

from hub.hookspecs import hookimpl
from hub_plugins.sdk_streams import api, demo, realtime
from hub_plugins.sdk_streams.settings import SdkStreamsSettings


@hookimpl
def hub_register_settings(register: Any) -> None:
    register("sdk_streams", SdkStreamsSettings)


@hookimpl
def hub_register_routes(register: Any) -> None:
    for handler in (*api.ROUTES, *realtime.ROUTES, *demo.ROUTES):
        register(handler)


@hookimpl
def hub_register_jobs(register: Any) -> None:
    for job in (*api.JOBS, *realtime.JOBS):
        register(job)


@hookimpl
async def hub_card_changed(hub: Any, card: dict[str, Any], previous: dict[str, Any] | None,
                           context: dict[str, Any]) -> None:
    await realtime.card_changed(hub, card, previous, context)

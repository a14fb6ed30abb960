"""Every hook a Hub plugin can implement, grouped by lifecycle phase.

Each function's docstring is its contract; ``docs/plugins.md`` documents each with an example and
``tests/test_docs.py`` fails when one is missing. Implementations may be plain functions or
``async def``: Hub awaits any result that is awaitable.

Registration hooks receive a ``register`` callback instead of returning lists, so one plugin can
register several things and the order of arguments can grow without breaking anyone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pluggy import HookimplMarker, HookspecMarker

if TYPE_CHECKING:
    import typer

    from hub.registry import JobRegistration, StepType, UiEntry

hookspec = HookspecMarker("hub")
hookimpl = HookimplMarker("hub")


# --- start-up: called once when an app, a worker or the CLI is built -------------------------


@hookspec
def hub_register_routes(register: Callable[[Any], None]) -> None:
    """Add HTTP routes to the API.

    Call ``register(handler)`` with a Litestar route handler, ``Controller`` subclass or
    ``Router``. Routes under ``/v1/{env}/`` are authenticated by Hub's API-client guard when the
    handler's ``opt`` names a ``permission`` (for example ``opt={"permission": "users:read"}``);
    a handler that authenticates another way (end-user JWT, signed webhook) must do so itself
    and say so in ``opt={"auth": "custom"}``.
    """


@hookspec
def hub_register_jobs(register: Callable[..., JobRegistration]) -> None:
    """Add background jobs run by ``hub worker``.

    ``register(coroutine_function, *, name=None, cron=None, max_tries=None, timeout=None)``.
    The function is an arq job: ``async def job(ctx, *args)`` where ``ctx["hub"]`` is the
    :class:`hub.app.Hub`. Jobs must be idempotent: they can run twice. With ``cron`` (a mapping
    of arq ``cron()`` keyword arguments such as ``{"second": {0, 30}}``) the job also runs on a
    schedule. Arguments and results are serialised with msgpack, so pass ids, not objects.
    """


@hookspec
def hub_register_step_types(register: Callable[[StepType], None]) -> None:
    """Add flow step types.

    Call ``register(StepType(name=..., schema=..., run=...))``. ``schema`` is the JSON Schema of
    the step's own options; ``run(ctx, step, instance)`` is awaited by the flow engine and returns
    the step's outcome. A name already registered is an error at start-up.
    """


@hookspec
def hub_register_settings(register: Callable[[str, type], None]) -> None:
    """Declare a plugin's settings.

    Call ``register(name, StructType)`` with a ``msgspec.Struct`` whose fields all have defaults.
    Hub reads it from ``HUB_<NAME>_<FIELD>`` environment variables (and the ``[hub.<name>]``
    table of ``hub.toml``); the plugin reads the result as ``hub.plugin_settings[name]``.
    """


@hookspec
def hub_register_cli(cli: typer.Typer) -> None:
    """Add commands to the ``hub`` command line.

    ``cli`` is the root ``typer.Typer``; add commands with ``@cli.command()`` or sub-groups with
    ``cli.add_typer(...)``.
    """


@hookspec
def hub_register_ui(register: Callable[[UiEntry], None]) -> None:
    """Contribute pages to the staff web UI (Workbench and Customer Center).

    Call ``register(UiEntry(id=..., title=..., path=..., section=..., permission=...))``. The
    page itself is a route the plugin registers with ``hub_register_routes``; the entry puts it
    in the navigation of the sections where the staff member has ``permission``.
    """


# --- outbound: called after a change has been committed ---------------------------------------


@hookspec
def hub_card_changed(card: dict[str, Any], previous: dict[str, Any] | None,
                     context: dict[str, Any]) -> None:
    """A card was created or changed state.

    Called from a worker after the transaction that changed the card committed, at least once
    (de-duplicate on ``context["eventId"]``). ``card`` is the card as the API returns it,
    ``previous`` the same before the change (``None`` for a new card), ``context`` holds the
    ``environmentId``, ``eventId`` and the ``reason`` of the change.
    """


@hookspec
def hub_analytics_event(event: dict[str, Any]) -> None:
    """An analytics event was recorded.

    ``event`` has the shape of PROTOCOLS.md §2 (``id``, ``endUserId``, ``analyticsEvent``,
    ``timestamp``, contexts) plus ``environmentId``. Called from a worker after commit, at least
    once: de-duplicate on ``event["id"]``.
    """


@hookspec(firstresult=True)
def hub_send_push(notification: dict[str, Any], device: dict[str, Any]) -> dict[str, Any] | None:
    """Send one push notification to one device.

    Return ``None`` when the device's ``platform`` is not yours, so the next plugin is asked; the
    first non-``None`` result wins. A result is ``{"status": "sent" | "invalid_device" |
    "retry" | "failed", "detail": str, "retryAfter": seconds | None}``.
    """


@hookspec
def hub_customer_changed(customer: dict[str, Any], changes: dict[str, Any]) -> None:
    """A customer profile was created, changed, deleted or erased.

    Called from a worker after commit, at least once. ``customer`` is the profile as the API
    returns it (with ``environmentId``); ``changes`` names what changed: ``{"created": bool,
    "fields": [...], "tags": bool, "preferences": bool, "deleted": bool, "erased": bool}``.
    A plugin that keeps its own data about customers must delete it on ``erased``.
    """

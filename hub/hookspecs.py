"""Every hook a Hub plugin can implement, grouped by lifecycle phase.

Each function's docstring is its contract; ``docs/plugins.md`` documents each with an example and
``tests/test_docs.py`` fails when one is missing. Implementations may be plain functions or
``async def``: Hub awaits any result that is awaitable.

Registration hooks receive a ``register`` callback instead of returning lists, so one plugin can
register several things and the order of arguments can grow without breaking anyone. They run
once at start-up, each plugin in turn, and must be plain (not ``async``) functions; a name that
two plugins register (a job, a step type, a settings name, a UI entry) is a
:class:`hub.registry.RegistrationError` that stops start-up.

Outbound hooks are called by Hub with :func:`hub.plugins.call_hook` (every implementation, each
result awaited) or, for ``firstresult`` hooks, :func:`hub.plugins.call_first`. Their first
argument, ``hub``, is the running :class:`hub.app.Hub` (database, Redis, settings, plugin
settings); like every pluggy argument, an implementation may leave it out of its signature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pluggy import HookimplMarker, HookspecMarker

if TYPE_CHECKING:
    import typer

    from hub.app import Hub
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

    ``register(coroutine_function, *, name=None, cron=None, max_tries=None, timeout=None,
    inline=False)``.
    The function is an arq job: ``async def job(ctx, *args)`` where ``ctx["hub"]`` is the
    :class:`hub.app.Hub`. Jobs must be idempotent: they can run twice. With ``cron`` (a mapping
    of arq ``cron()`` keyword arguments such as ``{"second": {0, 30}}``, or a function of the
    core :class:`hub.settings.Settings` returning one) the job also runs on a schedule, as
    ``cron:<name>``. ``name`` defaults to the function's ``__name__`` and is what callers enqueue
    (``tx.enqueue(name, args, job_id=...)`` in :func:`hub.services.outbox.transaction`).
    Arguments and results are serialised with msgpack, so pass ids, not objects. A job that
    raises is retried with backoff up to ``max_tries`` (default ``HUB_JOB_MAX_TRIES``); a sync
    function or a name already registered is an error at start-up. With ``inline=True``, a job
    enqueued by a transaction that commits *inside a worker* runs right there after the commit
    instead of going through the queue (one hop less: how card changes reach app sockets
    quickly); if it raises, it is enqueued and retried as usual, so keep such jobs short.
    ``timeout`` defaults to ``HUB_JOB_TIMEOUT_SECONDS``; raise it sparingly: a worker leases
    every job it takes for its *longest* job timeout plus 10 s, so the jobs of a worker killed
    mid-job wait that long before another worker runs them again. Split long work into jobs
    that hand over to the next one instead.
    """


@hookspec
def hub_register_step_types(register: Callable[[StepType], None]) -> None:
    """Add flow step types.

    Call ``register(StepType(name=..., schema=..., run=...))``. ``schema`` is the JSON Schema of
    the step's own options; ``run(ctx, step, instance)`` is awaited by the flow engine and returns
    the step's outcome. A name already registered is an error at start-up.
    """


@hookspec
def hub_register_push_platforms(register: Callable[[str], None]) -> None:
    """Add push platforms besides Hub's ``ios``, ``android`` and ``web``.

    Call ``register(name)`` with a lowercase name (letters, digits, ``_``, ``-``; at most 32),
    for example ``register("pager")``. A flow's ``push`` step may then name it in ``platforms``
    and a card template's push in ``push.extraPlatforms``; Hub asks ``hub_push_devices`` for
    devices on it and ``hub_send_push`` sends to them, so the plugin that registers a platform
    also answers those two hooks for its devices. Card display platforms (``platforms``,
    ``targetPlatforms``) stay ``web``, ``ios`` and ``android``: the SDKs render cards. A name
    Hub has, or one two plugins register, is an error at start-up.
    """


@hookspec
def hub_register_settings(register: Callable[[str, type], None]) -> None:
    """Declare a plugin's settings.

    Call ``register(name, StructType)`` with a lower_snake ``name`` and a ``msgspec.Struct``
    whose fields all have defaults. Hub reads it from ``HUB_<NAME>_<FIELD>`` environment
    variables over the ``[hub.<name>]`` table of ``hub.toml`` (strings are converted to the
    field's type; list and tuple fields take comma-separated values); the plugin reads the
    result as ``hub.plugin_settings[name]``. A name registered twice, a field without a default,
    or a variable that would shadow a core setting is an error at start-up.
    """


@hookspec
def hub_register_cli(cli: typer.Typer) -> None:
    """Add commands to the ``hub`` command line.

    ``cli`` is the root ``typer.Typer``; add commands with ``@cli.command()`` or sub-groups with
    ``cli.add_typer(...)``. Called by ``hub`` before it parses its arguments, so the
    implementation must not be ``async``; a command builds its own :class:`hub.app.Hub` if it
    needs one.
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
def hub_card_changed(hub: Hub, card: dict[str, Any], previous: dict[str, Any] | None,
                     context: dict[str, Any]) -> None:
    """A card was created or changed state.

    Called from a worker after the transaction that changed the card committed, at least once
    (de-duplicate on ``context["eventId"]``). ``card`` is the card as the API returns it,
    ``previous`` the same before the change (``None`` for a new card), ``context`` holds the
    ``environmentId``, ``eventId`` and the ``reason`` of the change.
    """


@hookspec
def hub_cards_changed(hub: Hub, changes: list[dict[str, Any]]) -> None:
    """Cards were created or changed state: the batch form of :func:`hub_card_changed`.

    ``changes`` holds one ``{"card", "previous", "context"}`` per change, each as
    ``hub_card_changed`` receives them, in the order they happened: every change one
    transaction committed (500 new cards for a chunk of a fan-out). Same guarantees (after
    commit, at least once, de-duplicate on ``context["eventId"]``). Implement it instead of
    ``hub_card_changed`` when a change costs a round trip to something, so a batch can cost one.
    """


@hookspec
def hub_analytics_event(hub: Hub, event: dict[str, Any]) -> None:
    """An analytics event was recorded.

    ``event`` has the shape of PROTOCOLS.md §2 (``id``, ``endUserId``, ``analyticsEvent``,
    ``timestamp``, contexts) plus ``environmentId``. Called from a worker after commit, at least
    once: de-duplicate on ``event["id"]``.
    """


@hookspec(firstresult=True)
def hub_send_push(hub: Hub, notification: dict[str, Any], device: dict[str, Any]
                  ) -> dict[str, Any] | None:
    """Send one push notification to one device.

    Return ``None`` when the device's ``platform`` is not yours, so the next plugin is asked; the
    first non-``None`` result wins (Hub calls it with :func:`hub.plugins.call_first`, which
    awaits ``async`` implementations one at a time; hook wrappers are refused on this hook).
    ``notification`` is ``{"notificationId", "environmentId", "userId", "title", "body", "data"
    (string values), "cardInstanceId" (or None), "scenario" ("newCard" | "unsnoozedCard" |
    None), "priority" ("high" | "normal"), "ttlSeconds", "collapseKey"}``; ``device`` is one of
    ``hub_push_devices``. A result is ``{"status": "sent" | "invalid_device" | "retry" |
    "failed", "provider": name, "detail": str, "retryAfter": seconds | None}``: Hub marks an
    ``invalid_device`` invalid (``hub_push_device_invalid``) and tries a ``retry`` again later,
    no sooner than ``retryAfter``.
    """


@hookspec
def hub_push_devices(hub: Hub, environment_id: str, user_ids: list[str], platforms: list[str]
                     ) -> list[dict[str, Any]] | None:
    """The devices push may go to: every *valid* device of those customers on those platforms.

    Each device is a dict with at least ``deviceId``, ``userId``, ``platform`` and ``token``
    (the built-in ``sdk_streams`` plugin gives the shape of ``POST /v1/{env}/sdk/devices``). Hub
    concatenates every plugin's list, so a plugin that registers devices of its own (a platform
    Hub does not know) adds them here and sends to them with ``hub_send_push``. Called from
    workers; ``async`` implementations are awaited.
    """


@hookspec
def hub_push_device_invalid(hub: Hub, environment_id: str, device: dict[str, Any], detail: str) -> None:
    """A push provider refused ``device``'s token for good (unregistered, expired, wrong app).

    The plugin that owns the device stops returning it from ``hub_push_devices`` until the app
    registers it again, and keeps ``detail`` as its last error. Called at least once.
    """


@hookspec
def hub_push_device_counts(hub: Hub, environment_id: str) -> dict[str, dict[str, int]] | None:
    """How many devices an environment has, by platform and state: ``{"ios": {"valid": 3,
    "invalid": 1}}``. Hub adds up every plugin's counts for ``GET /v1/{env}/push/health`` and
    ``/metrics``."""


@hookspec
def hub_customer_changed(hub: Hub, customer: dict[str, Any], changes: dict[str, Any]) -> None:
    """A customer profile was created, changed, deleted or erased.

    Called from a worker after commit, at least once. ``customer`` is the profile as the API
    returns it (with ``environmentId``); for a deleted or erased customer it is only
    ``{"userId", "environmentId"}``. ``changes`` always has every key: ``{"created": bool,
    "deleted": bool, "erased": bool, "fields": [names], "tags": bool, "preferences": bool,
    "isTestUser": bool}``. A plugin that keeps its own data about customers must delete it on
    ``erased``.
    """

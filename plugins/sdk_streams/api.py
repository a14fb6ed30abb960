"""End-user SDK routes: keys, feed, actions, SDK analytics, devices and preferences.

``/v1/{env}/sdk-keys`` is for API clients (the customer's staff and scripts); every
``/v1/{env}/sdk/...`` route is for end users' apps and takes an end-user JWT
(:mod:`hub_plugins.sdk_streams.auth`). An end user only ever sees their own cards: a card of
anyone else answers 404, exactly as a card that does not exist.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.params import FromPath, JSONBody
from sqlalchemy import bindparam, select

from hub.api.problems import FieldError, Problem, invalid
from hub.app import HubDep
from hub.core import analytics as core_analytics
from hub.core import lifecycle
from hub.core.clock import now
from hub.core.customers import FieldIssue
from hub.db import tables
from hub.services import cards as card_service
from hub.services import customers
from hub.services.analytics import record_events
from hub.services.cards import CONTAINER_ID, card_event, card_json
from hub.services.outbox import transaction
from hub_plugins.sdk_streams import auth, devices
from hub_plugins.sdk_streams import cards as sdk_cards
from hub_plugins.sdk_streams.auth import SDK_ROUTE, EndUser, EndUserDep

KEY_TAGS = ["sdk keys"]
SDK_TAGS = ["sdk"]


def _problem(issues: list[FieldIssue], status: int = 422) -> Problem:
    detail = "; ".join(f"{i.field}: {i.reason}" for i in issues)
    return Problem(status, detail, errors=[FieldError(i.field or "body", i.reason) for i in issues])


# --- SDK keys (API clients) -----------------------------------------------------------------


class SdkKeyIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Exactly one of ``pem`` (a PEM public key, RSA >= 2048 bits or EC P-256) and ``jwksUrl``."""

    issuer: str
    audience: str
    pem: str | None = None
    jwksUrl: str | None = None
    name: str = ""


class SdkKey(msgspec.Struct):
    keyId: str
    kind: str
    name: str
    issuer: str
    audience: str
    jwksUrl: str | None
    publicKeyPem: str | None
    algorithms: list[str]
    createdAt: str | None


class SdkKeys(msgspec.Struct):
    keys: list[SdkKey]


@get("/v1/{env:str}/sdk-keys", opt={"permission": "sdk_keys:read"}, tags=KEY_TAGS,
     summary="SDK keys: what end-user tokens are checked against")
async def list_sdk_keys(hub: HubDep, env: FromPath[str]) -> SdkKeys:
    return msgspec.convert({"keys": await auth.list_keys(hub, env)}, SdkKeys)


@post("/v1/{env:str}/sdk-keys", opt={"permission": "sdk_keys:write"}, tags=KEY_TAGS, status_code=201,
      summary="Register a PEM public key or a JWKS URL for end-user tokens")
async def create_sdk_key(hub: HubDep, env: FromPath[str], data: JSONBody[SdkKeyIn]) -> SdkKey:
    """Tokens signed (RS256 or ES256) by this key with ``iss`` = ``issuer`` and ``aud``
    naming ``audience`` are accepted on ``/v1/{env}/sdk/...``. A JWKS URL is fetched now (and
    then every ``HUB_SDK_STREAMS_JWKS_CACHE_SECONDS``); it must reach a public address unless
    ``HUB_ALLOW_PRIVATE_URLS``."""
    try:
        created = await auth.add_key(hub, env, issuer=data.issuer, audience=data.audience, pem=data.pem,
                                     jwks_url=data.jwksUrl, name=data.name)
    except auth.SdkKeyError as exc:
        raise _problem(exc.issues, exc.status) from None
    return msgspec.convert(created, SdkKey)


@delete("/v1/{env:str}/sdk-keys/{key_id:str}", opt={"permission": "sdk_keys:write"}, tags=KEY_TAGS,
        status_code=204, summary="Delete an SDK key (tokens it signed stop working)")
async def delete_sdk_key(hub: HubDep, env: FromPath[str], key_id: FromPath[str]) -> None:
    if not _plain_id(key_id) or not await auth.delete_key(hub, env, key_id):
        raise Problem(404, f"no SDK key {key_id!r}", errors=[FieldError("path.keyId", "no such key")])


def _plain_id(value: str, limit: int = 36) -> bool:
    return 0 < len(value) <= limit and not any(ord(ch) < 32 or ord(ch) == 127 for ch in value)


# --- the feed -------------------------------------------------------------------------------


class SdkCard(msgspec.Struct):
    """A card as an app shows it (``content`` holds the rendered elements)."""

    cardInstanceId: str
    lifecycleId: str
    status: str
    priority: int
    targetStreamIds: list[str]
    targetPlatforms: list[str]
    templateId: str
    templateName: str
    content: dict[str, Any]
    values: dict[str, Any] | None
    flowConfigId: str | None
    flowInstanceId: str | None
    embargoUntil: str | None
    expiresAt: str | None
    snoozedUntil: str | None
    publishedAt: str | None
    updatedAt: str | None
    closedAt: str | None


class Feed(msgspec.Struct):
    cards: list[SdkCard]
    version: str
    pollSeconds: int


@get("/v1/{env:str}/sdk/streams/{container_id:str}/cards", **SDK_ROUTE,
     tags=SDK_TAGS, summary="The end user's cards in a stream container (ETag: 304 when unchanged)")
async def feed(request: Request[Any, Any, Any], hub: HubDep, user: EndUserDep,
               container_id: FromPath[str]) -> Response[Feed]:
    """Active cards whose ``targetStreamIds`` name the container, priority 10 first, then newest
    first. Send the ``ETag`` back as ``If-None-Match``: an unchanged feed answers 304."""
    if not CONTAINER_ID.fullmatch(container_id):
        raise invalid("path.containerId", "must be 1-64 letters, digits, '-' or '_'")
    version = await sdk_cards.feed_version(hub, user.env, user.user_id)
    headers = {"ETag": f'"{version}"', "Cache-Control": "private, no-cache"}
    if sdk_cards.etag_matches(request.headers.get("if-none-match"), version):
        return Response(content=b"", status_code=304, headers=headers)  # type: ignore[arg-type]
    settings = hub.plugin_settings["sdk_streams"]
    cards = await sdk_cards.feed_cards(hub, user.env, user.user_id, container_id, settings.feed_limit)
    body = msgspec.convert({"cards": cards, "version": version, "pollSeconds": settings.poll_seconds}, Feed)
    return Response(content=body, headers=headers)


# --- actions --------------------------------------------------------------------------------


class SubmitIn(msgspec.Struct, forbid_unknown_fields=True):
    values: dict[str, Any] = {}


class SnoozeIn(msgspec.Struct, forbid_unknown_fields=True):
    until: str


class VoteIn(msgspec.Struct, forbid_unknown_fields=True):
    direction: Literal["up", "down"]
    message: str | None = None


class CardAnswer(msgspec.Struct):
    card: SdkCard


def _no_card(card_id: str) -> Problem:
    return Problem(404, f"no card {card_id!r}", errors=[FieldError("path.cardInstanceId", "no such card")])


async def _act(hub: Any, user: EndUser, card_id: str, action: str, **kwargs: Any) -> CardAnswer:
    if not _plain_id(card_id):
        raise _no_card(card_id)
    try:
        card = await card_service.act(hub, user.env, card_id, action, user_id=user.user_id,
                                      source="user", **kwargs)
    except card_service.CardNotFound:
        raise _no_card(card_id) from None
    except card_service.CardActionError as exc:
        errors = [FieldError(i.field, i.reason) for i in exc.issues]
        raise Problem(exc.status, str(exc), errors=errors) from None
    return CardAnswer(msgspec.convert(sdk_cards.sdk_card(card), SdkCard))


@post("/v1/{env:str}/sdk/cards/{card_id:str}/submit", **SDK_ROUTE,
      tags=SDK_TAGS, status_code=200, summary="Submit a card's form")
async def submit(hub: HubDep, user: EndUserDep, card_id: FromPath[str],
                 data: JSONBody[SubmitIn]) -> CardAnswer:
    """``values`` are checked against the card's inputs (422 naming ``values.<input>``)."""
    return await _act(hub, user, card_id, "submit", values=data.values)


@post("/v1/{env:str}/sdk/cards/{card_id:str}/dismiss", **SDK_ROUTE,
      tags=SDK_TAGS, status_code=200, summary="Dismiss a card")
async def dismiss(hub: HubDep, user: EndUserDep, card_id: FromPath[str]) -> CardAnswer:
    return await _act(hub, user, card_id, "dismiss")


@post("/v1/{env:str}/sdk/cards/{card_id:str}/snooze", **SDK_ROUTE,
      tags=SDK_TAGS, status_code=200, summary="Snooze a card until a time")
async def snooze(hub: HubDep, user: EndUserDep, card_id: FromPath[str],
                 data: JSONBody[SnoozeIn]) -> CardAnswer:
    """``until``: an ISO 8601 date-time with an offset, in the future."""
    try:
        until = core_analytics.parse_timestamp(data.until)
    except ValueError as exc:
        raise invalid("until", str(exc)) from None
    if until <= now():
        raise invalid("until", "must be in the future")
    return await _act(hub, user, card_id, "snooze", until=until)


_CARD = select(tables.card).where(tables.card.c.environment_id == bindparam("env"),
                                  tables.card.c.id == bindparam("card_id"))


@post("/v1/{env:str}/sdk/cards/{card_id:str}/vote", **SDK_ROUTE,
      tags=SDK_TAGS, status_code=200, summary="Vote a card up or down (with a message)")
async def vote(hub: HubDep, user: EndUserDep, card_id: FromPath[str], data: JSONBody[VoteIn]) -> CardAnswer:
    """Records ``card-voted-up`` / ``card-voted-down``; the card itself does not change."""
    if data.message is not None and (len(data.message) > 2000 or "\x00" in data.message):
        raise invalid("message", "must be at most 2000 characters")
    rows = await hub.db.read(_CARD, {"env": user.env, "card_id": card_id}) if _plain_id(card_id) else []
    if not rows or rows[0]["user_id"] != user.user_id:
        raise _no_card(card_id)
    if not lifecycle.is_open(rows[0]["status"]):
        raise Problem(409, f"the card is {rows[0]['status']}: closed cards take no votes")
    try:
        await card_service.vote(hub, user.env, card_id, up=data.direction == "up", user_id=user.user_id,
                                message=data.message or None, source="user")
    except card_service.CardNotFound:
        raise _no_card(card_id) from None
    return CardAnswer(msgspec.convert(sdk_cards.sdk_card(card_json(rows[0])), SdkCard))


# --- SDK analytics --------------------------------------------------------------------------


class SdkEvents(msgspec.Struct, forbid_unknown_fields=True):
    """Each event: ``{"analyticsEvent": <SDK event name>, "id"?: UUID, "timestamp"?,
    "properties"?, "hostContext"?, "sdkContext"?, "streamContext"?, "cardContext"?:
    {"cardInstanceId", "cardViewState"?}, "eventContext"?: {"userLocalTimestamp"?}}``."""

    events: list[Any]


class Accepted(msgspec.Struct):
    accepted: int


_FLAT = {("cardContext", "cardInstanceId"): "cardInstanceId",
         ("cardContext", "cardViewState"): "cardViewState",
         ("eventContext", "userLocalTimestamp"): "userLocalTimestamp"}
_NESTED = {flat: f"{outer}.{inner}" for (outer, inner), flat in _FLAT.items()}


def _flatten(raw: Any) -> tuple[Any, list[FieldIssue]]:
    """The protocol's ``cardContext`` / ``eventContext`` as the flat keys the core checks."""
    if not isinstance(raw, dict):
        return raw, []
    flat = {k: v for k, v in raw.items() if k not in ("cardContext", "eventContext")}
    issues = []
    for outer in ("cardContext", "eventContext"):
        given = raw.get(outer)
        if given is None:
            continue
        if not isinstance(given, dict):
            issues.append(FieldIssue(outer, "must be an object"))
            continue
        for inner, value in given.items():
            name = _FLAT.get((outer, inner))
            if name is None:
                issues.append(FieldIssue(f"{outer}.{inner}", "unknown field (unknown fields are rejected)"))
            else:
                flat[name] = value
    for name in _NESTED:
        if name in raw:  # only the nested spelling is part of the protocol
            issues.append(FieldIssue(name, f"unknown field: send it as {_NESTED[name]}"))
    return flat, issues


@post("/v1/{env:str}/sdk/events", **SDK_ROUTE, tags=SDK_TAGS,
      status_code=202, summary="Report SDK analytics events (a batch)")
async def sdk_events(request: Request[Any, Any, Any], hub: HubDep, user: EndUserDep,
                     data: JSONBody[SdkEvents]) -> Accepted:
    """Only the SDK events of the analytics protocol are accepted; one bad event rejects the
    batch (422 naming ``events[i].<field>``). Card events name a card of this user. Events are
    recorded with ``eventContext.actionSource = "user"``; an event ``id`` is de-duplicated."""
    limit = hub.plugin_settings["sdk_streams"].events_batch_limit
    if len(data.events) > limit:
        raise Problem(413, f"events: at most {limit} per request (HUB_SDK_STREAMS_EVENTS_BATCH_LIMIT)",
                      errors=[FieldError("events", f"at most {limit} per request")])
    if not data.events:
        raise invalid("events", "must hold at least one event")
    stamp = now()
    checked, issues = [], []
    for index, raw in enumerate(data.events):
        flat, more = _flatten(raw)
        fields, found = core_analytics.check_sdk_event(flat, stamp)
        for issue in more + [FieldIssue(_NESTED.get(i.field, i.field), i.reason) for i in found]:
            issues.append(FieldIssue(f"events[{index}]" + (f".{issue.field}" if issue.field else ""),
                                     issue.reason))
        checked.append(fields)
    if issues:
        raise _problem(issues)
    cards = await _event_cards(hub, user, checked)
    ip = request.client.host if request.client else None
    events = [_build_sdk_event(user, fields, cards, stamp, ip) for fields in checked]
    async with transaction(hub) as tx:
        await record_events(tx, user.env, events,
                            announce=bool(hub.pm.hook.hub_analytics_event.get_hookimpls()))
    return Accepted(len(events))


async def _event_cards(hub: Any, user: EndUser, checked: list[dict[str, Any]]) -> dict[str, Any]:
    ids = {f["card_instance_id"] for f in checked if f["card_instance_id"]}
    rows = {}
    for card_id in ids:
        found = await hub.db.read(_CARD, {"env": user.env, "card_id": card_id})
        if found and found[0]["user_id"] == user.user_id:
            rows[card_id] = found[0]
    missing = [i for i, f in enumerate(checked)
               if f["card_instance_id"] and f["card_instance_id"] not in rows]
    if missing:
        raise invalid(f"events[{missing[0]}].cardContext.cardInstanceId", "no such card")
    return rows


_EVENT_NAMESPACE = uuid.UUID("0b8e5c1e-3f4d-4a57-9c2e-5d1b7a6f9e21")


def _build_sdk_event(user: EndUser, fields: dict[str, Any], cards: dict[str, Any], stamp: Any,
                     ip: str | None) -> dict[str, Any]:
    when = fields["timestamp"] or stamp
    context = {"actionSource": "user", "ip": ip, "userLocalTimestamp": fields["user_local_timestamp"]}
    # A client's own event id is scoped to its user, so no one can shadow another user's event.
    event_id = (str(uuid.uuid5(_EVENT_NAMESPACE, f"{user.env}:{user.user_id}:{fields['event_id']}"))
                if fields["event_id"] else None)
    row = cards.get(fields["card_instance_id"] or "")
    base = card_event(row, fields["name"], when, source="user") if row is not None else None
    return core_analytics.build_event(
        fields["name"], user_id=user.user_id, timestamp=when, properties=fields["properties"],
        event_context=context, host_context=fields["host_context"],
        card={**base["cardContext"], "cardViewState": fields["card_view_state"]} if base else None,
        platform=base["platformContext"] if base else None,
        sdk_context=fields["sdk_context"], stream_context=fields["stream_context"], event_id=event_id)


# --- devices --------------------------------------------------------------------------------


class DeviceIn(msgspec.Struct, forbid_unknown_fields=True):
    platform: str
    token: str
    appId: str | None = None
    apnsTopic: str | None = None


class Device(msgspec.Struct):
    deviceId: str
    platform: str
    token: str
    appId: str | None
    apnsTopic: str | None
    state: str
    lastError: str | None
    createdAt: str | None
    updatedAt: str | None


class Devices(msgspec.Struct):
    devices: list[Device]


@post("/v1/{env:str}/sdk/devices", **SDK_ROUTE, tags=SDK_TAGS,
      status_code=201, summary="Register this device's push token")
async def register_device(hub: HubDep, user: EndUserDep, data: JSONBody[DeviceIn]) -> Response[Device]:
    """201 for a new token, 200 when it was registered already (it now belongs to this user and
    is valid again)."""
    try:
        found, created = await devices.register_device(
            hub, user.env, user.user_id, platform=data.platform, token=data.token, app_id=data.appId,
            apns_topic=data.apnsTopic)
    except devices.DeviceError as exc:
        raise _problem(exc.issues) from None
    return Response(msgspec.convert(found, Device), status_code=201 if created else 200)


@get("/v1/{env:str}/sdk/devices", **SDK_ROUTE, tags=SDK_TAGS,
     summary="The end user's devices")
async def list_devices(hub: HubDep, user: EndUserDep) -> Devices:
    return msgspec.convert({"devices": await devices.list_devices(hub, user.env, user.user_id)}, Devices)


@delete("/v1/{env:str}/sdk/devices/{device_id:str}", **SDK_ROUTE,
        tags=SDK_TAGS, status_code=204, summary="Remove a device (no more push to it)")
async def delete_device(hub: HubDep, user: EndUserDep, device_id: FromPath[str]) -> None:
    if not _plain_id(device_id) or not await devices.delete_device(hub, user.env, user.user_id, device_id):
        raise Problem(404, f"no device {device_id!r}", errors=[FieldError("path.deviceId", "no such device")])


# --- preferences ----------------------------------------------------------------------------


class Preferences(msgspec.Struct):
    timezone: str | None
    notificationsEnabled: bool
    notificationWindows: dict[str, Any]


async def _preferences(hub: Any, user: EndUser) -> Preferences:
    try:
        found = await customers.get_customer(hub, user.env, user.user_id)
    except customers.NotFound:  # deleted since this process last saw them: a new profile
        await customers.mark_seen(hub, user.env, user.user_id)
        found = await customers.get_customer(hub, user.env, user.user_id)
    return msgspec.convert(found.preferences, Preferences)


@get("/v1/{env:str}/sdk/preferences", **SDK_ROUTE, tags=SDK_TAGS,
     summary="The end user's notification preferences")
async def get_preferences(hub: HubDep, user: EndUserDep) -> Preferences:
    return await _preferences(hub, user)


@put("/v1/{env:str}/sdk/preferences", **SDK_ROUTE, tags=SDK_TAGS,
     summary="Change the end user's notification preferences")
async def put_preferences(hub: HubDep, user: EndUserDep, data: JSONBody[dict[str, Any]]) -> Preferences:
    """A partial object: ``timezone`` (IANA), ``notificationsEnabled``, ``notificationWindows``
    (by weekday, merged with the stored ones); ``null`` resets one to its default."""
    result = await customers.upsert_customers(hub, user.env, [{"userId": user.user_id, "preferences": data}])
    errors = result["results"][0].get("errors") or []
    if errors:
        prefix = "users[0].preferences"
        raise _problem([FieldIssue(e["field"].removeprefix(prefix).lstrip(".") or "body", e["reason"])
                        for e in errors])
    return await _preferences(hub, user)


ROUTES: list[Any] = [list_sdk_keys, create_sdk_key, delete_sdk_key, feed, submit, dismiss, snooze, vote,
                     sdk_events, register_device, list_devices, delete_device, get_preferences,
                     put_preferences]
JOBS: list[Any] = []

"""Push notifications, the pure part: when a customer may be notified, what a notification holds,
how long to wait before trying a device again.

``hub.services.push`` stores notifications, finds devices and calls the providers
(``hub_send_push``); everything here is free of I/O so it can be tested exhaustively.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from hub.core.customers import DEFAULT_PREFERENCES, WEEKDAYS

SCENARIOS: Final = ("newCard", "unsnoozedCard")
"""Why a card's push is sent (``notificationScenario`` of ``notification-sent``). A flow's own
``push`` step is not about a card being shown, so its notifications have no scenario."""

STATUSES: Final = ("scheduled", "sent", "failed", "cancelled", "skipped")
"""``scheduled`` (waiting for its time, or for a retry), ``sent`` (at least one device accepted it),
``failed`` (no device accepted it and nothing is left to retry), ``cancelled`` (its card closed
first), ``skipped`` (nothing to send to: notifications off, no device, no provider)."""

DELIVERY_STATUSES: Final = ("sent", "invalid_device", "retry", "failed", "unsupported")
"""What happened to one device: the provider's answer, or ``unsupported`` when no plugin sends
to its platform."""

MAX_PAYLOAD_BYTES: Final = 4096
"""FCM and APNs both refuse payloads above 4 KiB; Hub checks before anything is sent."""

PRIORITIES: Final = ("high", "normal")

_encode = msgspec.json.Encoder().encode


def payload_size(title: str, body: str, data: Mapping[str, str]) -> int:
    """Bytes of the part of a notification every provider sends: title, body and data as JSON.

    Providers add their own envelope (FCM's ``message``, APNs' ``aps``) and check the exact size
    again; this is the check a flow author can act on before anything leaves Hub.
    """
    return len(_encode({"notification": {"title": title, "body": body}, "data": dict(data)}))


def payload_error(title: str, body: str, data: Mapping[str, str]) -> str | None:
    """Why the notification cannot be sent (too large), or ``None``."""
    size = payload_size(title, body, data)
    if size > MAX_PAYLOAD_BYTES - 256:  # room for the provider's envelope and the device token
        return (f"the push payload is {size} bytes: title, body and data must stay under "
                f"{MAX_PAYLOAD_BYTES - 256} bytes (providers allow {MAX_PAYLOAD_BYTES} with their envelope)")
    return None


def card_data(notification_detail: Mapping[str, Any] | None, card_id: str, scenario: str,
              instance_id: str | None) -> dict[str, str]:
    """The ``data`` of a card's push: the invocation's ``notificationDetail``, then the card's ids
    and the scenario (which win over a detail of the same name)."""
    data = data_strings(notification_detail)
    data.update({"cardInstanceId": card_id, "notificationScenario": scenario})
    if instance_id:
        data["flowInstanceId"] = instance_id
    return data


def card_payload_error(push: Mapping[str, Any], notification_detail: Mapping[str, Any] | None,
                       card_id: str, instance_id: str | None) -> str | None:
    """Why a card's push template, as rendered, is too large to send in any scenario, or ``None``.

    Checked when the card is made, so the flow's card step fails with the reason: the longest
    scenario name counts, so a card that passes can also be pushed again when it is unsnoozed.
    """
    longest = max(SCENARIOS, key=len)
    return payload_error(str(push.get("title") or ""), str(push.get("body") or ""),
                         card_data(notification_detail, card_id, longest, instance_id))


def priority_for(card_priority: int | None) -> str:
    """Cards of priority 7 and above wake the device (``high``); the rest are ``normal``."""
    return "high" if card_priority is not None and card_priority >= 7 else "normal"


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _local(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """``day`` at ``minutes`` past midnight in ``zone``, as UTC (24:00 is the next midnight).

    A time that does not exist (the hour skipped when clocks go forward) resolves forward, a time
    that happens twice resolves to the first, as :mod:`zoneinfo` does with ``fold=0``.
    """
    extra, minutes = divmod(minutes, 24 * 60)
    local = datetime.combine(day + timedelta(days=extra), time(minutes // 60, minutes % 60), zone)
    return local.astimezone(UTC)


def next_window(preferences: Mapping[str, Any], at: datetime) -> datetime | None:
    """The first moment at or after ``at`` the customer accepts notifications, or ``None``.

    ``preferences`` are a customer's (``timezone``, ``notificationsEnabled``,
    ``notificationWindows``). Windows are per weekday in the customer's own timezone: a weekday
    absent from ``notificationWindows`` accepts any time, a weekday with an empty list none.
    ``None`` means never: notifications are off, or every weekday has an empty list.
    """
    prefs = {**DEFAULT_PREFERENCES, **preferences}
    if not prefs.get("notificationsEnabled", True):
        return None
    windows: Mapping[str, Any] = prefs.get("notificationWindows") or {}
    if not windows:
        return at
    zone = _zone(prefs.get("timezone"))
    local_now = at.astimezone(zone)
    for offset in range(8):
        day = local_now.date() + timedelta(days=offset)
        allowed = windows.get(WEEKDAYS[day.weekday()])
        if allowed is None:  # any time that day
            return at if offset == 0 else _local(day, 0, zone)
        starts = [max(_local(day, _minutes(w["from"]), zone), at) for w in allowed
                  if _local(day, _minutes(w["to"]), zone) > at]
        if starts:
            return min(starts)
    return None


def retry_delay(attempt: int, retry_after: float | None, *, base: float, cap: float,
                rng: random.Random | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential with full jitter, never less
    than what the provider asked for (``retry_after``), never more than ``cap``."""
    rng = rng or random.Random()
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = rng.uniform(ceiling / 2, ceiling)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, float(retry_after))
    return min(max(delay, 0.0), max(cap, float(retry_after or 0)))


def data_strings(data: Mapping[str, Any] | None) -> dict[str, str]:
    """A notification's ``data``: every value a string, as FCM requires."""
    if not data:
        return {}
    return {str(k): v if isinstance(v, str) else _encode(v).decode() for k, v in data.items()}


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value is not None else None

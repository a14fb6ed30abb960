"""The card lifecycle as a pure state machine: which actions a card's status allows, where each
one leads and which analytics event it emits.

Open states are ``active``, ``embargoed`` and ``snoozed``; closed states are ``completed``,
``dismissed``, ``cancelled`` and ``expired``, and a closed card never reopens::

    new card ──(embargo in the future)──> embargoed ──publish──> active   (card-published)
    new card ──(otherwise)──────────────> active                          (card-published)
    active ──snooze(until)──> snoozed ──unsnooze──> active                (card-snoozed / card-unsnoozed)
    snoozed ──snooze(until)──> snoozed        (moves the until)           (card-snoozed)
    active | snoozed ──complete──> completed  ──dismiss──> dismissed      (card-completed / card-dismissed)
    any open ──cancel──> cancelled  ──expire──> expired                   (card-cancelled / card-expired)

``publish``, ``unsnooze`` and ``expire`` are driven by timers; :func:`due_action` says which of
them is due for a card at a given time (expiry first: it wins over everything else once due).
Every successful :func:`apply` is one transition and emits exactly one event. Nothing here does
I/O or reads the clock: callers pass ``now``. Every datetime must be timezone-aware.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

OPEN_STATES: frozenset[str] = frozenset({"active", "embargoed", "snoozed"})
CLOSED_STATES: frozenset[str] = frozenset({"completed", "dismissed", "cancelled", "expired"})
ALL_STATES: frozenset[str] = OPEN_STATES | CLOSED_STATES

ACTIONS = ("publish", "snooze", "unsnooze", "expire", "complete", "dismiss", "cancel")
"""Every lifecycle action; ``publish`` is the end of an embargo."""

TIMER_ACTIONS: frozenset[str] = frozenset({"publish", "unsnooze", "expire"})
"""The actions a timer drives (see :func:`due_action`); the others come from people or flows."""

CUSTOMER_ACTIONS: frozenset[str] = frozenset({"complete", "dismiss", "snooze"})
"""The actions an end user takes on a card an SDK shows."""

EVENTS: Mapping[str, str] = MappingProxyType({
    "publish": "card-published",
    "snooze": "card-snoozed",
    "unsnooze": "card-unsnoozed",
    "expire": "card-expired",
    "complete": "card-completed",
    "dismiss": "card-dismissed",
    "cancel": "card-cancelled",
})
"""The analytics event each action emits."""

TARGETS: Mapping[str, str] = MappingProxyType({
    "publish": "active",
    "snooze": "snoozed",
    "unsnooze": "active",
    "expire": "expired",
    "complete": "completed",
    "dismiss": "dismissed",
    "cancel": "cancelled",
})
"""The status each action leads to."""

_ALLOWED: Mapping[str, frozenset[str]] = MappingProxyType({
    "embargoed": frozenset({"publish", "expire", "cancel"}),
    # an SDK may still show a snoozed card, so the customer may complete or dismiss it
    "active": frozenset({"snooze", "expire", "complete", "dismiss", "cancel"}),
    "snoozed": frozenset({"snooze", "unsnooze", "expire", "complete", "dismiss", "cancel"}),
    **{status: frozenset[str]() for status in CLOSED_STATES},
})


class InvalidTransition(ValueError):
    """An action the card's status does not allow (or an unknown status, action or a bad until)."""

    def __init__(self, message: str, *, status: str | None = None, action: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.action = action


@dataclass(frozen=True)
class Change:
    """One transition: from ``previous`` (``None`` for a new card) to ``status``, emitting ``event``.

    ``snoozed_until`` is the card's snooze end after the change: set when the card is snoozed,
    ``None`` otherwise (so writing it back clears a finished snooze).
    """

    previous: str | None
    status: str
    event: str
    snoozed_until: datetime | None = None

    @property
    def closed(self) -> bool:
        """Whether this change closed the card."""
        return self.status in CLOSED_STATES


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value.isoformat()}")


def _check_status(status: str, action: str | None = None) -> None:
    if status not in ALL_STATES:
        raise InvalidTransition(f"unknown card status {status!r}; one of {', '.join(sorted(ALL_STATES))}",
                                status=status, action=action)


def is_open(status: str) -> bool:
    """Whether a card in ``status`` is still open (active, embargoed or snoozed)."""
    _check_status(status)
    return status in OPEN_STATES


def allowed(status: str) -> frozenset[str]:
    """The actions allowed from ``status`` (none from a closed one)."""
    _check_status(status)
    return _ALLOWED[status]


def create(*, embargo_until: datetime | None, now: datetime) -> Change:
    """The first state of a new card: ``embargoed`` while an embargo lies in the future, else
    ``active`` (an embargo that has already ended is no embargo)."""
    _require_aware("now", now)
    if embargo_until is not None:
        _require_aware("embargo_until", embargo_until)
        if embargo_until > now:
            return Change(previous=None, status="embargoed", event="card-embargoed")
    return Change(previous=None, status="active", event="card-published")


def apply(status: str, action: str, *, now: datetime, until: datetime | None = None,
          expires_at: datetime | None = None) -> Change:
    """Apply ``action`` to a card in ``status``; raise :class:`InvalidTransition` if not allowed.

    ``until`` is the snooze end, required by ``snooze`` and later than ``now``; other actions
    ignore it. With ``expires_at`` given, an open card whose expiry is due accepts only
    ``expire`` (and ``cancel``, which closes it anyway): expiry wins over everything else.
    """
    _require_aware("now", now)
    if action not in ACTIONS:
        raise InvalidTransition(f"unknown card action {action!r} on a card that is {status}; "
                                f"one of {', '.join(ACTIONS)}",
                                status=status, action=action)
    _check_status(status, action)
    if action not in _ALLOWED[status]:
        kind = "closed" if status in CLOSED_STATES else "open"
        raise InvalidTransition(f"cannot {action} a card that is {status} ({kind}); allowed: "
                                f"{', '.join(sorted(_ALLOWED[status])) or 'nothing'}",
                                status=status, action=action)
    if expires_at is not None:
        _require_aware("expires_at", expires_at)
        if now >= expires_at and action not in ("expire", "cancel"):
            raise InvalidTransition(f"cannot {action} a card that is {status}: it expired at "
                                    f"{expires_at.isoformat()}", status=status, action=action)
    snoozed_until: datetime | None = None
    if action == "snooze":
        if until is None:
            raise InvalidTransition(f"cannot snooze a card that is {status} without an until",
                                    status=status, action=action)
        if until.tzinfo is None or until.utcoffset() is None:
            raise InvalidTransition(f"cannot snooze a card that is {status}: until "
                                    f"{until.isoformat()} has no timezone", status=status, action=action)
        if until <= now:
            raise InvalidTransition(f"cannot snooze a card that is {status} until {until.isoformat()}: "
                                    "that is not in the future", status=status, action=action)
        snoozed_until = until
    return Change(previous=status, status=TARGETS[action], event=EVENTS[action], snoozed_until=snoozed_until)


def due_action(status: str, *, now: datetime, embargo_until: datetime | None,
               snoozed_until: datetime | None, expires_at: datetime | None) -> str | None:
    """The timer-driven action due for a card at ``now``, or ``None``.

    Expiry first (it wins over everything once due), then ``publish`` for an embargoed card whose
    embargo has ended, then ``unsnooze`` for a snoozed card whose snooze has ended. A time is due
    when ``now >= time``. An embargoed card without an embargo time, or a snoozed one without a
    snooze time, has nothing holding it back, so it is due at once. Timer jobs should ask this
    with the card's current times rather than trust the timer that woke them: a snooze that was
    moved leaves an old timer behind.
    """
    _require_aware("now", now)
    _check_status(status)
    for name, value in (("embargo_until", embargo_until), ("snoozed_until", snoozed_until),
                        ("expires_at", expires_at)):
        if value is not None:
            _require_aware(name, value)
    if status in CLOSED_STATES:
        return None
    if expires_at is not None and now >= expires_at:
        return "expire"
    if status == "embargoed" and (embargo_until is None or now >= embargo_until):
        return "publish"
    if status == "snoozed" and (snoozed_until is None or now >= snoozed_until):
        return "unsnooze"
    return None

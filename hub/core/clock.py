"""The one source of "now", so tests can move time (``hub.testing.clock``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

_now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return _now()


def set_clock(function: Callable[[], datetime] | None) -> None:
    """Replace the clock (``None`` restores the real one). For tests."""
    global _now
    _now = function or (lambda: datetime.now(UTC))

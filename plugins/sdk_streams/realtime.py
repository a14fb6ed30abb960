"""Real-time card updates over WebSocket (``/v1/{env}/sdk/socket``), fanned out through Redis.

This module is what ``hooks.py`` delegates to: ``ROUTES`` (route handlers), ``JOBS`` (job
functions) and :func:`card_changed` (called for every ``hub_card_changed``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hub.app import Hub

ROUTES: list[Any] = []
JOBS: list[Any] = []


async def card_changed(hub: Hub, card: dict[str, Any], previous: dict[str, Any] | None,
                       context: dict[str, Any]) -> None:
    """Record the change in the user's event log and publish it to connected sockets."""

"""Outbound analytics webhooks: subscriptions, signed batched delivery, a delivery log, replay."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hub.app import Hub

ROUTES: list[Any] = []
JOBS: list[Any] = []


async def analytics_event(hub: Hub, event: dict[str, Any]) -> None:
    """Queue ``event`` for every active subscription that wants it."""

"""The card as apps see it: in the feed, in socket frames and in the JavaScript SDK."""

from __future__ import annotations

from typing import Any

SDK_CARD_FIELDS = (
    "cardInstanceId", "lifecycleId", "status", "priority", "targetStreamIds", "targetPlatforms",
    "templateId", "templateName", "content", "values", "flowConfigId", "flowInstanceId",
    "embargoUntil", "expiresAt", "snoozedUntil", "publishedAt", "updatedAt", "closedAt",
)


def sdk_card(card: dict[str, Any]) -> dict[str, Any]:
    """``card`` (as :func:`hub.services.cards.card_json` makes it) with only what an app may see."""
    return {name: card.get(name) for name in SDK_CARD_FIELDS}

"""Customer Center pages: one customer's feed, cards, analytics, sending them a flow."""

from __future__ import annotations

ROUTES: tuple[object, ...] = ()

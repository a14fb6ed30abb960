"""Inbound webhook triggers: ``POST /hooks/{token}`` starts a flow from a back-end's event."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []
JOBS: list[Any] = []

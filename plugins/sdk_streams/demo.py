"""The JavaScript SDK's static files and the demo page ``hub dev`` serves."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []

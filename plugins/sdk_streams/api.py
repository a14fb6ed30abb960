"""End-user SDK routes: keys, feed, actions, SDK analytics, devices and preferences."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []
JOBS: list[Any] = []

"""Tables of the inbound webhooks."""

from __future__ import annotations

from hub.db.tables import metadata  # noqa: F401

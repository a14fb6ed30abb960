"""Tables of the webhooks plugin (each half keeps its own module and its own migration branch)."""

from hub_plugins.webhooks import inbound_tables, outbound_tables  # noqa: F401  (register their tables)

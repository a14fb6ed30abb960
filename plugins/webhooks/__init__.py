"""Webhooks: inbound trigger endpoints that start flows (``inbound``) and outbound analytics
webhook subscriptions (``outbound``)."""

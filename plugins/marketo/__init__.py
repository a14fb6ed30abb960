"""Marketo self-service flow steps: Hub as a service provider for Marketo Smart Campaigns."""

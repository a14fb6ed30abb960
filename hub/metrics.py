"""Prometheus metrics, one registry per Hub (no globals, so tests can build several Hubs)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "hub_http_requests", "HTTP requests answered", ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "hub_http_request_duration_seconds", "Time to answer an HTTP request",
            ["method", "route"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.jobs = Counter(
            "hub_jobs", "Background jobs finished", ["job", "outcome"], registry=self.registry
        )
        self.outbox_pending = Gauge(
            "hub_outbox_pending", "Outbox rows not yet handed to the queue", registry=self.registry
        )
        self.queue_depth = Gauge(
            "hub_queue_depth", "Jobs waiting in the queue", registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

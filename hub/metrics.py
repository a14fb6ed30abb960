"""Prometheus metrics, one registry per Hub (no globals, so tests can build several Hubs)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Methods recorded as themselves; anything else a client sends is counted as "OTHER", so a
# client cannot grow the label set without bound.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


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
        self.push_sends = Gauge(
            "hub_push_sends", "Push sends recorded in the delivery log, by provider and outcome",
            ["provider", "status"], registry=self.registry)
        self.push_devices = Gauge(
            "hub_push_devices", "Push devices, by platform and state", ["platform", "state"],
            registry=self.registry)
        self.queue_depth = Gauge(
            "hub_queue_depth", "Jobs waiting in the queue", registry=self.registry
        )

        # (method, route, status) -> (counter child, histogram child): ``labels()`` takes a lock
        # and builds a key on every call; the children never change once made.
        self._http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered HTTP request and its duration (called for every request)."""
        if method not in _METHODS:
            method = "OTHER"
        key = (method, route, status)
        children = self._http_children.get(key)
        if children is None:
            children = (self.http_requests.labels(method, route, str(status)),
                        self.http_duration.labels(method, route))
            self._http_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)

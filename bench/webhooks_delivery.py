"""How fast analytics events reach a webhook receiver, batched and signed, with workers running.

Per backend, in a private temp dir::

    .venv/bin/python bench/webhooks_delivery.py [--backend postgres|sqlite|both] [--events 20000]

The benchmark sets Hub up (``hub migrate``, an environment, an admin client), starts a receiver
on loopback (a threaded HTTP server that checks every Standard Webhooks signature and answers
200) and creates one subscription to it (every event type). Events are custom analytics events
recorded in this process through ``hub.services.analytics.record_custom_events`` in batches of
``--record-batch`` (each batch one transaction and one announce job, as ``POST
/v1/{env}/events`` does). Two phases of ``--events`` events each:

1. **Backlog**: the events are recorded before any worker runs, then ``--workers`` ``hub
   worker`` processes start; reported: events / (last received - first received), i.e. how
   fast announcing plus delivery moves events once workers are going.
2. **Live**: with the workers running, the events are recorded as fast as this process can;
   reported: events / (last received - first recorded), how long recording alone took (the
   producer shares the CPUs with the workers), and the p50/p99 of (received - recorded).

Also reported: the number of POSTs and their mean size, duplicates (at least once allows them;
none are expected here) and bad signatures (must be 0). The run fails if an event is missing
after ``--timeout`` seconds. The table is printed and, unless ``--no-write``, written between
this benchmark's markers in ``docs/benchmarks.md``.

PostgreSQL: ``--pg-url`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/hub_e``) is
**emptied** first; Redis: ``--redis-url`` (default ``redis://127.0.0.1:6379/5``) is **flushed**
first, for both backends; give the benchmark stores nobody else uses.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from common import (
    HUB_BIN,
    BenchError,
    Server,
    command_line,
    database_url,
    hub_env,
    machine,
    markdown,
    postgres_version,
    prepare_hub,
    print_table,
    stopping,
    write_doc,
)

BEGIN = "<!-- bench/webhooks_delivery.py:begin (generated; edit outside the markers) -->"
END = "<!-- bench/webhooks_delivery.py:end -->"
ENV = "bench"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/hub_e"
DEFAULT_REDIS = "redis://127.0.0.1:6379/5"
TARGET_EPS = 2000.0
DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def log(backend: str, message: str) -> None:
    print(f"[{backend}] {message}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


# --- the receiver ----------------------------------------------------------------------------


@dataclass
class Received:
    secret: str = ""
    arrivals: dict[str, float] = field(default_factory=dict)  # event id -> first arrival time
    posts: int = 0
    events: int = 0
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def verified(secret: str, headers: Any, body: bytes) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s) for s in headers.get("webhook-signature", "").split())


def start_receiver(state: Received) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            stamp = time.time()
            good = verified(state.secret, self.headers, body)
            events = json.loads(body)["events"] if good else []
            with state.lock:
                state.posts += 1
                state.bad_signatures += not good
                state.events += len(events)
                for event in events:
                    state.arrivals.setdefault(event["id"], stamp)
            self.send_response(200 if good else 401)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# --- one backend -----------------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    events: int = 0
    delivered_s: float = 0.0
    backlog_s: float = 0.0
    record_s: float = 0.0
    posts: int = 0
    duplicates: int = 0
    bad_signatures: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    notes: list[str] = field(default_factory=list)


async def record(hub: Any, first_n: int, count: int, batch: int) -> dict[str, float]:
    """Record ``count`` custom events in batches; returns event id -> when it was committed."""
    from hub.services.analytics import record_custom_events

    recorded: dict[str, float] = {}
    for first in range(first_n, first_n + count, batch):
        items = [{"userId": f"u{n % 1000}", "name": "order-placed", "properties": {"n": n}}
                 for n in range(first, min(first + batch, first_n + count))]
        outcome = await record_custom_events(hub, ENV, items)
        stamp = time.time()
        recorded.update((r["id"], stamp) for r in outcome["results"])
    return recorded


async def wait_all(state: Received, ids: dict[str, float], seconds: float, servers: list[Server]) -> None:
    deadline = time.monotonic() + seconds
    while not all(i in state.arrivals for i in ids):
        if time.monotonic() > deadline:
            missing = sum(i not in state.arrivals for i in ids)
            raise BenchError(f"{missing} of {len(ids)} events did not arrive within {seconds:g} s")
        for server in servers:
            server.check_alive()
        await asyncio.sleep(0.05)


async def produce(env: dict[str, str], url: str, state: Received, args: argparse.Namespace,
                  result: Result, workdir: Path, servers: list[Server]) -> None:
    from hub.app import Hub
    from hub_plugins.webhooks import outbound_service

    os.environ.update({k: v for k, v in env.items() if k.startswith("HUB_WEBHOOKS_")})
    hub = Hub(load_settings_from(env))
    await hub.start()
    try:
        await hub.redis.flushdb()
        created = await outbound_service.create_subscription(hub, ENV, {"url": url})
        state.secret = created["secret"]
        # 1. A backlog: events recorded before any worker runs, then delivered by the workers.
        backlog = await record(hub, 0, args.events, args.record_batch)
        for n in range(args.workers):
            servers.append(Server(f"worker{n}", [HUB_BIN, "worker"], None, workdir, env, owns_redis=False))
        await wait_all(state, backlog, args.timeout, servers)
        times = [state.arrivals[i] for i in backlog]
        result.backlog_s = max(times) - min(times)
        # 2. Live: recorded as fast as this process can while the workers deliver.
        started = time.time()
        recorded = await record(hub, args.events, args.events, args.record_batch)
        result.record_s = time.time() - started
        await wait_all(state, recorded, args.timeout, servers)
        result.events = args.events
        result.delivered_s = max(state.arrivals[i] for i in recorded) - started
        result.posts = state.posts
        result.duplicates = state.events - len(state.arrivals)
        result.bad_signatures = state.bad_signatures
        latencies = [(state.arrivals[i] - recorded[i]) * 1000 for i in recorded]
        result.p50_ms, result.p99_ms = pct(latencies, 50), pct(latencies, 99)
    finally:
        await hub.close()


def load_settings_from(env: dict[str, str]) -> Any:
    from hub.settings import load_settings

    return load_settings(environ=env)


def run_backend(backend: str, args: argparse.Namespace, workdir: Path, servers: list[Server]) -> Result:
    db_url = database_url(backend, args.pg_url, workdir)
    env = hub_env(db_url, args.redis_url, [
        "HUB_ALLOW_PRIVATE_URLS=true",
        f"HUB_WEBHOOKS_OUTBOUND_BATCH_SIZE={args.batch_size}",
        f"HUB_WEBHOOKS_OUTBOUND_LINGER_MS={args.linger_ms}",
        *args.hub_env])
    prepare_hub(workdir, env, ENV)
    state = Received()
    receiver = start_receiver(state)
    result = Result(backend)
    try:
        url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
        log(backend, f"recording {args.events} events with {args.workers} workers delivering...")
        asyncio.run(produce(env, url, state, args, result, workdir, servers))
    finally:
        receiver.shutdown()
        receiver.server_close()
    return result


def table(results: list[Result], args: argparse.Namespace) -> list[list[str]]:
    cells = [["measure", *(r.backend for r in results)]]

    def row(name: str, fn: Any) -> None:
        cells.append([name, *(fn(r) for r in results)])

    row(f"backlog: events delivered per second (target >= {TARGET_EPS:,.0f})",
        lambda r: f"{r.events / r.backlog_s:,.0f}" if r.backlog_s else "-")
    row("backlog: events / first to last received", lambda r: f"{r.events:,} / {r.backlog_s:.2f} s")
    row("live: events delivered per second",
        lambda r: f"{r.events / r.delivered_s:,.0f}" if r.delivered_s else "-")
    row("live: events / first recorded to last received", lambda r: f"{r.events:,} / {r.delivered_s:.2f} s")
    row("live: recording alone (the producer)",
        lambda r: f"{r.record_s:.2f} s ({r.events / r.record_s:,.0f}/s)")
    row("POSTs, both phases (mean events per POST)",
        lambda r: f"{r.posts:,} ({2 * r.events / max(r.posts, 1):.1f})")
    row("duplicates received / bad signatures", lambda r: f"{r.duplicates} / {r.bad_signatures}")
    row("live: recorded -> received p50 / p99", lambda r: f"{r.p50_ms:,.0f} / {r.p99_ms:,.0f} ms")
    return cells


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--record-batch", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--linger-ms", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    parser.add_argument("--hub-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--no-write", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    started = dt.datetime.now(dt.UTC)
    info = machine()
    if "postgres" in backends:
        info["postgresql server"] = postgres_version(args.pg_url)
    results: list[Result] = []
    servers: list[Server] = []
    try:
        with tempfile.TemporaryDirectory(prefix="hub-bench-wh-") as tmp, stopping(servers):
            for backend in backends:
                workdir = Path(tmp) / backend
                workdir.mkdir()
                results.append(run_backend(backend, args, workdir, servers))
                for server in reversed(servers):
                    server.stop()
                servers.clear()
    except BenchError as exc:
        print(f"bench/webhooks_delivery.py: {exc}", file=sys.stderr)
        return 1
    cells = table(results, args)
    print()
    print_table(cells)
    if not args.no_write:
        lines = [
            f"Run on {started:%Y-%m-%d %H:%M} UTC with:", "", "```", command_line(), "```", "",
            f"{args.workers} `hub worker` processes, Redis on 127.0.0.1 for both backends, one "
            "subscription (every event) to a threaded receiver on loopback that checks every "
            "signature. Events are recorded in the benchmark process through "
            f"`record_custom_events` in batches of {args.record_batch} (one transaction and one "
            "announce job each, as `POST /v1/{env}/events` does). Backlog: recorded before the "
            "workers start, rate = events / (last - first received). Live: recorded while the "
            "workers deliver, rate = events / (last received - first recorded); the recording "
            f"process shares the 2 CPUs with the workers. Batch size {args.batch_size}, linger "
            f"{args.linger_ms} ms.", "",
            markdown(cells), "",
            "| machine | |", "|---|---|", *(f"| {k} | {v} |" for k, v in info.items()),
        ]
        write_doc(DOC, "\n".join(lines), BEGIN, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())

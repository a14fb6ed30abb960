"""Customer Center latency on PostgreSQL: the customer search over 1,000,000 customers, and the
customer page of a customer with 200 cards, through the real HTTP pages of a signed-in member::

    .venv/bin/python bench/workbench.py [--customers 1000000] [--searches 300] [--cards 200]

In a private temp dir: ``hub migrate``, ``hub env create bench``, an admin API client, a staff
group with ``customer_center:view`` and a member in it (``hub staff group-set`` / ``hub staff
create``), signed in through the sign-in form. The customers are loaded with asyncpg's COPY
(the search indexes of migration 0004 are dropped first and built again afterwards, then
``ANALYZE``), with a name, an email, a phone, a city and a custom ``accountNumber`` field
(declared in ``hub_field_definition``). One ``hub serve`` process (one uvicorn worker) and one
``hub worker``.

Measured, one request at a time on loopback, ``--searches`` different searches per mode (time
from sending the request to the last byte of the answer, as the client sees it; the app emits no
``Server-Timing`` header, so this includes the HTTP round trip; next to it, the server's own
time from Hub's ``hub_http_request_duration_seconds`` histogram of the route, read from
``/metrics`` before and after each series: its mean and the bucket holding the 95th
percentile): a user id typed exactly (the
default "Anything" search: exact, prefix, email and name lookups), a user id prefix, a full
email (Anything), a name prefix (the name picker), a phone (``phone:...``) and a custom field
(``accountNumber:...``). Every answer must be a 200 that lists the customer searched for (or,
for prefixes, only customers whose user id or name starts with it).

The customer page: a one-card flow (``hub flows apply``) started ``--cards`` times for one
customer through ``POST /v1/bench/action-flow/<flow>/start`` and run by the worker, until the
customer has that many active cards; then ``--page-requests`` GETs of
``/ui/bench/customers/<user id>``.

PostgreSQL: ``--pg-url`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/hub_bench_wb``)
is **emptied** first; Redis: ``--redis-url`` (default ``redis://127.0.0.1:6379/12``) is
**flushed** first. The table is printed and, unless ``--no-write``, written between this
benchmark's markers in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from common import (
    DOC,
    HUB_BIN,
    BenchError,
    Server,
    command_line,
    hub_env,
    machine,
    markdown,
    postgres_version,
    prepare_hub,
    print_table,
    reset_postgres,
    run_cmd,
    serve,
    stopping,
    token,
    write_doc,
)

BEGIN = "<!-- bench/workbench.py:begin (generated; edit outside the markers) -->"
END = "<!-- bench/workbench.py:end -->"
ENV = "bench"
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/hub_bench_wb"
DEFAULT_REDIS = "redis://127.0.0.1:6379/12"
STAFF_EMAIL = "bench-support@example.com"
STAFF_PASSWORD = "bench correct horse battery staple"
SEARCH_TARGET_MS = 200.0
PAGE_TARGET_MS = 300.0
FLOW_ID = "bench-card"
FLOW = {"id": FLOW_ID, "name": "Bench card",
        "cardTemplates": [{"id": "hi", "name": "Hi",
                           "elements": [{"type": "headline", "text": "Hi {{customer.fields.name}}"},
                                        {"type": "text", "text": "Your order is on its way."}]}],
        "steps": [{"id": "send", "type": "card", "template": "hi"}]}
CARD_USER = "cust-0000042"
SEARCH_ROUTE = "/ui/{env:str}/customers"
PAGE_ROUTE = "/ui/{env:str}/customers/{user_id:str}"
SEARCH_INDEXES = ("ix_hub_customer_user_id_c", "ix_hub_customer_email_lower",
                  "ix_hub_customer_name_lower", "ix_hub_customer_fields_path")

FIRST = ("Olivia Amelia Isla Ava Mia Ivy Lily Isabella Rosie Sophia Grace Freya Willow Emily Ella "
         "Noah Oliver George Arthur Muhammad Leo Harry Oscar Archie Henry Theodore Freddie Jack "
         "Charlie Theo Maria Jose Chen Wei Priya Aarav Fatima Yusuf Sofia Lucas Mateo Hannah Lena "
         "Jonas Elias Marta Pablo Giulia Luca Anna").split()
LAST = ("Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson "
        "Thompson Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Patel Jackson "
        "Wood Turner Martin Cooper Hill Ward Morris Moore Clark Lee King Baker Harrison Morgan "
        "Allen James Scott Phillips Watson Davis Parker Price Bennett Young Griffiths Mitchell "
        "Kelly Cook Carter Richardson Bailey Collins Bell Shaw Murphy Miller Cox Richards Khan "
        "Marshall Anderson Simpson Ellis Adams Singh Begum Wilkinson Foster Chapman Powell Webb "
        "Rogers Gray Mason Ali Hunt Hussain Campbell Matthews Owen Palmer Holmes Mills Barnes "
        "Knight Lloyd Butler Russell Barker Fisher Stevens Jenkins Murray Dixon Harvey").split()
CITIES = ("London", "Manchester", "Leeds", "Glasgow", "Bristol", "Cardiff", "Belfast", "Dublin",
          "Berlin", "Madrid")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def customer(n: int) -> tuple[str, dict[str, str]]:
    """The ``n``-th customer: user id and fields (deterministic, so searches know what exists)."""
    rnd = random.Random(n)
    first, last = rnd.choice(FIRST), rnd.choice(LAST)
    return f"cust-{n:07d}", {
        "name": f"{first} {last}", "email": f"{first.lower()}.{last.lower()}{n}@example.com",
        "phone": f"+4477{n:08d}", "city": rnd.choice(CITIES), "accountNumber": f"AC-{n * 7919 % 10**9:09d}"}


# --- loading ---------------------------------------------------------------------------------


async def load(dsn: str, count: int) -> float:
    """COPY ``count`` customers into the bench environment; returns the seconds it took."""
    import asyncpg

    started = time.monotonic()
    conn = await asyncpg.connect(dsn)
    try:
        now = dt.datetime.now(dt.UTC)
        await conn.execute(
            "INSERT INTO hub_field_definition (environment_id, name, type, label, description, created_at)"
            " VALUES ($1, 'accountNumber', 'text', 'Account number', 'The billing account', $2)", ENV, now)
        definitions = {r["indexname"]: r["indexdef"] for r in await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'hub_customer'")}
        for name in SEARCH_INDEXES:
            await conn.execute(f"DROP INDEX {name}")
        preferences = json.dumps({})
        batch = 50_000
        for start in range(0, count, batch):
            rows = []
            for n in range(start, min(start + batch, count)):
                user_id, fields = customer(n)
                seen = now - dt.timedelta(minutes=n % 100_000)
                rows.append((ENV, user_id, json.dumps(fields), "[]", preferences, False, now, now,
                             seen, seen))
            await conn.copy_records_to_table(
                "hub_customer", records=rows,
                columns=["environment_id", "user_id", "fields", "tags", "preferences", "is_test_user",
                         "created_at", "updated_at", "first_seen_at", "last_seen_at"])
            if start % 200_000 == 0:
                log(f"  {start + len(rows):,} customers copied")
        log("building the search indexes...")
        await conn.execute("SET maintenance_work_mem = '256MB'")
        for name in SEARCH_INDEXES:
            await conn.execute(definitions[name])
        await conn.execute("ANALYZE hub_customer")
    finally:
        await conn.close()
    return time.monotonic() - started


# --- measuring -------------------------------------------------------------------------------


def sign_in(client: httpx.Client) -> None:
    page = client.get("/ui/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if page.status_code != 200 or not found:
        raise BenchError(f"the sign-in page answered {page.status_code}")
    done = client.post("/ui/login", data={"email": STAFF_EMAIL, "password": STAFF_PASSWORD, "next": "/ui/",
                                          "csrf_token": found.group(1)})
    if done.status_code != 303:
        raise BenchError(f"signing in answered {done.status_code}: {done.text[:300]}")


def result_ids(html: str) -> list[str]:
    return re.findall(r'<td><a href="/ui/bench/customers/([^"?]+)">', html)


def searches(count: int, customers: int, seed: int) -> dict[str, list[tuple[dict[str, str], Any]]]:
    """Per mode: (query parameters, check of the user ids found)."""
    rnd = random.Random(seed)
    picks = [rnd.randrange(customers) for _ in range(count)]
    modes: dict[str, list[tuple[dict[str, str], Any]]] = {}

    def has(user_id: str) -> Any:
        return lambda ids: user_id in ids

    modes["user id, exact (Anything)"] = [({"q": customer(n)[0]}, has(customer(n)[0])) for n in picks]
    prefixes = [customer(n)[0][:-2] for n in picks]
    modes["user id prefix (picker)"] = [
        ({"q": p, "field": "user_id"}, lambda ids, p=p: bool(ids) and all(i.startswith(p) for i in ids))
        for p in prefixes]
    modes["email, full (Anything)"] = [({"q": customer(n)[1]["email"].upper()}, has(customer(n)[0]))
                                       for n in picks]
    names = [customer(n)[1]["name"] for n in picks]
    modes["name prefix (picker)"] = [({"q": name[:len(name.split()[0]) + 3], "field": "name"},
                                      lambda ids: len(ids) > 0) for name in names]
    modes["phone (phone:...)"] = [({"q": "phone:" + customer(n)[1]["phone"]}, has(customer(n)[0]))
                                  for n in picks]
    modes["custom field (accountNumber:...)"] = [
        ({"q": "accountNumber:" + customer(n)[1]["accountNumber"]}, has(customer(n)[0])) for n in picks]
    return modes


def timed(client: httpx.Client, path: str,
          params: dict[str, str] | None = None) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.get(path, params=params)
    return (time.perf_counter() - started) * 1000, response


LINE = re.compile(r'^hub_http_request_duration_seconds_(bucket|sum|count)\{(.*)\} (\S+)$')


def server_histogram(client: httpx.Client, route_part: str) -> dict[str, Any]:
    """Hub's own ``hub_http_request_duration_seconds`` for GET routes containing ``route_part``:
    the sum, the count and the cumulative bucket counts (by upper bound, in seconds)."""
    text = client.get("/metrics").text
    found: dict[str, Any] = {"sum": 0.0, "count": 0.0, "buckets": {}}
    for line in text.splitlines():
        match = LINE.match(line)
        if not match or 'method="GET"' not in match.group(2):
            continue
        route = re.search(r'route="([^"]*)"', match.group(2))
        if route is None or route.group(1) != route_part:
            continue
        kind, value = match.group(1), float(match.group(3))
        if kind == "bucket":
            le = re.search(r'le="([^"]+)"', match.group(2))
            assert le is not None
            found["buckets"][float(le.group(1))] = value
        else:
            found[kind] = value
    return found


def server_side(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """Mean server time and the upper bound of the bucket holding the 95th percentile (ms)."""
    count = after["count"] - before["count"]
    if count <= 0:
        raise BenchError("Hub's request histogram did not count the measured requests")
    p95 = next(le for le, n in sorted(after["buckets"].items())
               if (n - before["buckets"].get(le, 0.0)) >= 0.95 * count)
    return {"mean": (after["sum"] - before["sum"]) / count * 1000, "p95_le": p95 * 1000}


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": statistics.median(ordered), "p95": q[94], "p99": q[98], "max": ordered[-1]}


def measure_searches(client: httpx.Client, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    results = {}
    warm = searches(20, args.customers, seed=1)
    for cases in warm.values():
        for params, _ in cases:
            client.get(f"/ui/{ENV}/customers", params=params)
    for mode, cases in searches(args.searches, args.customers, seed=2).items():
        samples = []
        before = server_histogram(client, SEARCH_ROUTE)
        for params, check in cases:
            ms, response = timed(client, f"/ui/{ENV}/customers", params)
            if response.status_code != 200 or not check(result_ids(response.text)):
                raise BenchError(f"{mode}: {params} answered {response.status_code} with "
                                 f"{result_ids(response.text)[:5]}")
            samples.append(ms)
        results[mode] = {**percentiles(samples),
                         **server_side(before, server_histogram(client, SEARCH_ROUTE))}
        log(f"{mode}: p50 {results[mode]['p50']:.1f} ms, p95 {results[mode]['p95']:.1f} ms")
    return results


def make_cards(server: Server, bearer: str, count: int, dsn: str, timeout: float) -> float:
    """Start the one-card flow ``count`` times for :data:`CARD_USER`; wait for the cards."""
    import asyncpg

    started = time.monotonic()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {bearer}"}) as api:
        for _ in range(count):
            answer = api.post(f"/v1/{ENV}/action-flow/{FLOW_ID}/start",
                              json={"flows": [{"target": {"usersById": [CARD_USER]}}]})
            if answer.status_code != 202:
                raise BenchError(f"starting the flow answered {answer.status_code}: {answer.text[:300]}")

    async def cards() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval(
                "SELECT count(*) FROM hub_card WHERE environment_id = $1 AND user_id = $2", ENV, CARD_USER))
        finally:
            await conn.close()

    deadline = time.monotonic() + timeout
    while (have := asyncio.run(cards())) < count:
        if time.monotonic() > deadline:
            raise BenchError(f"only {have} of {count} cards after {timeout:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - started


def measure_page(client: httpx.Client, requests: int) -> dict[str, float] | str:
    path = f"/ui/{ENV}/customers/{CARD_USER}"
    first = client.get(path)
    if first.status_code == 404 and "customer" not in first.text.lower():
        return "the customer page is not served"
    if first.status_code != 200:
        raise BenchError(f"the customer page answered {first.status_code}: {first.text[:300]}")
    samples = []
    before = server_histogram(client, PAGE_ROUTE)
    for _ in range(requests):
        ms, response = timed(client, path)
        if response.status_code != 200:
            raise BenchError(f"the customer page answered {response.status_code}")
        samples.append(ms)
    return {**percentiles(samples), **server_side(before, server_histogram(client, PAGE_ROUTE))}


# --- the run ---------------------------------------------------------------------------------


def run(args: argparse.Namespace, workdir: Path, servers: list[Server]) -> dict[str, Any]:
    reset_postgres(args.pg_url)
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    env = hub_env(args.pg_url, args.redis_url, [])
    client = prepare_hub(workdir, env, ENV)
    run_cmd([HUB_BIN, "staff", "group-set", "bench-support", "--permissions", "customer_center:view",
             "--env", ENV], workdir, env)
    run_cmd([HUB_BIN, "staff", "create", "--email", STAFF_EMAIL, "--groups", "bench-support",
             "--password", STAFF_PASSWORD], workdir, env)
    flow_file = workdir / "flow.json"
    flow_file.write_text(json.dumps(FLOW))
    run_cmd([HUB_BIN, "flows", "apply", str(flow_file), "--env", ENV], workdir, env)
    dsn = args.pg_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    log(f"loading {args.customers:,} customers with COPY...")
    load_s = asyncio.run(load(dsn, args.customers))
    log(f"loaded and indexed in {load_s:.1f} s")
    load_measuring = " ".join(f"{x:.2f}" for x in os.getloadavg())
    server = serve("serve", workdir, env)
    servers.append(server)
    worker = Server("worker", [HUB_BIN, "worker"], None, workdir, env, owns_redis=False)
    servers.append(worker)
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        sign_in(browser)
        search_results = measure_searches(browser, args)
        log(f"starting the flow {args.cards} times for {CARD_USER}...")
        cards_s = make_cards(server, token(server, ENV, client), args.cards, dsn, args.cards_timeout)
        worker.check_alive()
        log(f"{args.cards} cards in {cards_s:.1f} s")
        page = measure_page(browser, args.page_requests)
    return {"load_s": load_s, "search": search_results, "page": page, "cards_s": cards_s,
            "load_measuring": load_measuring}


def report(args: argparse.Namespace, found: dict[str, Any], load_start: str) -> str:
    cells = [["measure", "p50 ms", "p95 ms", "p99 ms", "max ms", "server mean ms", "server p95 ms",
              "target (p95)", "verdict"]]

    def row(name: str, p: dict[str, float], target: float) -> list[str]:
        return [name, f"{p['p50']:.1f}", f"{p['p95']:.1f}", f"{p['p99']:.1f}", f"{p['max']:.1f}",
                f"{p['mean']:.1f}", f"≤ {p['p95_le']:g}", f"< {target:.0f}",
                "met" if p["p95"] < target else "MISSED"]

    for mode, p in found["search"].items():
        cells.append(row(f"search: {mode}", p, SEARCH_TARGET_MS))
    page = found["page"]
    if isinstance(page, str):
        cells.append([f"customer page, {args.cards} cards", "-", "-", "-", "-", "-", "-",
                      f"< {PAGE_TARGET_MS:.0f}", f"not measured: {page}"])
    else:
        cells.append(row(f"customer page, {args.cards} cards", page, PAGE_TARGET_MS))
    print_table(cells)
    info = machine()
    info.pop("wrk", None)
    lines = [
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC with `{command_line()}`: "
        f"{args.customers:,} customers on PostgreSQL {postgres_version(args.pg_url)}, "
        f"{args.searches} searches per mode and {args.page_requests} customer-page requests, "
        "one at a time on loopback through one `hub serve` process (one uvicorn worker), signed in "
        "as a member with `customer_center:view`. p50 to max: client-side (request sent to last "
        "byte received, the HTTP round trip on loopback included; the app sends no "
        "`Server-Timing`); the verdict is on the client-side p95. Server mean and server p95: "
        "from Hub's own `hub_http_request_duration_seconds` histogram of the route (`/metrics`, "
        "read before and after each series): the mean, and the upper bound of the bucket that "
        "holds the 95th percentile.",
        "",
        markdown(cells),
        "",
        f"- Loading: {args.customers:,} customers by COPY, then the search indexes built and "
        f"`ANALYZE`: {found['load_s']:.1f} s. {args.cards} cards through the flow engine (start "
        f"endpoint, one `hub worker`): {found['cards_s']:.1f} s.",
        f"- Load average before loading: {load_start}; before measuring: {found['load_measuring']} "
        "(2 shared cores: other work ran on the machine).",
        "",
        "| machine | |", "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in info.items()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--searches", type=int, default=300, help="searches per mode")
    parser.add_argument("--cards", type=int, default=200)
    parser.add_argument("--page-requests", type=int, default=200)
    parser.add_argument("--cards-timeout", type=float, default=300)
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.customers < 1000:
        parser.error("--customers: at least 1000")
    servers: list[Server] = []
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        with tempfile.TemporaryDirectory(prefix="hub-bench-wb-") as tmp, stopping(servers):
            found = run(args, Path(tmp), servers)
    except BenchError as exc:
        print(f"bench/workbench.py: {exc}", file=sys.stderr)
        return 1
    block = report(args, found, load_start)
    if not args.no_write:
        write_doc(DOC, block, BEGIN, END)
        log(f"written to {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

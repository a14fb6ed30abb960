"""Inbound webhook triggers accepted durably per second: ``POST /hooks/{token}`` under wrk.

Per backend, in a private temp dir, the benchmark sets Hub up (``hub migrate``, an environment,
an admin client, ``hub flows apply`` of ``examples/flows/fraud_alert.json``), starts ``hub serve``
and creates the example trigger (``examples/webhooks/transaction_flagged.trigger.json``, unsigned:
wrk's Lua cannot compute an HMAC). Then, in rounds alternating the endpoints, wrk sends::

    .venv/bin/python bench/webhooks.py [--backend postgres|sqlite|both] [--duration 10] [--rounds 2]

1. the **baseline**: a bare Litestar ``POST /hooks/{token}`` that decodes the JSON body and
   answers 202 (no middleware, no database), served by the same uvicorn call;
2. **Hub's trigger URL** with the example event (``examples/webhooks/transaction_flagged.json``),
   a new ``eventId`` per request (so each one is a new invocation, committed before its 202) and
   one of 1,000 customers;
3. for reference, the core ``POST /v1/{env}/action-flow/{flowConfigId}/start`` with the same
   variables and a new ``flowInvocationId`` per request: what the webhook layer adds to the core.

No ``hub worker`` runs: the invocations wait in the queue, and what is measured is acceptance
(mapping, validation, the invocation and its outbox row committed). Every answer must be a 202
(wrk's Lua counts the others, socket errors too), and afterwards every 202 Hub counted on each
route (``hub_http_requests_total``) must have its invocation in the database: an accepted trigger
that was not stored fails the run (a few more may be stored: requests in flight when wrk stopped).
The table is printed and, unless ``--no-write``, written between this benchmark's markers in
``docs/benchmarks.md``.

PostgreSQL: ``--pg-url`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/hub_d``) is
**emptied** first; Redis: ``--redis-url`` (default ``redis://127.0.0.1:6379/4``) is **flushed**
first. SQLite uses a file in the temp dir and the embedded Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from common import (
    DEFAULT_PG,
    DOC,
    HUB_BIN,
    ROOT,
    BenchError,
    Server,
    command_line,
    database_url,
    free_port,
    http,
    hub_env,
    machine,
    markdown,
    parse_wrk,
    postgres_version,
    prepare_hub,
    print_table,
    run_cmd,
    serve,
    stopping,
    token,
    write_doc,
)
from litestar import Litestar, Request, get, post

BEGIN = "<!-- bench/webhooks.py:begin (generated; edit outside the markers) -->"
END = "<!-- bench/webhooks.py:end -->"
ENV = "bench"
FLOW = "fraud-alert"
TARGET_RPS = 1000
DEFAULT_REDIS = "redis://127.0.0.1:6379/4"
EVENT = json.loads((ROOT / "examples/webhooks/transaction_flagged.json").read_text())
TRIGGER = json.loads((ROOT / "examples/webhooks/transaction_flagged.trigger.json").read_text())
VARIABLES = {"amount": "$1,249.00", "merchant": "ElectroMart Online", "cardLast4": "4821",
             "paymentId": "txn_8842019"}

# {{ID}} and {{USER}} are replaced per request: a new event (or invocation) id, one of 1,000 users.
WRK_LUA = r"""
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function init(args)
  prefix = (args[1] or "r") .. "-" .. tid .. "-"
  n = 0
  bad = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  n = n + 1
  local body = string.gsub(TEMPLATE, "{{ID}}", prefix .. n)
  body = string.gsub(body, "{{USER}}", "cust-" .. (n % 1000))
  return wrk.format(nil, nil, nil, body)
end
function response(status, headers, body)
  if status ~= 202 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local not202 = 0
  for _, t in ipairs(threads) do not202 = not202 + t:get("bad") end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"non2xx":%d,"not202":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, not202, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


def event_template() -> str:
    event = json.loads(json.dumps(EVENT))
    event["eventId"] = "{{ID}}"
    event["data"]["customer"]["id"] = "{{USER}}"
    return json.dumps(event)


def start_template() -> str:
    return json.dumps({"flows": [{"flowInvocationId": "{{ID}}", "target": {"usersById": ["{{USER}}"]},
                                  "payload": {"variables": VARIABLES}}]})


def lua_script(workdir: Path, name: str, template: str) -> Path:
    path = workdir / f"{name}.lua"
    path.write_text(f"TEMPLATE = [==[{template}]==]\n" + WRK_LUA)
    return path


# --- the baseline ----------------------------------------------------------------------------


class Accepted(msgspec.Struct):
    accepted: bool


@post("/hooks/{token:str}", status_code=202)
async def baseline_receive(token: str, request: Request[Any, Any, Any]) -> Accepted:
    msgspec.json.decode(await request.body())
    return Accepted(True)


@get("/healthz")
async def baseline_healthz() -> dict[str, str]:
    return {"status": "ok"}


def baseline_app() -> Litestar:
    """``POST /hooks/{token}``: decode the JSON body, answer 202. Nothing else."""
    return Litestar(route_handlers=[baseline_receive, baseline_healthz], debug=False)


def serve_baseline(port: int) -> None:
    import uvicorn

    # The same uvicorn.run options as `hub serve` (hub/cli.py), one process.
    uvicorn.run(baseline_app(), host="127.0.0.1", port=port, log_config=None, access_log=False,
                server_header=False, proxy_headers=True, timeout_graceful_shutdown=30, lifespan="on")


# --- runs ------------------------------------------------------------------------------------


@dataclass
class Row:
    backend: str
    endpoint: str
    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    requests: int = 0

    def add(self, data: dict[str, Any]) -> None:
        self.rps.append(data["requests"] / (data["duration_us"] / 1e6))
        self.p50.append(data["p50_us"] / 1000)
        self.p99.append(data["p99_us"] / 1000)
        self.requests += data["requests"]


def wrk(url: str, lua: Path, args: argparse.Namespace, tag: str, seconds: float,
        headers: dict[str, str] | None = None) -> dict[str, Any]:
    argv = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds:g}s", "--timeout", "10s",
            "-s", str(lua)]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    argv += [url, "--", tag]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {seconds + 30:g}s: {url}") from exc
    data = parse_wrk(done)
    errors = data["connect"] + data["read"] + data["write"] + data["timeout"]
    if data["not202"] or data["non2xx"] or errors:
        raise BenchError(f"{url}: {data['not202']} answers were not 202 and {errors} socket errors out "
                         f"of {data['requests']} requests; not a benchmark of accepted triggers")
    return data


def route_202s(server: Server) -> dict[str, float]:
    """202s Hub counted per route (``hub_http_requests_total``), for the two measured routes."""
    status, body = http("GET", server.url + "/metrics")
    if status != 200:
        raise BenchError(f"/metrics answered {status}")
    counts = {"hooks": 0.0, "start": 0.0}
    for line in body.decode().splitlines():
        if not line.startswith("hub_http_requests_total{") or 'status="202"' not in line:
            continue
        value = float(line.rsplit(" ", 1)[1])
        if "/hooks/{token" in line:
            counts["hooks"] += value
        elif "/action-flow/{flow_id" in line and line.find("/start") > 0:
            counts["start"] += value
    return counts


def stored_invocations(database: str) -> dict[str, int]:
    sql = "SELECT source, count(*) FROM hub_invocation GROUP BY source"
    if database.startswith("sqlite"):
        with sqlite3.connect(database.split("///", 1)[1]) as conn:
            return {str(s): int(n) for s, n in conn.execute(sql)}

    async def go() -> dict[str, int]:
        import asyncpg

        conn = await asyncpg.connect(database.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            return {str(r[0]): int(r[1]) for r in await conn.fetch(sql)}
        finally:
            await conn.close()

    return asyncio.run(go())


def set_up(backend: str, args: argparse.Namespace, workdir: Path) -> tuple[Server, str, str, str]:
    """Hub with the example flow and trigger: (server, database URL, trigger URL path, bearer)."""
    redis = args.redis_url if backend == "postgres" else ""
    if redis:
        import redis as redis_sync

        with redis_sync.Redis.from_url(redis) as conn:
            conn.flushdb()
    database = database_url(backend, args.pg_url, workdir)
    env = hub_env(database, redis, [])
    client = prepare_hub(workdir, env, ENV)
    run_cmd([HUB_BIN, "flows", "apply", str(ROOT / "examples/flows/fraud_alert.json"), "--env", ENV,
             "--id", FLOW], workdir, env)
    server = serve(f"hub-{backend}", workdir, env)
    try:
        bearer = token(server, ENV, client)
        status, body = http("POST", f"{server.url}/v1/{ENV}/triggers", data=json.dumps(
            {**TRIGGER, "signed": False}).encode(), headers={"Content-Type": "application/json",
                                                            "Authorization": f"Bearer {bearer}"})
        if status != 201:
            raise BenchError(f"creating the trigger answered {status}: {body[:300]!r}")
        path = "/hooks/" + json.loads(body)["url"].rsplit("/", 1)[1]
        status, body = http("POST", server.url + path, data=json.dumps(EVENT).encode(),
                            headers={"Content-Type": "application/json"})
        if status != 202:
            raise BenchError(f"the example event answered {status}: {body[:300]!r}")
    except BaseException:
        server.stop()
        raise
    return server, database, path, bearer


def run_backend(backend: str, args: argparse.Namespace, workdir: Path, baseline: Server,
                scripts: dict[str, Path], servers: list[Server]) -> tuple[list[Row], dict[str, Any]]:
    print(f"[{backend}] setting up Hub...", file=sys.stderr, flush=True)
    hub, database, path, bearer = set_up(backend, args, workdir)
    servers.append(hub)
    before = route_202s(hub)
    auth = {"Authorization": f"Bearer {bearer}"}
    plan = [(Row(backend, "bare Litestar POST (baseline)"), baseline.url + "/hooks/x", scripts["event"], {}),
            (Row(backend, "Hub POST /hooks/{token} (example event)"), hub.url + path, scripts["event"], {}),
            (Row(backend, "Hub POST .../action-flow/{id}/start (core, reference)"),
             f"{hub.url}/v1/{ENV}/action-flow/{FLOW}/start", scripts["start"], auth)]
    for _row, url, lua, headers in plan:
        wrk(url, lua, args, f"warm-{backend}-{os.getpid()}", args.warmup, headers)
    for n in range(args.rounds):
        order = plan if n % 2 == 0 else plan[::-1]
        for row, url, lua, headers in order:
            data = wrk(url, lua, args, f"{backend}-{n}-{os.getpid()}", args.duration, headers)
            row.add(data)
            print(f"[{backend}] round {n + 1}/{args.rounds} {row.endpoint}: {row.rps[-1]:,.0f} req/s "
                  f"p50 {row.p50[-1]:.1f} ms p99 {row.p99[-1]:.1f} ms", file=sys.stderr, flush=True)
    after = route_202s(hub)
    hub.stop()
    servers.remove(hub)
    stored = stored_invocations(database)
    counted = {k: int(after[k] - before[k]) for k in after}
    # Every 202 must have its invocation. A few more may be stored: requests in flight when a wrk
    # run stopped were committed but their answer went to a closed connection (at most one per
    # connection and run). One example event was sent during set-up, before `before` was read.
    slack = args.connections * (args.rounds + 1)
    for source, route in (("webhook", "hooks"), ("api", "start")):
        extra = stored.get(source, 0) - (1 if source == "webhook" else 0) - counted[route]
        if not 0 <= extra <= slack:
            raise BenchError(f"invocations stored {stored} do not match the 202s Hub counted {counted}")
    return [row for row, *_ in plan], {"counted": counted, "stored": stored}


# --- main ------------------------------------------------------------------------------------


def table(rows: list[Row]) -> list[list[str]]:
    out = [["backend", "endpoint", "req/s (median)", "p50 ms", "p99 ms", "of baseline", "req/s per round"]]
    for row in rows:
        base = next(r for r in rows if r.backend == row.backend and "baseline" in r.endpoint)
        rps = statistics.median(row.rps)
        out.append([row.backend, row.endpoint, f"{rps:,.0f}", f"{statistics.median(row.p50):.1f}",
                    f"{statistics.median(row.p99):.1f}", f"{rps / statistics.median(base.rps):.0%}",
                    " / ".join(f"{r:,.0f}" for r in row.rps)])
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run (max 15)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds alternating the endpoints")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of unrecorded load per endpoint")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG),
                        help="a PostgreSQL database for the benchmark alone: it is emptied")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS),
                        help="Redis for the PostgreSQL run: it is flushed")
    parser.add_argument("--no-write", action="store_true", help=f"do not update {DOC.relative_to(ROOT)}")
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 15:
        parser.error("--duration must be in (0, 15] seconds")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return 0
    if shutil.which("wrk") is None:
        print("bench/webhooks.py needs wrk: apt-get update && apt-get install -y wrk", file=sys.stderr)
        return 2
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    started = dt.datetime.now(dt.UTC)
    info = machine()
    if "postgres" in backends:
        info["postgresql server"] = postgres_version(args.pg_url)
    servers: list[Server] = []
    rows: list[Row] = []
    checks: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp, stopping(servers):
            workdir = Path(tmp)
            scripts = {"event": lua_script(workdir, "event", event_template()),
                       "start": lua_script(workdir, "start", start_template())}
            port = free_port()
            argv = [sys.executable, str(Path(__file__).resolve()), "--serve-baseline", str(port)]
            baseline = Server("baseline", argv, port, workdir, {**os.environ, "PYTHONUNBUFFERED": "1"},
                              owns_redis=False)
            servers.append(baseline)
            baseline.wait_ready()
            for backend in backends:
                backend_dir = workdir / backend
                backend_dir.mkdir()
                more, checks[backend] = run_backend(backend, args, backend_dir, baseline, scripts, servers)
                rows += more
    except BenchError as exc:
        print(f"bench/webhooks.py: {exc}", file=sys.stderr)
        return 1
    cells = table(rows)
    print()
    print_table(cells)
    verdicts = []
    for backend in backends:
        hooks = next(r for r in rows if r.backend == backend and "/hooks/" in r.endpoint)
        rps = statistics.median(hooks.rps)
        target = f" ({'meets' if rps >= TARGET_RPS else 'misses'} the {TARGET_RPS:,} req/s target)" \
            if backend == "postgres" else ""
        verdicts.append(f"{backend}: {rps:,.0f} triggers accepted per second{target}")
    print("\n" + "; ".join(verdicts))
    if not args.no_write:
        stored = ", ".join(f"{b}: {c['counted']['hooks']:,} webhook and {c['counted']['start']:,} API 202s, "
                           f"{c['stored'].get('webhook', 0) - 1:,} and {c['stored'].get('api', 0):,} stored"
                           for b, c in checks.items())
        lines = [
            f"Run on {started:%Y-%m-%d %H:%M} UTC with:", "", "```", command_line(), "```", "",
            f"wrk `-t{args.threads} -c{args.connections} -d{args.duration:g}s`, {args.rounds} rounds "
            f"alternating the endpoints after a {args.warmup:g} s warm-up of each, median shown; "
            "one `hub serve` process, "
            "no worker (invocations are committed and queued, not run); the example trigger, unsigned, "
            "a new `eventId` per request and one of 1,000 customers; every answer checked to be a 202, "
            f"and every 202 Hub counted checked to have its invocation stored ({stored}).",
            "", markdown(cells), "", "; ".join(verdicts) + ".", "",
            "| machine | |", "|---|---|", *[f"| {k} | {v} |" for k, v in info.items()],
        ]
        write_doc(DOC, "\n".join(lines), BEGIN, END)
        print(f"written to {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Journey Builder execute calls accepted durably per second: ``POST {activityUrl}/execute`` under wrk.

On PostgreSQL, in a private temp dir, the benchmark sets Hub up (``hub migrate``, an environment,
an admin client, a flow with a number and a string variable, ``hub sfmc set`` with a JWT signing
secret), starts ``hub serve``, and pre-signs N distinct execute JWTs (HS256 with that secret;
each one a new contact key and ``definitionInstanceId``, so each is a new flow start) into a file
wrk's Lua reads. Then, in rounds alternating the endpoints, wrk sends at 50 connections::

    .venv/bin/python bench/sfmc.py [--duration 10] [--rounds 2] [--tokens 120000]

1. the **baseline**: a bare Litestar ``POST /sfmc/{token}/execute`` that reads the body and
   answers 200 with two outArguments (no middleware, no JWT, no database), same uvicorn options;
2. **Hub's execute, no worker running**: the JWT verified, the inArguments read into typed
   variables, the start committed through the core trigger service (``source`` ``sfmc``),
   ``reachable`` computed; the endpoint has the machine's two cores, as it would beside workers
   on machines of their own. Then a ``hub worker`` starts and the time it takes to run the
   backlog (every start's flow instance and card committed) is reported;
3. **Hub's execute, the worker running** the started flows meanwhile, on the same two cores.

Every answer must be a 200 (wrk's Lua counts the others, socket errors too), no JWT may be sent
twice, and afterwards every 200 Hub counted on the execute route (``hub_http_requests_total``)
must have its invocation in the database. Target: 1,000 contacts/s with p99 under 200 ms.
The table is printed and, unless ``--no-write``, written between this benchmark's markers in
``docs/benchmarks.md``.

PostgreSQL: ``--pg-url`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/hub_bench_sfmc``,
created when missing) is **emptied** first; Redis: ``--redis-url`` (default
``redis://127.0.0.1:6379/9``) is **flushed** first.
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
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    DOC,
    HUB_BIN,
    BenchError,
    Server,
    command_line,
    free_port,
    http,
    hub_env,
    machine,
    markdown,
    parse_wrk,
    postgres_version,
    prepare_hub,
    print_table,
    reset_postgres,
    run_cmd,
    serve,
    stopping,
    write_doc,
)
from litestar import Litestar, Request, get, post

BEGIN = "<!-- bench/sfmc.py begin -->"
END = "<!-- bench/sfmc.py end -->"
ENV = "bench"
FLOW_ID = "order"
TARGET_RPS = 1000
TARGET_P99_MS = 200
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/hub_bench_sfmc"
DEFAULT_REDIS = "redis://127.0.0.1:6379/9"
SECRET = "bench-jwt-signing-secret-" + "x" * 40
FLOW = {
    "name": "Order follow-up",
    "variables": [{"name": "amount", "type": "number", "required": True},
                  {"name": "discount", "type": "string", "default": "none"}],
    "cardTemplates": [{"id": "note", "name": "Note", "elements": [
        {"type": "headline", "text": "Your order of {{variables.amount}}"},
        {"type": "button", "label": "OK", "action": "dismiss"}]}],
    "steps": [{"id": "send", "type": "card", "template": "note"}],
}

# Each thread reads the pre-signed JWTs (one a line) and sends every N-th, N the thread count:
# no JWT is sent twice. Running out is counted, and fails the run.
WRK_LUA = r"""
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function init(args)
  local all = {}
  for line in io.lines(args[1]) do table.insert(all, line) end
  local count = tonumber(args[2])
  mine = {}
  for i = tid, #all, count do table.insert(mine, all[i]) end
  n = 0
  bad = 0
  ran_out = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/jwt"
end
function request()
  n = n + 1
  if n > #mine then
    ran_out = ran_out + 1
    n = 1
  end
  return wrk.format(nil, nil, nil, mine[n])
end
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local not200, out = 0, 0
  for _, t in ipairs(threads) do
    not200 = not200 + t:get("bad")
    out = out + t:get("ran_out")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"non2xx":%d,"not200":%d,"ran_out":%d,"connect":%d,' ..
    '"read":%d,"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, not200, out, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


# --- the baseline ----------------------------------------------------------------------------


@post("/sfmc/{token:str}/execute", status_code=200)
async def baseline_execute(token: str, request: Request[Any, Any, Any]) -> dict[str, Any]:
    await request.body()
    return {"flowInvocationId": "sfmc-baseline", "reachable": False}


@get("/healthz")
async def baseline_healthz() -> dict[str, str]:
    return {"status": "ok"}


def serve_baseline(port: int) -> None:
    import uvicorn

    # The same uvicorn.run options as `hub serve` (hub/cli.py), one process.
    uvicorn.run(Litestar(route_handlers=[baseline_execute, baseline_healthz], debug=False),
                host="127.0.0.1", port=port, log_config=None, access_log=False, server_header=False,
                proxy_headers=True, timeout_graceful_shutdown=30, lifespan="on")


# --- set-up ----------------------------------------------------------------------------------


def ensure_database(url: str) -> None:
    """Create the benchmark's database when it does not exist yet."""
    import asyncpg

    name = url.rsplit("/", 1)[1]
    server = url.replace("postgresql+asyncpg://", "postgresql://", 1).rsplit("/", 1)[0] + "/postgres"

    async def go() -> None:
        conn = await asyncpg.connect(server)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(go())


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign_tokens(path: Path, count: int, tag: str) -> None:
    """``count`` distinct execute JWTs, one a line: the official example's payload shape, a new
    contact and journey run each (so each is a new start), values as Journey Builder sends them."""
    from hub_plugins.salesforce_mc import signing

    # Signed as signing.sign does (HS256 over base64url header.payload), with the header encoded
    # once: signing a hundred thousand tokens with joserfc would take longer than the runs.
    header = signing.sign({}, SECRET).split(".", 1)[0]
    key = SECRET.encode()
    activity = str(uuid.uuid4())
    journey = str(uuid.uuid4())
    with path.open("w") as out:
        for n in range(count):
            claims = {"inArguments": [{"flowConfigId": FLOW_ID}, {"amount": f"{n % 500}.50"},
                                      {"discount": "15"}],
                      "outArguments": [], "activityObjectID": activity, "journeyId": journey,
                      "activityId": activity, "definitionInstanceId": f"{tag}-{n}",
                      "activityInstanceId": f"{tag}-{n}", "keyValue": f"contact-{n % 20000}", "mode": 0}
            body = b64(json.dumps(claims, separators=(",", ":")).encode())
            signature = b64(hmac.new(key, f"{header}.{body}".encode(), hashlib.sha256).digest())
            out.write(f"{header}.{body}.{signature}\n")


def set_up(args: argparse.Namespace, workdir: Path, servers: list[Server]
           ) -> tuple[Server, str, dict[str, str]]:
    """Hub serving the activity: (server, execute path, Hub's environment variables)."""
    import redis as redis_sync

    with redis_sync.Redis.from_url(args.redis_url) as conn:
        conn.flushdb()
    ensure_database(args.pg_url)
    reset_postgres(args.pg_url)
    env = hub_env(args.pg_url, args.redis_url, [])
    prepare_hub(workdir, env, ENV)
    flow_file = workdir / "flow.json"
    flow_file.write_text(json.dumps(FLOW))
    run_cmd([HUB_BIN, "flows", "apply", str(flow_file), "--env", ENV, "--id", FLOW_ID], workdir, env)
    shown = run_cmd([HUB_BIN, "sfmc", "set", "--env", ENV], workdir,
                    {**env, "HUB_SFMC_JWT_SIGNING_SECRET": SECRET})
    url = next(line for line in shown.splitlines() if line.startswith("activityUrl="))
    path = "/sfmc/" + url.rsplit("/", 1)[1] + "/execute"
    server = serve("hub", workdir, env)
    servers.append(server)
    return server, path, env


def start_worker(workdir: Path, env: dict[str, str], servers: list[Server]) -> Server:
    worker = Server(f"worker-{len(servers)}", [HUB_BIN, "worker"], None, workdir, env, owns_redis=False)
    servers.append(worker)
    return worker


# --- runs ------------------------------------------------------------------------------------


@dataclass
class Row:
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


def wrk(url: str, lua: Path, tokens: Path, args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    argv = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds:g}s", "--timeout", "10s",
            "-s", str(lua), url, "--", str(tokens), str(args.threads)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {seconds + 60:g}s: {url}") from exc
    data = parse_wrk(done)
    errors = data["connect"] + data["read"] + data["write"] + data["timeout"]
    if data["not200"] or data["non2xx"] or errors:
        raise BenchError(f"{url}: {data['not200']} answers were not 200 and {errors} socket errors out "
                         f"of {data['requests']} requests; not a benchmark of accepted contacts")
    return data


def execute_200s(server: Server) -> int:
    status, body = http("GET", server.url + "/metrics")
    if status != 200:
        raise BenchError(f"/metrics answered {status}")
    total = 0.0
    for line in body.decode().splitlines():
        if (line.startswith("hub_http_requests_total{") and 'status="200"' in line
                and "/sfmc/" in line and "/execute" in line):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def count_starts(database: str, unfinished: bool = False) -> int:
    """The execute calls' flow starts stored (``unfinished``: those the worker has not run yet)."""
    async def go() -> int:
        import asyncpg

        conn = await asyncpg.connect(database.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            return int(await conn.fetchval(
                "SELECT count(*) FROM hub_invocation WHERE source = 'sfmc'"
                + (" AND status IN ('pending', 'running')" if unfinished else "")))
        finally:
            await conn.close()

    return asyncio.run(go())


def drained(database: str, worker: Server, limit: float) -> float:
    """Seconds until every stored start has been run (its flow instance and card committed)."""
    started = time.monotonic()
    while count_starts(database, unfinished=True):
        worker.check_alive()
        if time.monotonic() - started > limit:
            raise BenchError(f"the worker had not run every start {limit:g} s later")
        time.sleep(0.25)
    return time.monotonic() - started


ALONE = "Hub POST {activityUrl}/execute (JWT), no worker running"
RUNNING = "Hub POST {activityUrl}/execute (JWT), the worker running the flows meanwhile"


def run(args: argparse.Namespace, workdir: Path, baseline: Server, servers: list[Server]
        ) -> tuple[list[Row], dict[str, Any]]:
    print("setting up Hub...", file=sys.stderr, flush=True)
    hub, path, env = set_up(args, workdir, servers)
    lua = workdir / "execute.lua"
    lua.write_text(WRK_LUA)
    base_row, alone_row, running_row = Row("bare Litestar POST (baseline)"), Row(ALONE), Row(RUNNING)
    runs = 0
    drains: list[tuple[int, float]] = []  # (starts, seconds) for the worker after an alone run

    def hub_run(seconds: float, row: Row | None) -> None:
        nonlocal runs
        runs += 1
        tokens = workdir / f"tokens-{runs}.txt"
        sign_tokens(tokens, args.tokens, f"run{runs}")
        data = wrk(hub.url + path, lua, tokens, args, seconds)
        if data["ran_out"]:
            raise BenchError(f"wrk sent all {args.tokens:,} JWTs and started again: raise --tokens")
        if row is not None:
            row.add(data)
        tokens.unlink()

    def alone_run(seconds: float, row: Row | None) -> None:
        """The worker is stopped: the endpoint has the machine; then the worker runs the backlog."""
        hub_run(seconds, row)
        backlog = count_starts(args.pg_url, unfinished=True)
        worker = start_worker(workdir, env, servers)
        took = drained(args.pg_url, worker, 300)
        if row is not None:
            drains.append((backlog, took))
        worker.stop()

    def running_run(seconds: float, row: Row | None) -> None:
        worker = start_worker(workdir, env, servers)
        time.sleep(2)
        worker.check_alive()
        hub_run(seconds, row)
        drained(args.pg_url, worker, 300)
        worker.stop()

    baseline_tokens = workdir / "baseline-tokens.txt"
    sign_tokens(baseline_tokens, 1000, "baseline")

    def baseline_run(seconds: float, row: Row | None) -> None:
        data = wrk(baseline.url + "/sfmc/x/execute", lua, baseline_tokens, args, seconds)
        if row is not None:
            row.add(data)

    baseline_run(args.warmup, None)
    alone_run(args.warmup, None)
    for n in range(args.rounds):
        plan = [(baseline_run, base_row), (alone_run, alone_row), (running_run, running_row)]
        for go, row in plan if n % 2 == 0 else plan[::-1]:
            go(args.duration, row)
            print(f"round {n + 1}/{args.rounds} {row.endpoint}: {row.rps[-1]:,.0f} req/s "
                  f"p50 {row.p50[-1]:.1f} ms p99 {row.p99[-1]:.1f} ms", file=sys.stderr, flush=True)
    counted = execute_200s(hub)
    stored = count_starts(args.pg_url)
    # Every 200 must have its invocation. A few more may be stored: requests in flight when a wrk
    # run stopped were committed but their answer went to a closed connection.
    slack = args.connections * (2 * args.rounds + 1)
    if not 0 <= stored - counted <= slack:
        raise BenchError(f"{stored:,} starts stored for {counted:,} 200s Hub counted")
    hub.check_alive()
    return [base_row, alone_row, running_row], {"counted": counted, "stored": stored, "drains": drains}


# --- main ------------------------------------------------------------------------------------


def table(rows: list[Row]) -> list[list[str]]:
    base = statistics.median(rows[0].rps)
    out = [["endpoint", "contacts/s (median)", "p50 ms", "p99 ms", "of baseline", "per round"]]
    for row in rows:
        rps = statistics.median(row.rps)
        out.append([row.endpoint, f"{rps:,.0f}", f"{statistics.median(row.p50):.1f}",
                    f"{statistics.median(row.p99):.1f}", f"{rps / base:.0%}",
                    " / ".join(f"{r:,.0f}" for r in row.rps)])
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run (max 15)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds alternating the endpoints")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of unrecorded load per endpoint")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--tokens", type=int, default=80_000, help="distinct JWTs signed per Hub run")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG),
                        help="a PostgreSQL database for the benchmark alone: it is emptied")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS),
                        help="Redis for the benchmark alone: it is flushed")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
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
        print("bench/sfmc.py needs wrk: apt-get update && apt-get install -y wrk", file=sys.stderr)
        return 2
    started = dt.datetime.now(dt.UTC)
    info = machine()
    servers: list[Server] = []
    try:
        info["postgresql server"] = postgres_version(args.pg_url.rsplit("/", 1)[0] + "/postgres")
        with tempfile.TemporaryDirectory(prefix="hub-bench-sfmc-") as tmp, stopping(servers):
            workdir = Path(tmp)
            port = free_port()
            argv = [sys.executable, str(Path(__file__).resolve()), "--serve-baseline", str(port)]
            baseline = Server("baseline", argv, port, workdir, {**os.environ, "PYTHONUNBUFFERED": "1"},
                              owns_redis=False)
            servers.append(baseline)
            baseline.wait_ready()
            rows, check = run(args, workdir, baseline, servers)
    except BenchError as exc:
        print(f"bench/sfmc.py: {exc}", file=sys.stderr)
        return 1
    cells = table(rows)
    print()
    print_table(cells)
    verdicts = []
    for row, where in ((rows[1], "with no worker on the machine"), (rows[2], "with the worker running")):
        rps, p99 = statistics.median(row.rps), statistics.median(row.p99)
        verdicts.append(f"{where}: {rps:,.0f} contacts accepted durably per second, p99 {p99:.0f} ms, "
                        f"{'meets' if rps >= TARGET_RPS and p99 < TARGET_P99_MS else 'misses'} the target "
                        f"of {TARGET_RPS:,}/s with p99 under {TARGET_P99_MS} ms")
    backlog = sum(n for n, _s in check["drains"])
    seconds = sum(s for _n, s in check["drains"])
    worker_rate = (f"The worker, started after each no-worker run, ran its {backlog:,} flow starts "
                   f"(instance and card committed) in {seconds:.1f} s: {backlog / seconds:,.0f} starts/s."
                   if seconds else "")
    verdict = "; ".join(verdicts)
    verdict = verdict[0].upper() + verdict[1:]
    print("\n" + verdict + ". " + worker_rate)
    if not args.no_write:
        lines = [
            f"Run on {started:%Y-%m-%d %H:%M} UTC with:", "", "```", command_line(), "```", "",
            f"wrk `-t{args.threads} -c{args.connections} -d{args.duration:g}s`, {args.rounds} rounds "
            f"alternating the endpoints after a {args.warmup:g} s warm-up of each, median shown; PostgreSQL, "
            "one `hub serve` process; Hub's endpoint twice, once with no worker running (the endpoint has "
            "the two cores, as beside workers on other machines; a `hub worker` is started after each run "
            "and its time to run the backlog is below), once with a `hub worker` running the started "
            "flows meanwhile on the same two cores. Each "
            "request is a distinct pre-signed HS256 JWT (the official example's execute payload shape, "
            "a new `definitionInstanceId`, one of 20,000 contacts), verified, read into typed variables and "
            "committed as a flow start before its 200; every answer checked to be a 200, and every 200 "
            f"Hub counted checked to have its start stored ({check['counted']:,} 200s, "
            f"{check['stored']:,} stored).",
            "", markdown(cells), "", verdict + ".", "", *([worker_rate, ""] if worker_rate else []),
            "| machine | |", "|---|---|", *[f"| {k} | {v} |" for k, v in info.items()],
        ]
        write_doc(DOC, "\n".join(lines), BEGIN, END)
        print(f"written to {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Real-time card streams: 5,000 WebSocket clients on one ``hub serve`` process, and feed polling.

One command sets up a private Hub (``hub migrate``, an environment, an admin client, an ES256 SDK
key, a one-card flow), starts ``hub serve`` (one process) and one ``hub worker``, then:

1. **Memory per connection**: connects ``--clients`` sockets (from ``--client-procs`` separate
   processes, each socket authenticated with its own user's JWT and answered with its hello) and
   reads the server's RSS before (after a warm-up of ``--warm`` sockets) and after; the growth
   divided by the number of sockets is the cost of one. Target: < 50 KB.
2. **Latency**: with every socket still connected and the worker running, starts the flow for
   ``--triggers`` distinct connected users, one at a time every ``--interval`` seconds, and takes
   the time from the trigger's 202 (accepted) to the card frame's arrival at that user's socket.
   Target: p99 < 300 ms. Every trigger must produce its frame, or the run fails.
3. **Feed polling**: ``wrk`` on ``GET /v1/{env}/sdk/streams/default/cards`` with the feed's ETag
   in ``If-None-Match`` (every answer must be a 304), against the bare Litestar endpoint of
   ``bench/baseline_app.py`` driven the same way. Target: >= 2,000 req/s.

::

    .venv/bin/python bench/streams.py [--backend postgres|sqlite] [--clients 5000] [--triggers 200]

The table is printed and, unless ``--no-write``, written between the markers of
``docs/benchmarks.md`` with the date, the machine, the versions and the exact command.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    version,
    write_doc,
)

BEGIN = "<!-- bench/streams.py:begin (generated; edit outside the markers) -->"
END = "<!-- bench/streams.py:end -->"
SCRIPT = Path(__file__).resolve()
ENV = "bench"
FLOW_ID = "stream"
FLOW = {"id": FLOW_ID, "name": "Stream bench",
        "cardTemplates": [{"id": "hi", "name": "Hi", "elements": [
            {"type": "headline", "text": "Hello"}, {"type": "text", "text": "A card for you"}]}],
        "steps": [{"id": "send", "type": "card", "template": "hi"}]}
START_PATH = f"/v1/{ENV}/action-flow/{FLOW_ID}/start"
ISSUER, AUDIENCE = "https://bench.example", "hub-sdk"
TARGETS = {"kb_per_conn": 50.0, "p99_ms": 300.0, "feed_rps": 2000.0}

# wrk prints this line from its `done` hook (wrk counts only statuses > 399 as errors: whether
# Hub's answers were 304s is read from Hub's own /metrics, see `feed_statuses`).
WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def log(message: str) -> None:
    print(f"[streams] {message}", file=sys.stderr, flush=True)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        raise BenchError(f"{needed} file descriptors are needed, the hard limit is {hard} (ulimit -Hn)")


# --- the client processes --------------------------------------------------------------------


async def client_main(url: str, tokens: dict[str, str], concurrency: int, compression: bool) -> None:
    """One client process: connect every token's socket, report READY, record the first card
    frame of each user, and on ``STOP`` (stdin) print what it saw as one JSON line."""
    from websockets.asyncio.client import connect

    frames: dict[str, tuple[float, str]] = {}  # user -> (received at, the card's publishedAt)
    hello: dict[str, int] = {"ok": 0, "failed": 0, "closed": 0}
    gate = asyncio.Semaphore(concurrency)
    ready = asyncio.Event()
    stop = asyncio.Event()
    sockets: list[Any] = []

    def settled() -> None:
        if hello["ok"] + hello["failed"] == len(tokens):
            ready.set()

    async def one(user: str, token: str) -> None:
        async with gate:
            try:
                conn = await connect(f"{url}?token={token}", open_timeout=60, max_queue=4,
                                     compression="deflate" if compression else None,
                                     ping_interval=None)
                first = json.loads(await asyncio.wait_for(conn.recv(), 60))
                if first.get("type") != "hello":
                    raise BenchError(f"first frame {first}")
            except Exception as exc:
                hello["failed"] += 1
                print(f"connect failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                settled()
                return
        hello["ok"] += 1
        sockets.append(conn)
        settled()
        try:
            async for raw in conn:
                received = time.time()
                frame = json.loads(raw)
                if frame["type"] == "ping":
                    await conn.send('{"type":"pong"}')
                elif frame["type"] == "card" and user not in frames:
                    frames[user] = (received, frame["card"]["publishedAt"] or "")
        except Exception as exc:
            if not stop.is_set():
                print(f"socket error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        if not stop.is_set():
            hello["closed"] += 1

    tasks = [asyncio.create_task(one(user, tok)) for user, tok in tokens.items()]
    if tasks:
        await ready.wait()
    print(f"READY {hello['ok']} {hello['failed']}", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    stop.set()
    print("RESULT " + json.dumps({"hello": hello, "frames": frames}), flush=True)
    for conn in sockets:
        conn.transport.abort()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class Clients:
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(self, args: argparse.Namespace, socket_url: str, tokens: dict[str, str], workdir: Path,
              count: int) -> None:
        users = list(tokens)
        for n in range(count):
            part = {u: tokens[u] for u in users[n::count]}
            path = workdir / f"tokens-{len(self.procs)}.json"
            path.write_text(json.dumps(part))
            argv = [sys.executable, str(SCRIPT), "_clients", socket_url, str(path),
                    str(args.concurrency), "1" if args.compression else "0"]
            self.procs.append(subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                               stderr=sys.stderr, text=True, start_new_session=True))

    def wait_ready(self, procs: list[subprocess.Popen[str]], timeout: float) -> tuple[int, int]:
        ok = failed = 0
        deadline = time.monotonic() + timeout
        for proc in procs:
            assert proc.stdout is not None
            line = ""
            while not line.startswith("READY"):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise BenchError(f"a client process did not connect its sockets (last line {line!r})")
                line = proc.stdout.readline()
            _, good, bad = line.split()
            ok, failed = ok + int(good), failed + int(bad)
        return ok, failed

    def results(self, procs: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
        out = []
        for proc in procs:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("STOP\n")
            proc.stdin.flush()
            line = ""
            while not line.startswith("RESULT "):
                line = proc.stdout.readline()
                if not line:
                    raise BenchError("a client process exited without its result")
            out.append(json.loads(line[len("RESULT "):]))
            proc.wait(timeout=30)
        return out

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


# --- Hub set-up ------------------------------------------------------------------------------


def register_key(server: Server, bearer: str) -> Any:
    from joserfc.jwk import ECKey

    key = ECKey.generate_key("P-256")
    body = {"issuer": ISSUER, "audience": AUDIENCE, "pem": key.as_pem(private=False).decode(),
            "name": "bench"}
    status, answer = http("POST", f"{server.url}/v1/{ENV}/sdk-keys", data=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json", "Authorization": f"Bearer {bearer}"})
    if status != 201:
        raise BenchError(f"POST sdk-keys answered {status}: {answer[:300]!r}")
    return key


def sign_tokens(key: Any, users: list[str], ttl: int) -> dict[str, str]:
    from joserfc import jwt

    now = int(time.time())
    header = {"alg": "ES256", "typ": "JWT"}
    return {u: jwt.encode(header, {"sub": u, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + ttl},
                          key) for u in users}


def trigger(server: Server, bearer: str, user: str) -> tuple[float, float]:
    body = json.dumps({"flows": [{"target": {"usersById": [user]}}]}).encode()
    sent = time.time()
    status, answer = http("POST", server.url + START_PATH, data=body,
                          headers={"Content-Type": "application/json", "Authorization": f"Bearer {bearer}"})
    accepted = time.time()
    if status != 202:
        raise BenchError(f"flow start answered {status}: {answer[:300]!r}")
    return sent, accepted


def wrk(url: str, headers: dict[str, str], args: argparse.Namespace, lua: Path) -> dict[str, Any]:
    argv = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration:g}s", "--timeout", "5s", "-s", str(lua)]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    data = parse_wrk(subprocess.run(argv, capture_output=True, text=True, timeout=args.duration + 30))
    errors = data["connect"] + data["read"] + data["write"] + data["timeout"]
    if data["non2xx"] or errors:
        raise BenchError(f"{url}: {data['non2xx']} answers >= 400 and {errors} socket errors")
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    return data


def feed_statuses(server: Server) -> dict[str, float]:
    """``hub_http_requests_total`` of the feed route by status (Hub's own count)."""
    status, body = http("GET", server.url + "/metrics")
    if status != 200:
        raise BenchError(f"/metrics answered {status}")
    counts: dict[str, float] = {}
    for line in body.decode().splitlines():
        if line.startswith("hub_http_requests_total{") and "/sdk/streams/" in line:
            match = re.search(r'status="(\d+)"\}\s+([0-9.e+]+)', line)
            if match:
                counts[match[1]] = counts.get(match[1], 0.0) + float(match[2])
    return counts


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Result:
    clients: int = 0
    connected: int = 0
    failed: int = 0
    dropped: int = 0
    connect_s: float = 0.0
    rss_before_mib: float = 0.0
    rss_after_mib: float = 0.0
    kb_per_conn: float = 0.0
    triggers: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    trigger_ms: list[float] = field(default_factory=list)
    to_card_ms: list[float] = field(default_factory=list)
    to_socket_ms: list[float] = field(default_factory=list)
    feed: dict[str, Any] = field(default_factory=dict)
    feed_304s: int = 0
    baseline: dict[str, Any] = field(default_factory=dict)


def run(args: argparse.Namespace, workdir: Path, servers: list[Server], clients: Clients) -> Result:
    res = Result(clients=args.clients)
    env = hub_env(database_url(args.backend, args.pg_url, workdir), args.redis_url, args.hub_env)
    admin = prepare_hub(workdir, env, ENV)
    flow_file = workdir / "flow.json"
    flow_file.write_text(json.dumps(FLOW))
    run_cmd([HUB_BIN, "flows", "apply", str(flow_file), "--env", ENV], workdir, env)
    server = serve("serve", workdir, env)
    servers.append(server)
    worker = Server("worker", [HUB_BIN, "worker"], None, workdir, env, owns_redis=False)
    servers.append(worker)
    bearer = token(server, ENV, admin)
    key = register_key(server, bearer)
    users = [f"user-{n:05d}" for n in range(args.clients + args.warm)]
    tokens = sign_tokens(key, users, ttl=3600)
    socket_url = server.url.replace("http://", "ws://") + f"/v1/{ENV}/sdk/socket"

    log(f"warm-up: {args.warm} sockets")
    warm = {u: tokens[u] for u in users[:args.warm]}
    clients.start(args, socket_url, warm, workdir, 1)
    clients.wait_ready(clients.procs[:1], 120)
    time.sleep(2)
    before_kib = rss_kib(server.pid)
    res.rss_before_mib = before_kib / 1024
    log(f"server RSS {res.rss_before_mib:.1f} MiB; connecting {args.clients} sockets "
        f"from {args.client_procs} processes")
    started = time.monotonic()
    main = {u: tokens[u] for u in users[args.warm:]}
    clients.start(args, socket_url, main, workdir, args.client_procs)
    res.connected, res.failed = clients.wait_ready(clients.procs[1:], args.connect_timeout)
    res.connect_s = time.monotonic() - started
    time.sleep(3)
    server.check_alive()
    after_kib = rss_kib(server.pid)
    res.rss_after_mib = after_kib / 1024
    res.kb_per_conn = (after_kib - before_kib) / max(1, res.connected)
    log(f"{res.connected} connected ({res.failed} failed) in {res.connect_s:.1f}s; server RSS "
        f"{res.rss_after_mib:.1f} MiB: {res.kb_per_conn:.1f} KiB per connection")

    chosen = random.Random(7).sample(list(main), min(args.triggers, len(main)))
    log(f"latency: {len(chosen)} triggers, one every {args.interval}s, worker running")
    trigger(server, bearer, users[0])  # warm the worker's code path (a warm-up user)
    time.sleep(1)
    sent_at: dict[str, tuple[float, float]] = {}
    for user in chosen:
        sent_at[user] = trigger(server, bearer, user)
        time.sleep(args.interval)
    time.sleep(3)
    worker.check_alive()
    results = clients.results(clients.procs)
    frames: dict[str, tuple[float, str]] = {}
    for part in results:
        frames.update(part["frames"])
        res.dropped += part["hello"]["closed"]
    res.triggers = len(chosen)
    missing = [u for u in chosen if u not in frames]
    if missing:
        raise BenchError(f"{len(missing)} of {len(chosen)} triggered users never received their card "
                         f"frame (e.g. {missing[:3]}): {worker.tail()[-500:]}")
    res.latencies_ms = [(frames[u][0] - sent_at[u][1]) * 1000 for u in chosen]
    published = {u: dt.datetime.fromisoformat(frames[u][1].replace("Z", "+00:00")).timestamp()
                 for u in chosen if frames[u][1]}
    res.to_card_ms = [(published[u] - sent_at[u][1]) * 1000 for u in published]
    res.to_socket_ms = [(frames[u][0] - published[u]) * 1000 for u in published]
    res.trigger_ms = [(sent_at[u][1] - sent_at[u][0]) * 1000 for u in chosen]
    log(f"latency p50 {pct(res.latencies_ms, 50):.1f} ms, p99 {pct(res.latencies_ms, 99):.1f} ms")
    clients.stop()
    worker.stop()
    feed_polling(res, args, workdir, server, tokens[chosen[0]], servers)
    return res


def feed_polling(res: Result, args: argparse.Namespace, workdir: Path, server: Server, user_token: str,
                 servers: list[Server]) -> None:
    lua = workdir / "count.lua"
    lua.write_text(WRK_LUA)
    feed_url = f"{server.url}/v1/{ENV}/sdk/streams/default/cards"
    auth = {"Authorization": f"Bearer {user_token}"}
    status, body = http("GET", feed_url, headers=auth)
    if status != 200 or not json.loads(body)["cards"]:
        raise BenchError(f"the feed answered {status}: {body[:300]!r}")
    etag = json.loads(body)["version"]
    headers = {**auth, "If-None-Match": f'"{etag}"'}
    port = free_port()
    argv = [sys.executable, str(ROOT / "bench" / "baseline_app.py"), "--port", str(port)]
    baseline = Server("baseline", argv, port, workdir, {**os.environ, "PYTHONUNBUFFERED": "1"},
                      owns_redis=False)
    servers.append(baseline)
    baseline.wait_ready()
    base_url = f"{baseline.url}/v1/{ENV}/users/someone"
    log(f"feed polling: wrk {args.duration:g}s x {args.rounds} rounds, {args.connections} connections")
    feeds, bases = [], []
    before = feed_statuses(server)
    for _ in range(args.rounds):
        feeds.append(wrk(feed_url, headers, args, lua))
        bases.append(wrk(base_url, {}, args, lua))
    after = feed_statuses(server)
    answered = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
    if set(answered) != {"304"}:
        raise BenchError(f"the feed answered {answered} during the rounds: not a benchmark of 304s")
    res.feed_304s = int(answered["304"])
    res.feed = sorted(feeds, key=lambda r: r["rps"])[len(feeds) // 2]
    res.baseline = sorted(bases, key=lambda r: r["rps"])[len(bases) // 2]
    res.feed["rounds"] = [f["rps"] for f in feeds]
    log(f"feed 304s {res.feed['rps']:,.0f} req/s; baseline {res.baseline['rps']:,.0f} req/s")


def ok(good: bool) -> str:
    return "yes" if good else "**no**"


def table(res: Result) -> list[list[str]]:
    p50, p99 = pct(res.latencies_ms, 50), pct(res.latencies_ms, 99)
    return [
        ["figure", "value", "target", "met"],
        ["sockets connected (failed / dropped)",
         f"{res.connected:,} of {res.clients:,} ({res.failed} / {res.dropped})", "all", ok(
             res.connected == res.clients and not res.dropped)],
        ["time to connect them", f"{res.connect_s:.1f} s", "-", "-"],
        ["server RSS before → after", f"{res.rss_before_mib:.1f} → {res.rss_after_mib:.1f} MiB", "-", "-"],
        ["server memory per connection", f"{res.kb_per_conn:.1f} KiB", "< 50 KB",
         ok(res.kb_per_conn < TARGETS["kb_per_conn"])],
        ["trigger accepted → card frame, p50", f"{p50:.1f} ms", "-", "-"],
        ["trigger accepted → card frame, p99 (max)", f"{p99:.1f} ms ({max(res.latencies_ms):.1f} ms)",
         "< 300 ms", ok(p99 < TARGETS["p99_ms"])],
        ["triggers (every one delivered)", f"{res.triggers}", "-", "-"],
        ["… of which accepted → card published (flow job), p50 / p99",
         f"{pct(res.to_card_ms, 50):.1f} / {pct(res.to_card_ms, 99):.1f} ms", "-", "-"],
        ["… of which card published → frame at the socket, p50 / p99",
         f"{pct(res.to_socket_ms, 50):.1f} / {pct(res.to_socket_ms, 99):.1f} ms", "-", "-"],
        ["trigger request itself, p50", f"{statistics.median(res.trigger_ms):.1f} ms", "-", "-"],
        ["feed polling, 304s", f"{res.feed['rps']:,.0f} req/s (p99 {res.feed['p99_us'] / 1000:.1f} ms)",
         ">= 2,000 req/s", ok(res.feed["rps"] >= TARGETS["feed_rps"])],
        ["bare Litestar baseline, 200s", f"{res.baseline['rps']:,.0f} req/s", "-", "-"],
        ["feed 304s / baseline", f"{res.feed['rps'] / res.baseline['rps']:.0%}", "-", "-"],
    ]


def report(res: Result, args: argparse.Namespace, info: dict[str, str], started: dt.datetime) -> str:
    deflate = "offered, as browsers do; `hub serve` declines it" if args.compression else "not offered"
    lines = [
        f"### Real-time streams (`bench/streams.py`), {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"One `hub serve` process (uvicorn, {args.backend}, embedded Redis unless `--redis-url`) and one "
        f"`hub worker`; {args.clients:,} WebSocket clients in {args.client_procs} separate processes "
        f"(Python `websockets`; permessage-deflate {deflate}), each "
        "its own user with its own ES256 JWT. Memory: the server's RSS growth from "
        f"{args.warm} warm-up sockets to all of them, per socket. Latency: {res.triggers} flow starts "
        f"for distinct connected users, one every {args.interval} s, from the start's 202 to the "
        "card frame at that user's socket (same machine clock). Feed: wrk, "
        f"{args.connections} connections, {args.duration:g} s x {args.rounds} rounds (median), every "
        "answer a 304; the baseline is `bench/baseline_app.py`'s GET (200, small JSON).",
        "",
        markdown(table(res)),
        "",
        "| machine | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in info.items()],
        "",
        f"Command: `{command_line()}`",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG),
                        help="a PostgreSQL database for the benchmark alone: it is emptied")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", ""),
                        help="HUB_REDIS_URL for Hub (empty: the embedded Redis)")
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--client-procs", type=int, default=4)
    parser.add_argument("--warm", type=int, default=50, help="sockets connected before the first RSS")
    parser.add_argument("--concurrency", type=int, default=50, help="connects in flight per client process")
    parser.add_argument("--connect-timeout", type=float, default=600)
    parser.add_argument("--compression", action=argparse.BooleanOptionalAction, default=True,
                        help="clients offer permessage-deflate, as browsers do")
    parser.add_argument("--triggers", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between triggers")
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--hub-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--no-write", action="store_true", help=f"do not update {DOC.relative_to(ROOT)}")
    parser.add_argument("--output", type=Path, default=DOC)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_clients":
        tokens = json.loads(Path(argv[2]).read_text())
        raise_fd_limit(len(tokens) + 100)
        asyncio.run(client_main(argv[1], tokens, int(argv[3]), argv[4] == "1"))
        return 0
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench/streams.py needs wrk: apt-get install -y wrk (Debian/Ubuntu), brew install wrk",
              file=sys.stderr)
        return 2
    started = dt.datetime.now(dt.UTC)
    info = machine()
    if args.backend == "postgres":
        info["postgresql server"] = postgres_version(args.pg_url)
    info["websockets"] = version("websockets")
    servers: list[Server] = []
    clients = Clients()
    try:
        raise_fd_limit(args.clients + args.warm + 1000)
        with tempfile.TemporaryDirectory(prefix="hub-bench-streams-") as tmp, stopping(servers):
            try:
                res = run(args, Path(tmp), servers, clients)
            finally:
                clients.stop()
    except BenchError as exc:
        print(f"bench/streams.py: {exc}", file=sys.stderr)
        return 1
    print_table(table(res))
    if not args.no_write:
        write_doc(args.output, report(res, args, info, started), BEGIN, END)
        print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

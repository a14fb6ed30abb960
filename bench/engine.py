"""How fast flows run: a large fan-out, and the single-user start endpoint, with workers running.

Per backend, in a private temp dir (so ``./var`` is its own), the benchmark sets Hub up (migrate,
an environment, an admin client, a one-card flow), starts ``hub serve`` and two ``hub worker``
processes, and measures::

    .venv/bin/python bench/engine.py [--backend postgres|sqlite|both] [--customers 100000] [--duration 15]

1. **Fan-out**: ``--customers`` customers tagged ``everyone`` (``--sqlite-customers`` on SQLite,
   20,000 by default: one writer) are loaded in-process through
   ``hub.services.customers.upsert_customers`` (timed apart, not counted), then one
   ``POST /v1/bench/action-flow/bench/start`` targets the tag. Reported: the time from the 202 to
   the invocation's ``completedAt`` (every instance and its card committed: they are written in
   one transaction per chunk), cross-checked with ``count(*)`` of its cards; cards/s; each
   worker's peak RSS (``VmHWM``, sampled with ``VmRSS`` every 0.25 s) and CPU seconds.
2. **Latency, trigger accepted to card committed**, at a fixed ``--rate`` (100/s) for
   ``--latency-seconds`` (20): an open-loop asyncio/httpx client starts the flow for a new user
   per request, records when it sent each request and when the 202 came, and a poller reads
   ``hub_card`` every 10 ms for the users still waiting. Reported: p50/p99 of (card seen
   committed − request sent) and of (card ``created_at`` − request sent); ``created_at`` is
   stamped when the worker begins the job, before its commit, so the first is the honest one.
3. **Start endpoint throughput**: ``wrk`` (a Lua script that names a new user per request and
   counts every answer that is not a 202) for ``--duration`` seconds, twice: with no worker
   running (the endpoint has both cores, as beside workers on machines of their own; the
   workers start after wrk), then with the two workers running the flows meanwhile; each time
   the time the workers need to finish the backlog (every invocation ``completed``, bounded).

The latency runs first, once the customers are loaded (after a large fan-out the workers and
``hub serve`` go on digesting its announcements for a while), then the fan-out, then wrk.
``--parts`` runs some of them (a partial run never writes the document).

Every run is bounded (``--fanout-timeout``, ``--drain-timeout``) and every process started is
stopped by process group, also on Ctrl-C. The table is printed and, unless ``--no-write``,
written between this benchmark's markers in ``docs/benchmarks.md`` (the API benchmark's block
is left alone). ``--profile DIR`` also records each worker with ``py-spy`` during the fan-out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
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

PARTS = ("fanout", "latency", "throughput")
BEGIN = "<!-- bench/engine.py:begin (generated; edit outside the markers) -->"
END = "<!-- bench/engine.py:end -->"
ENV = "bench"
FLOW_ID = "bench"
FLOW = {"id": FLOW_ID, "name": "Bench",
        "cardTemplates": [{"id": "hi", "name": "Hi",
                           "elements": [{"type": "headline", "text": "Hi {{customer.fields.name}}"}]}],
        "steps": [{"id": "send", "type": "card", "template": "hi"}]}
START_PATH = f"/v1/{ENV}/action-flow/{FLOW_ID}/start"
PG_REDIS = "redis://127.0.0.1:6379/14"
TARGETS = {"fanout_s": 60.0, "fanout_cps": 1700.0, "rps": {"postgres": 1000.0, "sqlite": 500.0},
           "p99_ms": 250.0}
WORKERS = 2
SCRIPT = Path(__file__).resolve()

# A new user id per request (u-<prefix>-<thread>-<n>); every answer that is not a 202 is counted,
# and the totals of every thread come back through the `done` hook as one JSON line.
WRK_LUA = r"""
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function init(args)
  prefix = "u-" .. (args[1] or "w") .. "-" .. tid .. "-"
  n = 0
  bad = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  n = n + 1
  return wrk.format(nil, nil, nil,
    '{"flows":[{"target":{"usersById":["' .. prefix .. n .. '"]}}]}')
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


@dataclass
class StartRun:
    """One wrk run on the start endpoint, and the workers' backlog after it."""

    rps: float = 0.0
    requests: int = 0
    p50: float = 0.0
    p99: float = 0.0
    invocations: int = 0
    not202: int = 0
    errors: int = 0
    cpu_ms: dict[str, float] = field(default_factory=dict)
    backlog_s: float | None = None
    backlog_left: int = 0


@dataclass
class Result:
    backend: str
    customers: int = 0
    load_s: float = 0.0
    fanout_s: float | None = None
    fanout_cards: int = 0
    fanout_complete: bool = False
    first_card_s: float | None = None
    last_card_s: float | None = None
    worker_hwm_mib: list[float] = field(default_factory=list)
    worker_idle_mib: list[float] = field(default_factory=list)
    worker_cpu_s: list[float] = field(default_factory=list)
    fanout_drain_s: float | None = None
    fanout_pg_cpu_s: float | None = None
    lat_sent: int = 0
    lat_not202: int = 0
    lat_ack_p50: float = 0.0
    lat_ack_p99: float = 0.0
    lat_commit_p50: float = 0.0
    lat_commit_p99: float = 0.0
    lat_created_p50: float = 0.0
    lat_created_p99: float = 0.0
    lat_missing: int = 0
    lat_rate: float = 0.0
    starts: dict[str, StartRun] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def log(backend: str, message: str) -> None:
    print(f"[{backend}] {message}", file=sys.stderr, flush=True)


# --- process measurements --------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (kB) of a process."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def cpu_seconds(pid: int) -> float:
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def postgres_cpu_seconds() -> float:
    """CPU seconds of every process named ``postgres`` (the server is shared: an upper bound)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    total += cpu_seconds(int(entry.name))
    return total


class Sampler:
    """Samples the workers' RSS every 0.25 s while running; keeps the peak of each."""

    def __init__(self, pids: list[int]):
        self.pids = pids
        self.peak_rss = dict.fromkeys(pids, 0)
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            for pid in self.pids:
                self.peak_rss[pid] = max(self.peak_rss[pid], proc_status(pid).get("VmRSS", 0))
            await asyncio.sleep(0.25)

    def __enter__(self) -> Sampler:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_: Any) -> None:
        if self._task is not None:
            self._task.cancel()


# --- the database and the queue, as the benchmark sees them ---------------------------------


class Probe:
    """Read-only queries on Hub's tables, and the queue's length, from the benchmark process."""

    def __init__(self, db_url: str, redis_url: str):
        from redis.asyncio import Redis
        from sqlalchemy import func, select

        from hub.db import make_engine, tables

        self.engine = make_engine(db_url, pool_size=2)
        self.redis = Redis.from_url(redis_url)
        self.tables, self.select, self.func = tables, select, func

    async def close(self) -> None:
        await self.engine.dispose()
        await self.redis.aclose()

    async def rows(self, statement: Any) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(statement)).all())

    async def invocation(self, invocation_id: str) -> Any:
        v = self.tables.invocation.c
        rows = await self.rows(self.select(v.status, v.started, v.created_at, v.completed_at)
                               .where(v.environment_id == ENV, v.id == invocation_id))
        return rows[0] if rows else None

    async def cards_of(self, invocation_id: str) -> tuple[int, Any, Any]:
        k = self.tables.card.c
        count, first, last = (await self.rows(self.select(
            self.func.count(), self.func.min(k.created_at), self.func.max(k.created_at))
            .where(k.invocation_id == invocation_id)))[0]
        return int(count), first, last

    async def unfinished(self, since: dt.datetime) -> int:
        """Invocations created since ``since`` that have not created their instances yet."""
        v = self.tables.invocation.c
        return int((await self.rows(self.select(self.func.count()).where(
            v.environment_id == ENV, v.created_at >= since,
            v.status.in_(("pending", "running")))))[0][0])

    async def api_invocations(self) -> int:
        v = self.tables.invocation.c
        return int((await self.rows(self.select(self.func.count()).where(v.environment_id == ENV)))[0][0])

    async def queue_ready(self) -> int:
        """Jobs due now in arq's queue, cron jobs aside (a job stays there until it is done)."""
        from hub.queue import QUEUE_NAME

        due = await self.redis.zrangebyscore(QUEUE_NAME, "-inf", int(time.time() * 1000))
        return sum(1 for job in due if not job.startswith(b"cron:"))

    async def drain(self, limit: float) -> float | None:
        """Wait until the queue has been idle twice in a row; seconds waited, None after ``limit``."""
        start = time.monotonic()
        idle = 0
        while time.monotonic() - start < limit:
            idle = idle + 1 if await self.queue_ready() == 0 else 0
            if idle >= 2:
                return time.monotonic() - start
            await asyncio.sleep(0.25)
        return None


# --- set-up ----------------------------------------------------------------------------------


async def load_customers(count: int, batch: int) -> None:
    """In a child process whose cwd and HUB_* are the benchmark's Hub: create the customers."""
    from hub.app import Hub
    from hub.services.customers import upsert_customers
    from hub.settings import load_settings

    hub = Hub(load_settings())
    await hub.start()
    try:
        for lo in range(0, count, batch):
            items = [{"userId": f"c-{n:06d}", "tags": ["everyone"]}
                     for n in range(lo + 1, min(count, lo + batch) + 1)]
            result = await upsert_customers(hub, ENV, items)
            if result["failed"]:
                raise SystemExit(f"upsert failed: {result['results'][:3]}")
    finally:
        await hub.close()


def start_post(url: str, bearer: str, target: dict[str, Any]) -> dict[str, Any]:
    status, body = http("POST", url + START_PATH, data=json.dumps({"flows": [{"target": target}]}).encode(),
                        headers={"Content-Type": "application/json", "Authorization": f"Bearer {bearer}"})
    if status != 202:
        raise BenchError(f"start answered {status}: {body[:300]!r}")
    return dict(json.loads(body)["flows"][0])


async def wait_invocation(probe: Probe, invocation_id: str, limit: float) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        row = await probe.invocation(invocation_id)
        if row is not None and row.status == "completed":
            return row
        await asyncio.sleep(0.25)
    return None


# --- the measurements ------------------------------------------------------------------------


def start_py_spy(pids: list[int], directory: Path, backend: str,
                 seconds: float) -> list[subprocess.Popen[bytes]]:
    """``py-spy record`` of each worker (raw collapsed stacks), stopped with SIGINT by the caller."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return [subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "50", "--format", "raw",
                              "--nonblocking", "-d", str(int(seconds)), "-o",
                              str(directory / f"{backend}-worker{n + 1}-fanout.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            for n, pid in enumerate(pids)]


async def fanout(res: Result, server: Server, bearer: str, probe: Probe, workers: list[Server],
                 args: argparse.Namespace, profile_dir: Path | None) -> None:
    pids = [w.pid for w in workers]
    res.worker_idle_mib = [proc_status(p).get("VmRSS", 0) / 1024 for p in pids]
    cpu0 = [cpu_seconds(p) for p in pids]
    pg_cpu0 = postgres_cpu_seconds()
    spies: list[subprocess.Popen[bytes]] = []
    if profile_dir is not None:
        spies = start_py_spy(pids, profile_dir, res.backend, args.fanout_timeout)
        await asyncio.sleep(1.0)
    with Sampler(pids) as sampler:
        sent = time.time()
        invocation = await asyncio.to_thread(start_post, server.url, bearer, {"tags": ["everyone"]})
        accepted = time.time()
        invocation_id = invocation["flowInvocationId"]
        log(res.backend, f"fan-out {invocation_id} accepted in {accepted - sent:.2f}s")
        deadline = time.monotonic() + args.fanout_timeout
        row = None
        last_report = time.monotonic()
        while time.monotonic() < deadline:
            for w in workers:
                w.check_alive()
            row = await probe.invocation(invocation_id)
            if row is not None and row.status == "completed":
                break
            if time.monotonic() - last_report > 10:
                last_report = time.monotonic()
                log(res.backend, f"  {row.started if row else 0:,} instances after "
                                 f"{time.time() - accepted:.0f}s")
            await asyncio.sleep(0.25)
        for spy_proc in spies:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(spy_proc.pid, 2)  # SIGINT: py-spy writes what it has
        for spy_proc in spies:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(spy_proc.wait, 30)
    res.worker_cpu_s = [cpu_seconds(p) - c for p, c in zip(pids, cpu0, strict=True)]
    if res.backend == "postgres":
        res.fanout_pg_cpu_s = postgres_cpu_seconds() - pg_cpu0
    res.worker_hwm_mib = [max(proc_status(p).get("VmHWM", 0), sampler.peak_rss[p]) / 1024 for p in pids]
    count, first, last = await probe.cards_of(invocation_id)
    res.fanout_cards = count
    if first is not None:
        res.first_card_s = first.timestamp() - accepted
        res.last_card_s = last.timestamp() - accepted
    if row is not None and row.status == "completed" and row.completed_at is not None:
        res.fanout_complete = True
        res.fanout_s = row.completed_at.timestamp() - accepted
        if count != res.customers:
            raise BenchError(f"invocation completed with {count} cards for {res.customers} customers")
    else:
        res.fanout_s = time.time() - accepted
        res.notes.append(f"fan-out stopped at the {args.fanout_timeout:g} s bound with "
                         f"{count:,} of {res.customers:,} cards")
    log(res.backend, f"fan-out: {count:,} cards in {res.fanout_s:.1f}s "
                     f"({count / res.fanout_s:,.0f}/s); worker peak RSS "
                     f"{', '.join(f'{m:.0f}' for m in res.worker_hwm_mib)} MiB")


async def latency(res: Result, server: Server, bearer: str, probe: Probe, args: argparse.Namespace) -> None:
    """Open loop at ``args.rate``/s: sent → 202 → card committed, per request."""
    import httpx

    k = probe.tables.card.c
    total = int(args.rate * args.latency_seconds)
    sent: dict[str, float] = {}
    acked: dict[str, float] = {}
    seen: dict[str, float] = {}
    created: dict[str, float] = {}
    statuses: list[int] = []
    outstanding: set[str] = set()
    sending_done = asyncio.Event()

    async def one(client: httpx.AsyncClient, user: str) -> None:
        body = {"flows": [{"target": {"usersById": [user]}}]}
        sent[user] = time.time()
        try:
            response = await client.post(START_PATH, json=body)
            statuses.append(response.status_code)
        except httpx.HTTPError:
            statuses.append(0)
            return
        if response.status_code == 202:
            acked[user] = time.time()
            outstanding.add(user)

    async def poll() -> None:
        while True:
            if outstanding:
                users = list(outstanding)
                rows = await probe.rows(probe.select(k.user_id, k.created_at).where(
                    k.environment_id == ENV, k.user_id.in_(users)))
                stamp = time.time()
                for user, created_at in rows:
                    if user in outstanding:
                        outstanding.discard(user)
                        seen[user] = stamp
                        created[user] = created_at.timestamp()
            elif sending_done.is_set():
                return
            await asyncio.sleep(0.01)

    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    headers = {"Authorization": f"Bearer {bearer}"}
    poller = asyncio.create_task(poll())
    async with httpx.AsyncClient(base_url=server.url, headers=headers, limits=limits,
                                 timeout=30.0) as client:
        tasks = []
        t0 = time.monotonic() + 0.2
        for n in range(total):
            delay = t0 + n / args.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(client, f"lat-{n:06d}")))
        elapsed = time.monotonic() - t0
        await asyncio.gather(*tasks)
    sending_done.set()
    try:
        await asyncio.wait_for(poller, timeout=30)
    except TimeoutError:
        pass
    res.lat_sent, res.lat_rate = total, total / elapsed
    res.lat_not202 = sum(1 for s in statuses if s != 202)
    res.lat_missing = len(outstanding)
    ack = [(acked[u] - sent[u]) * 1000 for u in acked]
    commit = [(seen[u] - sent[u]) * 1000 for u in seen]
    stamped = [(created[u] - sent[u]) * 1000 for u in created]
    res.lat_ack_p50, res.lat_ack_p99 = pct(ack, 50), pct(ack, 99)
    res.lat_commit_p50, res.lat_commit_p99 = pct(commit, 50), pct(commit, 99)
    res.lat_created_p50, res.lat_created_p99 = pct(stamped, 50), pct(stamped, 99)
    if res.lat_not202:
        res.notes.append(f"latency: {res.lat_not202} of {total} start requests were not answered 202 "
                         "within 30 s (status 0: timed out)")
    if res.lat_missing:
        res.notes.append(f"latency: {res.lat_missing} cards not committed 30 s after the last request")
    log(res.backend, f"latency at {res.lat_rate:.0f}/s: 202 p50 {res.lat_ack_p50:.0f} ms; card committed "
                     f"p50 {res.lat_commit_p50:.0f} ms p99 {res.lat_commit_p99:.0f} ms")


async def throughput(res: Result, mode: str, server: Server, bearer: str, probe: Probe, lua: Path,
                     args: argparse.Namespace, workers: list[Server],
                     start_workers: Any = None) -> None:
    """wrk on the start endpoint, then the time until the workers have run every invocation.

    ``mode`` ``alone``: no worker runs during wrk (``start_workers()`` starts them once it is
    done), so the endpoint has the two cores to itself, as it would beside workers on other
    machines; ``running``: the workers run the started flows meanwhile, on the same two cores."""
    run = res.starts[mode] = StartRun()
    before = await probe.api_invocations()
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    # `hub serve` with one HTTP process runs uvicorn in that process; the workers are single processes.
    serve_cpu0, pg_cpu0 = cpu_seconds(server.pid), postgres_cpu_seconds()
    workers_cpu0 = [cpu_seconds(w.pid) for w in workers]
    argv = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration:g}s", "--timeout", "10s",
            "-s", str(lua), "-H", f"Authorization: Bearer {bearer}", server.url + START_PATH,
            "--", f"{res.backend[:2]}{mode[:1]}"]
    started = time.monotonic()
    try:
        done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True,
                                       timeout=args.duration + 30)
    except subprocess.TimeoutExpired as exc:
        raise BenchError("wrk did not finish in time") from exc
    data = parse_wrk(done)
    serve_cpu = cpu_seconds(server.pid) - serve_cpu0
    errors = data["connect"] + data["read"] + data["write"] + data["timeout"]
    run.not202, run.errors = data["not202"], errors
    if data["not202"] or errors:  # reported (and the target missed), not fatal: the rest still counts
        res.notes.append(f"start endpoint ({mode}): {data['not202']} answers not 202 and {errors} socket "
                         f"errors (timeouts: {data['timeout']}) out of {data['requests']} requests")
    run.requests = data["requests"]
    run.rps = data["requests"] / (data["duration_us"] / 1e6)
    run.p50, run.p99 = data["p50_us"] / 1000, data["p99_us"] / 1000
    run.invocations = await probe.api_invocations() - before
    if run.invocations < run.requests:
        raise BenchError(f"wrk saw {run.requests} 202s but only {run.invocations} invocations "
                         "were recorded")
    log(res.backend, f"start endpoint ({mode}): {run.rps:,.0f} req/s (p50 {run.p50:.1f} ms, "
                     f"p99 {run.p99:.1f} ms); {await probe.unfinished(since):,} invocations left to run")
    if start_workers is not None:
        workers = start_workers()
        workers_cpu0 = [0.0 for _w in workers]
        started = time.monotonic()
    deadline = time.monotonic() + args.drain_timeout
    while time.monotonic() < deadline:
        left = await probe.unfinished(since)
        if left == 0:
            run.backlog_s = time.monotonic() - started
            break
        await asyncio.sleep(0.5)
    else:
        run.backlog_left = await probe.unfinished(since)
        res.notes.append(f"backlog ({mode}): {run.backlog_left:,} invocations still unfinished "
                         f"{args.drain_timeout:g} s after wrk stopped")
    if run.backlog_s is not None:
        pg_cpu = postgres_cpu_seconds() - pg_cpu0
        workers_cpu = sum(cpu_seconds(w.pid) - c for w, c in zip(workers, workers_cpu0, strict=True))
        run.cpu_ms = {"serve": serve_cpu / run.invocations * 1000,
                      "workers": workers_cpu / run.invocations * 1000}
        if res.backend == "postgres":
            run.cpu_ms["postgres"] = pg_cpu / run.invocations * 1000
        log(res.backend, "CPU ms per start: " + ", ".join(f"{k} {v:.2f}" for k, v in run.cpu_ms.items()))
        log(res.backend, f"backlog of {run.invocations:,} invocations done {run.backlog_s:.1f}s after "
                         f"{'the workers started' if start_workers else 'wrk started'}")


def fresh_stores(backend: str, args: argparse.Namespace, workdir: Path) -> tuple[str, str]:
    """The database URL (PostgreSQL emptied) and the Redis URL (flushed; empty: embedded)."""
    db_url = database_url(backend, args.pg_url, workdir)
    redis_url = args.redis_url if backend == "postgres" else ""
    if redis_url:
        from redis import Redis

        with Redis.from_url(redis_url) as r:
            r.flushdb()
    return db_url, redis_url


def new_workers(backend: str, workdir: Path, env: dict[str, str], servers: list[Server]) -> list[Server]:
    """Start :data:`WORKERS` ``hub worker`` processes (each log named by its start, so a restart
    keeps the earlier log)."""
    workers = []
    for n in range(WORKERS):
        name = f"worker{n + 1}-{backend}-{sum(1 for s in servers if s.port is None) + 1}"
        worker = Server(name, [HUB_BIN, "worker"], None, workdir, env, owns_redis=False)
        servers.append(worker)
        workers.append(worker)
    return workers


async def run_backend(backend: str, args: argparse.Namespace, workdir: Path, lua: Path,
                      servers: list[Server], db_url: str, redis_url: str) -> Result:
    count = args.customers if backend == "postgres" else args.sqlite_customers
    res = Result(backend, customers=count)
    env = hub_env(db_url, redis_url, args.hub_env)
    client = prepare_hub(workdir, env, ENV)
    flow_file = workdir / "flow.json"
    flow_file.write_text(json.dumps(FLOW))
    flow_id = run_cmd([HUB_BIN, "flows", "apply", str(flow_file), "--env", ENV], workdir, env).strip()
    if flow_id != FLOW_ID:
        raise BenchError(f"hub flows apply printed {flow_id!r}")
    server = serve(f"serve-{backend}", workdir, env)
    servers.append(server)
    bearer = token(server, ENV, client)
    probe_redis = redis_url or f"unix://{workdir / 'var' / 'redis' / 'redis.sock'}"
    probe = Probe(db_url, probe_redis)
    try:
        log(backend, f"loading {count:,} customers in-process (upsert_customers, batches of 1,000)...")
        started = time.monotonic()
        await asyncio.to_thread(run_cmd, [sys.executable, str(SCRIPT), "_load",
                                          str(count)], workdir, env, 900)
        res.load_s = time.monotonic() - started
        log(backend, f"loaded in {res.load_s:.1f}s")
        workers = new_workers(backend, workdir, env, servers)
        # Warm-up: one single-user start through both workers' code paths; then an idle queue.
        warm = await asyncio.to_thread(start_post, server.url, bearer, {"usersById": ["warm-up"]})
        if await wait_invocation(probe, warm["flowInvocationId"], 60) is None:
            raise BenchError(f"the warm-up invocation did not complete: {workers[0].tail()}")
        log(backend, f"queue idle after the warm-up in {await probe.drain(60)} s")
        # The latency first, on a quiet Hub: right after a large fan-out the workers and `hub serve`
        # still digest its announcements (events to plugins, card changes to sockets) for a while.
        if "latency" in args.parts:
            await latency(res, server, bearer, probe, args)
            await probe.drain(args.drain_timeout)
        if "fanout" in args.parts:
            await fanout(res, server, bearer, probe, workers, args, args.profile)
            res.fanout_drain_s = await probe.drain(args.drain_timeout)
            log(backend, f"queue idle {res.fanout_drain_s} s after the fan-out")
            if res.fanout_drain_s is None:
                res.notes.append("the queue was still busy after the fan-out")
        if "throughput" in args.parts:
            for worker in workers:
                worker.stop()

            def start_workers() -> list[Server]:
                workers[:] = new_workers(backend, workdir, env, servers)
                return workers

            await throughput(res, "alone", server, bearer, probe, lua, args, [], start_workers)
            await probe.drain(args.drain_timeout)
            await throughput(res, "running", server, bearer, probe, lua, args, workers)
        for worker in workers:
            worker.check_alive()
    finally:
        await probe.close()
    return res


# --- the report ------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "meets" if ok else "**misses**"


def table(results: list[Result], args: argparse.Namespace) -> list[list[str]]:
    out = [["backend", "measure", "result", "target"]]
    for r in results:
        cps = r.fanout_cards / r.fanout_s if r.fanout_s else 0.0
        done = "" if r.fanout_complete else " (incomplete)"
        fanout_rows = [
            [r.backend, f"fan-out of 1 card to {r.customers:,} customers by tag, 2 workers",
             f"{r.fanout_s or 0:.1f} s{done}, {cps:,.0f} cards/s",
             f"≤ {TARGETS['fanout_s']:g} s, ≥ {TARGETS['fanout_cps']:,.0f}/s: "
             + verdict(r.fanout_complete and cps >= TARGETS["fanout_cps"])],
            [r.backend, "  first / last card stamped (created_at) after the 202",
             f"{r.first_card_s or 0:.1f} s / {r.last_card_s or 0:.1f} s", ""],
            [r.backend, "  worker peak RSS (VmHWM), idle RSS before",
             " / ".join(f"{m:.0f}" for m in r.worker_hwm_mib) + " MiB (idle "
             + " / ".join(f"{m:.0f}" for m in r.worker_idle_mib) + ")", ""],
            [r.backend, "  worker CPU during the fan-out",
             " / ".join(f"{c:.1f}" for c in r.worker_cpu_s) + " s "
             f"({sum(r.worker_cpu_s) / max(r.fanout_cards, 1) * 1e6 / 1000:.2f} ms per card)"
             + (f"; PostgreSQL {r.fanout_pg_cpu_s:.1f} s "
                f"({r.fanout_pg_cpu_s / max(r.fanout_cards, 1) * 1e3:.2f} ms per card)"
                if r.fanout_pg_cpu_s is not None else ""), ""],
        ]
        latency_rows = [
            [r.backend, f"trigger accepted → card committed, open loop {r.lat_rate:.0f} req/s",
             f"p50 {r.lat_commit_p50:.0f} ms, p99 {r.lat_commit_p99:.0f} ms ({r.lat_sent:,} requests)",
             f"p99 ≤ {TARGETS['p99_ms']:g} ms: " + verdict(r.lat_commit_p99 <= TARGETS["p99_ms"]
                                                           and not r.lat_missing and not r.lat_not202)],
            [r.backend, "  202 answered", f"p50 {r.lat_ack_p50:.0f} ms, p99 {r.lat_ack_p99:.0f} ms", ""],
            [r.backend, "  card created_at (stamped before commit)",
             f"p50 {r.lat_created_p50:.0f} ms, p99 {r.lat_created_p99:.0f} ms", ""],
        ]
        # Only what this run measured (``--parts``).
        out += fanout_rows if "fanout" in args.parts else []
        out.append([r.backend, "  customers loaded in-process first (not counted)", f"{r.load_s:.1f} s", ""])
        out += latency_rows if "latency" in args.parts else []
        for mode, run in r.starts.items():
            out += start_rows(r.backend, mode, run, args)
    return out


START_MODES = {"alone": "no worker running; the workers start after wrk",
               "running": "the 2 workers running the flows meanwhile"}


def start_rows(backend: str, mode: str, run: StartRun, args: argparse.Namespace) -> list[list[str]]:
    rps_target = TARGETS["rps"][backend]
    after = "the workers started" if mode == "alone" else "wrk started"
    return [
        [backend, f"start endpoint, 1 user, wrk -c{args.connections} {args.duration:g}s, {START_MODES[mode]}",
         f"{run.rps:,.0f} req/s (p50 {run.p50:.1f} ms, p99 {run.p99:.1f} ms), "
         f"{run.requests - run.not202:,} × 202"
         + (f", {run.not202} not 202, {run.errors} socket errors" if run.not202 or run.errors else ""),
         f"≥ {rps_target:,.0f} req/s: " + verdict(run.rps >= rps_target and not run.not202
                                                 and not run.errors)],
        [backend, "  workers finish that backlog",
         (f"{run.backlog_s:.1f} s after {after}, {run.invocations / run.backlog_s:,.0f} invocations/s"
          if run.backlog_s else f"not within the bound ({run.backlog_left:,} left)"), ""],
        [backend, "  CPU per started flow (wrk + backlog)",
         ", ".join(f"{k} {v:.1f} ms" for k, v in run.cpu_ms.items()) or "-", ""],
    ]


def git_commit() -> str:
    try:
        head = run_cmd(["git", "rev-parse", "--short", "HEAD"], ROOT, dict(os.environ), 10).strip()
        dirty = run_cmd(["git", "status", "--porcelain", "--", "hub"], ROOT, dict(os.environ), 10).strip()
    except (BenchError, OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" with uncommitted changes under hub/" if dirty else "")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Hub's flow engine: a large fan-out and the start endpoint.")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--customers", type=int, default=100_000, help="fan-out size on PostgreSQL")
    parser.add_argument("--sqlite-customers", type=int, default=20_000,
                        help="fan-out size on SQLite (one writer: 100k would take too long)")
    parser.add_argument("--duration", type=float, default=15, help="seconds of wrk on the start endpoint")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rate", type=float, default=100, help="open-loop requests/s for the latency")
    parser.add_argument("--latency-seconds", type=float, default=20)
    parser.add_argument("--fanout-timeout", type=float, default=240, help="bound on the fan-out (s)")
    parser.add_argument("--drain-timeout", type=float, default=150,
                        help="bound on waiting for the workers to go idle / finish a backlog (s)")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG),
                        help="a PostgreSQL database for the benchmark alone: it is emptied")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", PG_REDIS),
                        help="Redis for the PostgreSQL run, flushed first (SQLite uses the embedded one)")
    parser.add_argument("--hub-env", action="append", default=[], metavar="NAME=VALUE",
                        help="another Hub setting, e.g. HUB_LOG_LEVEL=INFO (repeatable)")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="record each worker with py-spy (raw stacks) during the fan-out, into DIR")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"which measures to run, comma-separated (default: all of {','.join(PARTS)}); "
                             "a partial run prints its table but never writes the document")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if not args.parts or set(args.parts) - set(PARTS):
        parser.error(f"--parts takes some of {','.join(PARTS)}")
    if set(args.parts) != set(PARTS):
        args.no_write = True
    if not 0 < args.duration <= 30:
        parser.error("--duration must be in (0, 30] seconds")
    if not 0 < args.latency_seconds <= 60 or not 0 < args.rate <= 1000:
        parser.error("--latency-seconds must be in (0, 60] and --rate in (0, 1000]")
    if args.fanout_timeout > 600 or args.drain_timeout > 600:
        parser.error("bounds are at most 600 s")
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        args.profile = args.profile.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    if raw[:1] == ["_load"]:  # the in-process customer loader, run in Hub's cwd and environment
        asyncio.run(load_customers(int(raw[1]), 1000))
        return 0
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench/engine.py needs wrk (https://github.com/wg/wrk). Install it with:\n"
              "  apt-get update && apt-get install -y wrk     # Debian/Ubuntu\n"
              "  brew install wrk                             # macOS", file=sys.stderr)
        return 2
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    started = dt.datetime.now(dt.UTC)
    info = machine()
    if "postgres" in backends:
        info["postgresql server"] = postgres_version(args.pg_url)
    info["hub commit"] = git_commit()
    results: list[Result] = []
    servers: list[Server] = []
    try:
        with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp, stopping(servers):
            lua = Path(tmp) / "start.lua"
            lua.write_text(WRK_LUA)
            for backend in backends:
                log(backend, "setting up Hub...")
                workdir = Path(tmp) / backend
                workdir.mkdir()
                started_here = len(servers)
                db_url, redis_url = fresh_stores(backend, args, workdir)
                results.append(asyncio.run(run_backend(backend, args, workdir, lua, servers,
                                                       db_url, redis_url)))
                for server in reversed(servers[started_here:]):
                    server.stop()
                del servers[started_here:]
    except BenchError as exc:
        print(f"bench/engine.py: {exc}", file=sys.stderr)
        return 1

    cells = table(results, args)
    print()
    print_table(cells)
    notes = [f"{r.backend}: {n}" for r in results for n in r.notes]
    for note in notes:
        print("note:", note)
    if not args.no_write:
        lines = [
            f"Run on {started:%Y-%m-%d %H:%M} UTC with:",
            "",
            "```",
            command_line(),
            "```",
            "",
            f"`hub serve` (1 process) and {WORKERS} `hub worker` processes per backend; PostgreSQL with "
            "Redis on 127.0.0.1, SQLite with the embedded Redis. Customers tagged `everyone` are "
            "loaded through `upsert_customers` before anything is timed. Fan-out: one "
            "`POST .../start` with `{\"tags\": [\"everyone\"]}`, timed from its 202 to the "
            "invocation's `completedAt` (cards are committed with their instances), card count "
            "checked. Latency: open loop, a new user per request, card seen committed by a 10 ms "
            f"poller. Throughput: wrk `-t{args.threads} -c{args.connections} -d{args.duration:g}s`, "
            "a new user per request, every answer checked to be a 202.",
            "",
            markdown(cells),
            "",
            *([f"- {n}" for n in notes] + [""] if notes else []),
            "| machine | |",
            "|---|---|",
            *[f"| {k} | {v} |" for k, v in info.items()],
        ]
        write_doc(args.output, "\n".join(lines), BEGIN, END)
        print(f"written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

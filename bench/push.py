"""Push through the whole dispatcher, one ``hub worker`` process, to each provider's fake.

    .venv/bin/python bench/push.py [--provider fcm|apns|both] [--notifications 100000]
                                   [--storm 30] [--storm-notifications 5000] [--backend postgres|sqlite]

Per provider, in a private temp dir: the provider's fake runs in a process of its own
(``python -m tests.fakes.fcm --h2c`` or ``python -m tests.fakes.apns``); Hub is migrated, an
environment made, the fake's credentials saved through the plugin's own ``config.save``, and
``--notifications`` customers each get one registered device (``sdk_streams``' device table) and
one due notification (``hub_push_notification``, written in bulk: what a fan-out of a card with a
push template writes). Then one ``hub worker`` process starts, the ``send_pushes`` jobs are
enqueued (batches of ``HUB_PUSH_BATCH_SIZE``), and the clock runs until every notification is
``sent`` (a poll of the table every 0.5 s). Reported: notifications/s, the worker's CPU ms per
notification (reading the notifications, customers' preferences and devices, calling the
provider, writing each outcome, the delivery log and the ``notification-sent`` event), and the
fake's.

**429 storm**: a new fake answers every send 429 (FCM ``QUOTA_EXCEEDED``, APNs
``TooManyRequests``) with ``Retry-After: 5`` for ``--storm`` seconds from its first request,
then recovers; ``--storm-notifications`` are enqueued at once. Reported: the time from the end
of the storm until the last one is sent (the backoff: ``HUB_PUSH_RETRY_BASE_SECONDS`` doubling
with jitter, never sooner than ``Retry-After``), and the sends attempted.

Defaults to PostgreSQL (``--pg-url``, emptied first) and the Redis service (``--redis-url``,
flushed); ``--backend sqlite`` uses a SQLite file. The table is printed and, unless
``--no-write``, written between this benchmark's markers in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    DOC,
    ROOT,
    BenchError,
    Server,
    command_line,
    database_url,
    hub_env,
    machine,
    markdown,
    prepare_hub,
    print_table,
    stopping,
    write_doc,
)

ENV = "bench"
BEGIN, END = "<!-- bench/push.py begin -->", "<!-- bench/push.py end -->"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_fake(provider: str, extra: list[str]) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    argv = ([sys.executable, "-m", "tests.fakes.fcm", "--json-line", "--h2c"] if provider == "fcm"
            else [sys.executable, "-m", "tests.fakes.apns"])
    proc = subprocess.Popen([*argv, *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise BenchError(f"the {provider} fake did not start (exit {proc.wait()})")
    return proc, json.loads(line)


def provider_env(provider: str, fake: dict[str, Any]) -> list[str]:
    if provider == "fcm":
        return [f"HUB_PUSH_FCM_BASE_URL={fake['baseUrl']}", "HUB_PUSH_FCM_HTTP2_PRIOR_KNOWLEDGE=true"]
    return [f"HUB_PUSH_APNS_BASE_URL={fake['baseUrl']}", f"HUB_PUSH_APNS_CA_FILE={fake['caFile']}"]


async def with_hub(env: dict[str, str], work: Any) -> Any:
    """Run ``work(hub)`` with a Hub on ``env``'s settings, in this process."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        from hub.app import Hub
        from hub.settings import load_settings

        hub = Hub(load_settings())
        await hub.start()
        try:
            return await work(hub)
        finally:
            await hub.close()
    finally:
        os.environ.clear()
        os.environ.update(saved)


async def configure(hub: Any, provider: str, fake: dict[str, Any]) -> None:
    if provider == "fcm":
        from hub_plugins.push_fcm import config

        await config.save(hub, ENV, fake["serviceAccount"])
    else:
        from hub_plugins.push_apns import config as apns_config

        await apns_config.save(hub, ENV, fake["keyP8"], fake["keyId"], fake["teamId"], fake["topic"],
                               "sandbox")


def token_for(provider: str) -> str:
    if provider == "fcm":
        from tests.fakes.fcm import device_token

        return device_token()
    return os.urandom(32).hex()


async def load(hub: Any, provider: str, count: int, tag: str) -> list[str]:
    """``count`` customers' devices and due notifications; returns the notification ids."""
    from hub.core.clock import now
    from hub.db import bulk_insert, tables
    from hub.services import push
    from hub_plugins.sdk_streams.tables import device

    platform = "android" if provider == "fcm" else "ios"
    stamp = now()
    ids = []
    for start in range(0, count, 5000):
        users = [f"{tag}-{i}" for i in range(start, min(count, start + 5000))]
        devices = [{"id": str(uuid.uuid4()), "environment_id": ENV, "user_id": u, "platform": platform,
                    "token": token_for(provider), "app_id": "com.example.bank", "apns_topic": None,
                    "state": "valid", "last_error": None, "created_at": stamp, "updated_at": stamp,
                    "invalidated_at": None} for u in users]
        rows = [push.notification_row(
            hub, nid=push.notification_id(tag, u), env=ENV, user_id=u, title="A card is waiting",
            body="Please review the payment of 42.00 EUR", data={"cardInstanceId": f"card-{u}"},
            platforms=[platform], priority="high", ttl=86_400, stamp=stamp) for u in users]
        async with hub.db.begin() as conn:
            await bulk_insert(conn, device, devices)
            await bulk_insert(conn, tables.push_notification, rows)
        ids += [r["id"] for r in rows]
    if hub.db.engine.dialect.name == "postgresql":  # fresh statistics, as autovacuum would give a live table
        from sqlalchemy import text

        async with hub.db.begin() as conn:
            for name in (device.name, tables.push_notification.name, tables.customer.name):
                await conn.execute(text(f"ANALYZE {name}"))
    return ids


async def enqueue(hub: Any, ids: list[str]) -> None:
    from hub import queue
    from hub.services import push

    for job in push._batches(hub, ENV, ids, "bench"):
        await queue.enqueue(hub.redis, job.job_name, job.args, job.job_id)


async def counts(hub: Any, ids_prefix_users: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from hub.db import tables

    n = tables.push_notification.c
    async with hub.db.connect() as conn:
        rows = (await conn.execute(select(n.status, func.count()).where(
            n.environment_id == ENV, n.user_id.like(f"{ids_prefix_users}-%")).group_by(n.status))).all()
    return {status: int(k) for status, k in rows}


async def waiting(hub: Any) -> int:
    """Notifications still scheduled (an index-only count that shrinks as they go: a cheap poll)."""
    from sqlalchemy import func, select

    from hub.db import tables

    n = tables.push_notification.c
    async with hub.db.connect() as conn:
        return int((await conn.execute(select(func.count()).where(n.status == "scheduled"))).scalar_one())


async def attempts(hub: Any, tag: str) -> int:
    from sqlalchemy import func, select

    from hub.db import tables

    d, n = tables.push_delivery.c, tables.push_notification.c
    async with hub.db.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(tables.push_delivery).join(
            tables.push_notification, n.id == d.notification_id).where(
            n.user_id.like(f"{tag}-%")))).scalar_one())


async def drive(env: dict[str, str], ids: list[str], tag: str, limit: float, worker: Server
                ) -> tuple[float, float, dict[str, int]]:
    """Enqueue, then wait until every notification of ``tag`` is sent; (started, finished, counts)."""
    async def go(hub: Any) -> tuple[float, float, dict[str, int]]:
        started = time.monotonic()
        await enqueue(hub, ids)
        deadline = started + limit
        while True:
            if await waiting(hub) == 0:
                finished = time.monotonic()
                found = await counts(hub, tag)
                if found.get("sent", 0) != len(ids):
                    raise BenchError(f"{tag}: not every notification was sent: {found}")
                return started, finished, found
            if time.monotonic() > deadline:
                found = await counts(hub, tag)
                raise BenchError(f"{tag}: not all sent after {limit:.0f}s: {found}; "
                                 f"worker: {worker.tail()}")
            worker.check_alive()
            await asyncio.sleep(0.5)

    return await with_hub(env, go)  # type: ignore[no-any-return]


def wait_worker_ready(worker: Server) -> None:
    """Give ``hub worker`` time to import and connect (it logs nothing at WARNING)."""
    time.sleep(4)
    worker.check_alive()


def fake_storms(provider: str) -> bool:
    """Whether the provider's fake takes ``--storm``."""
    module = "tests.fakes.fcm" if provider == "fcm" else "tests.fakes.apns"
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    return "--storm" in done.stdout


async def run_provider(provider: str, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"provider": provider}
    servers: list[Server] = []
    fakes: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory(prefix=f"hub-bench-push-{provider}-") as tmp, stopping(servers):
        workdir = Path(tmp)
        try:
            db_url = await asyncio.to_thread(database_url, args.backend, args.pg_url, workdir)
            from redis import Redis

            with Redis.from_url(args.redis_url) as r:
                r.flushdb()
            proc, fake = start_fake(provider, [])
            fakes.append(proc)
            base = ["ALLOW_PRIVATE_URLS=true", "HUB_LOG_LEVEL=WARNING", *args.hub_env]
            env = hub_env(db_url, args.redis_url, [*base, *provider_env(provider, fake)])
            prepare_hub(workdir, env, ENV)
            ids = await with_hub(env, lambda hub: _setup(hub, provider, fake, args.notifications, "main"))
            worker = Server(f"worker-{provider}", [str(Path(sys.executable).parent / "hub"), "worker"], None,
                            workdir, env, owns_redis=False)
            servers.append(worker)
            wait_worker_ready(worker)
            cpu0, fake0 = cpu_seconds(worker.pid), cpu_seconds(proc.pid)
            started, finished, _ = await drive(env, ids, "main", args.timeout, worker)
            wall = finished - started
            n = len(ids)
            result.update(n=n, wall=wall, rate=n / wall,
                          cpu_ms=(cpu_seconds(worker.pid) - cpu0) * 1000 / n,
                          fake_cpu_ms=(cpu_seconds(proc.pid) - fake0) * 1000 / n)
            print(f"[{provider}] {n:,} sent in {wall:.1f}s: {n / wall:,.0f}/s, "
                  f"{result['cpu_ms']:.2f} worker CPU ms each", file=sys.stderr, flush=True)
            worker.stop()
            servers.remove(worker)
            proc.terminate()
            proc.wait(10)
            if args.storm and fake_storms(provider):
                storm_args = ["--storm", str(args.storm), "--storm-retry-after", "5"]
                proc, fake = start_fake(provider, storm_args)
                fakes.append(proc)
                env = hub_env(db_url, args.redis_url, [*base, *provider_env(provider, fake)])
                ids = await with_hub(env, lambda hub: _setup(hub, provider, fake, args.storm_notifications,
                                                             "storm"))
                worker = Server(f"worker-storm-{provider}", [str(Path(sys.executable).parent / "hub"),
                                                             "worker"], None, workdir, env, owns_redis=False)
                servers.append(worker)
                wait_worker_ready(worker)
                started, finished, _ = await drive(env, ids, "storm", args.storm * 4 + 300, worker)
                result.update(storm_n=len(ids), storm_total=finished - started,
                              storm_drain=finished - started - args.storm,
                              storm_attempts=await with_hub(env, lambda hub: attempts(hub, "storm")))
                print(f"[{provider}] storm of {args.storm:.0f}s: all {len(ids):,} sent "
                      f"{result['storm_drain']:.1f}s after it ended", file=sys.stderr, flush=True)
        finally:
            for proc in fakes:
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(10)
    return result


async def _setup(hub: Any, provider: str, fake: dict[str, Any], count: int, tag: str) -> list[str]:
    await configure(hub, provider, fake)
    return await load(hub, provider, count, tag)


def table(results: list[dict[str, Any]], args: argparse.Namespace) -> list[list[str]]:
    cells = [["provider", "notifications", "time", "notifications/s", "target", "worker CPU ms / notif.",
              "fake CPU ms / notif.", f"{args.storm:.0f} s 429 storm: drained after it ended",
              "sends in the storm run"]]
    for r in results:
        cells.append([r["provider"], f"{r['n']:,}", f"{r['wall']:.1f} s", f"{r['rate']:,.0f}",
                      "≥ 1,000 " + ("✓" if r["rate"] >= 1000 else "✗"), f"{r['cpu_ms']:.2f}",
                      f"{r['fake_cpu_ms']:.2f}",
                      f"{r['storm_drain']:.1f} s ({r['storm_n']:,} notifications)" if "storm_n" in r else "-",
                      f"{r['storm_attempts']:,}" if "storm_n" in r else "-"])
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--provider", choices=("fcm", "apns", "both"), default="both")
    parser.add_argument("--notifications", type=int, default=100_000)
    parser.add_argument("--storm", type=float, default=30.0, help="seconds of 429 (0: no storm run)")
    parser.add_argument("--storm-notifications", type=int, default=5_000)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/hub_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--hub-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra Hub settings for every process (repeatable)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    providers = ["fcm", "apns"] if args.provider == "both" else [args.provider]
    load_before = os.getloadavg()

    try:
        results = [asyncio.run(run_provider(p, args)) for p in providers]
    except BenchError as exc:
        raise SystemExit(f"bench/push.py: {exc}") from None
    cells = table(results, args)
    print_table(cells)
    if args.no_write:
        return
    info = machine()
    block = (f"Run {dt.date.today().isoformat()} on {info['cpu model']} ({info['cpus (nproc)']} cores), "
             f"{args.backend}, one worker process; load average before the run "
             f"{load_before[0]:.2f}. Command: `{command_line()}`\n\n" + markdown(cells))
    write_doc(DOC, block, BEGIN, END)


if __name__ == "__main__":
    main()

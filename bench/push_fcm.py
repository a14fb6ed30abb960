"""Raw throughput of the push_fcm plugin: ``hub_send_push`` called concurrently against the fakes.

    .venv/bin/python bench/push_fcm.py [--notifications 20000] [--concurrency 200] [--rounds 2]

Starts ``python -m tests.fakes.fcm --json-line`` (the FCM and Google OAuth fakes) in a separate
process, so the fake does not share this process's CPU; sets up a Hub on SQLite in a temp dir
(migrate, one environment, the fake's service account saved through the plugin's own
``config.save``), then calls the hook through ``hub.plugins.call_first`` for ``--notifications``
Android devices with ``--concurrency`` calls in flight, after a warm-up of 500. Reported per
round: notifications/s, CPU ms per notification in this process (message building, access-token
cache, HTTP client) and in the fake, and the count of each result status (all must be ``sent``:
the run fails otherwise). What is measured is the plugin alone: the core dispatcher's database
and queue work is not included. Stays under two minutes at the defaults on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of another process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _start_fake(extra: list[str]) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.fcm", "--json-line", *extra], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise SystemExit(f"the fake did not start (exit {proc.wait()})")
    return proc, json.loads(line)


async def _hub(tmp: Path, fake: dict[str, Any]) -> Any:
    os.environ["HUB_PUSH_FCM_BASE_URL"] = fake["baseUrl"]
    os.environ["HUB_PUSH_FCM_HTTP2_PRIOR_KNOWLEDGE"] = "true" if fake["h2c"] else "false"
    from hub.app import Hub
    from hub.db import migrate
    from hub.services import environments
    from hub.settings import load_settings
    from hub_plugins.push_fcm import config

    settings = load_settings(environ={}, database_url=f"sqlite+aiosqlite:///{tmp / 'hub.db'}",
                             var_dir=str(tmp / "var"), secret_key="bench-secret-key-not-for-production",
                             allow_private_urls=True, log_level="WARNING")
    hub = Hub(settings)
    await migrate.upgrade(hub.db.engine)
    await environments.create_environment(hub.db, "bench")
    await config.save(hub, "bench", fake["serviceAccount"])
    return hub


def _notification(i: int) -> dict[str, Any]:
    card = f"card-{i}"
    return {"notificationId": f"n-{uuid.uuid4()}", "environmentId": "bench", "userId": f"u{i}",
            "title": "A card is waiting", "body": "Please review the payment of 42.00 EUR",
            "data": {"cardInstanceId": card, "flowId": "fraud-alert"}, "cardInstanceId": card,
            "scenario": "newCard", "priority": "high", "ttlSeconds": 86400, "collapseKey": card}


async def _round(hub: Any, devices: list[dict[str, Any]], concurrency: int, fake_pid: int) -> dict[str, Any]:
    from hub.plugins import call_first

    statuses: Counter[str] = Counter()
    queue = iter(range(len(devices)))

    async def worker() -> None:
        for i in queue:
            result = await call_first(hub.pm, "hub_send_push", hub=hub, notification=_notification(i),
                                      device=devices[i])
            statuses[result["status"] if result else "none"] += 1

    fake_cpu, cpu, started = _cpu_seconds(fake_pid), time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    n = len(devices)
    return {"n": n, "wall": wall, "rate": n / wall, "cpu_ms": (time.process_time() - cpu) * 1000 / n,
            "fake_cpu_ms": (_cpu_seconds(fake_pid) - fake_cpu) * 1000 / n, "statuses": dict(statuses)}


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from tests.fakes.fcm import device_token

    proc, fake = _start_fake(["--h2c"] if args.http == "2" else [])
    try:
        with tempfile.TemporaryDirectory(prefix="hub-bench-fcm-") as tmp:
            hub = await _hub(Path(tmp), fake)
            try:
                def devices(count: int) -> list[dict[str, Any]]:
                    return [{"deviceId": str(i), "userId": f"u{i}", "platform": "android",
                             "token": device_token(), "appId": "com.example.bank", "apnsTopic": None,
                             "state": "valid"} for i in range(count)]

                await _round(hub, devices(500), args.concurrency, proc.pid)  # warm-up: token, connections
                rows = []
                for _ in range(args.rounds):
                    rows.append(await _round(hub, devices(args.notifications), args.concurrency, proc.pid))
                return rows
            finally:
                await hub.close()
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notifications", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--http", choices=("1.1", "2"), default="2",
                        help="HTTP/2 (h2c, as FCM: one multiplexed connection) or HTTP/1.1 to the fake")
    args = parser.parse_args()
    rows = asyncio.run(run(args))
    limit = os.environ.get("HUB_PUSH_FCM_CONCURRENCY_PER_PROJECT", "100 (default)")
    print(f"push_fcm: hub_send_push against the FCM fake (separate process), HTTP/{args.http}, "
          f"{args.concurrency} callers, HUB_PUSH_FCM_CONCURRENCY_PER_PROJECT={limit}")
    print(f"{'round':>5} {'notifications':>13} {'seconds':>8} {'notif/s':>8} {'CPU ms/notif':>12} "
          f"{'fake CPU ms/notif':>17}  statuses")
    for i, row in enumerate(rows, 1):
        print(f"{i:>5} {row['n']:>13} {row['wall']:>8.2f} {row['rate']:>8.0f} {row['cpu_ms']:>12.3f} "
              f"{row['fake_cpu_ms']:>17.3f}  {row['statuses']}")
    bad = [row for row in rows if set(row["statuses"]) != {"sent"}]
    if bad:
        raise SystemExit(f"not every notification was sent: {bad[0]['statuses']}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()

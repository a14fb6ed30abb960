"""A worker killed in the middle of a delivery loses nothing: the next worker sends the same
batch again, under the same webhook-id."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import func, select

from hub_plugins.webhooks.outbound_tables import pending

pytestmark = pytest.mark.usefixtures("outbound_fast")
REPO = Path(__file__).resolve().parents[3]

WORKER = textwrap.dedent("""
    import asyncio, sys
    import msgspec
    from hub.app import Hub
    from hub.settings import Settings
    from hub.worker import run_worker

    settings = msgspec.json.decode(sys.argv[1], type=Settings)
    asyncio.run(run_worker(Hub(settings)))
""")


@pytest.fixture
def hub_settings(hub_settings):
    # arq leases a job for the job timeout + 10 s: keep it short so the test takes seconds.
    return msgspec.structs.replace(hub_settings, allow_private_urls=True, job_timeout_seconds=5)


def start_worker(settings) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, msgspec.json.encode(settings)],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_for(predicate, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


@pytest.mark.slow
async def test_a_worker_killed_mid_delivery_loses_nothing(outbound, receiver, hub, hub_settings, monkeypatch):
    # The receiver holds the first request long enough for the worker to be killed during it.
    monkeypatch.setenv("HUB_WEBHOOKS_OUTBOUND_TIMEOUT_SECONDS", "30")
    monkeypatch.setenv("HUB_WEBHOOKS_OUTBOUND_LINGER_MS", "1000")
    await outbound.create(receiver)
    receiver.fail(("hang", 3.0))
    ids = await outbound.record(20)
    first = start_worker(hub_settings)
    try:
        await wait_for(lambda: _true(len(receiver.arrivals) >= 1), 30)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    hung = receiver.arrivals[0]
    assert hung.answered == "hang"
    second = start_worker(hub_settings)
    try:
        # The killed job's lease (5 s timeout + 10 s) runs out, then the second worker runs it again.
        await receiver.wait_for_events(len(ids), seconds=60)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(40)
    assert sorted(set(receiver.event_ids())) == sorted(ids)
    resent = [a for a in receiver.accepted if a.webhook_id == hung.webhook_id]
    assert resent and resent[0].payload["events"] == hung.payload["events"]
    async with hub.db.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(pending))).scalar_one() == 0


async def _true(value: bool) -> bool:
    return value

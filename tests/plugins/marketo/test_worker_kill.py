"""A worker killed mid-batch starts no lead twice and the callback is still sent, with the same body."""

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
from sqlalchemy import func, select, update

from hub.db import tables
from hub_plugins.marketo.batches import marketo_run_batch, start_chunk
from hub_plugins.marketo.tables import batch as batch_table
from tests.plugins.marketo.conftest import leads

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


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setenv("HUB_MARKETO_CHUNK_LEADS", "4")


async def _counts(hub, env):
    v, i, k = tables.invocation.c, tables.flow_instance.c, tables.card.c
    async with hub.db.connect() as conn:
        invocations = (
            await conn.execute(
                select(func.count(), func.count(v.id.distinct())).where(v.environment_id == env)
            )
        ).one()
        instances = (await conn.execute(select(func.count(), func.count(i.user_id.distinct())))).one()
        cards = (await conn.execute(select(func.count(), func.count(k.user_id.distinct())))).one()
    return tuple(invocations), tuple(instances), tuple(cards)


async def test_running_the_batch_again_after_a_kill_starts_nothing_twice_and_resends_the_same_body(
    ready, fake, hub, hub_env, run_jobs
):
    accepted = await ready.submit(fake.invocation(leads(10), "welcome"))
    batch_id = accepted.json()["batchId"]
    ctx = {"hub": hub}
    # A worker committed the first chunk, then died: the job runs again, twice over.
    assert await start_chunk(hub, hub_env.id, batch_id) == "starting"
    assert await marketo_run_batch(ctx, hub_env.id, batch_id) == "completed"
    assert await marketo_run_batch(ctx, hub_env.id, batch_id) == "completed"  # nothing left to do
    # A worker that died after Marketo accepted the callback, before recording it, sends it again.
    async with hub.db.begin() as conn:
        await conn.execute(update(batch_table).values(state="calling_back", callback_status="pending"))
    assert await marketo_run_batch(ctx, hub_env.id, batch_id) == "completed"
    await run_jobs()
    assert await _counts(hub, hub_env.id) == ((10, 10), (10, 10), (10, 10))
    first, second = fake.accepted
    assert first.raw == second.raw
    assert [d["activityData"]["success"] for d in first.body["objectData"]] == [True] * 10


async def test_a_long_batch_is_handed_from_job_to_job(ready, fake, hub, hub_env, run_jobs):
    hub.plugin_settings["marketo"] = msgspec.structs.replace(hub.plugin_settings["marketo"], job_seconds=0)
    accepted = await ready.submit(fake.invocation(leads(10), "welcome"))
    assert await marketo_run_batch({"hub": hub}, hub_env.id, accepted.json()["batchId"]) == "handed_over"
    await run_jobs()
    assert await _counts(hub, hub_env.id) == ((10, 10), (10, 10), (10, 10))
    assert len(fake.accepted) == 1 and len(fake.accepted[0].body["objectData"]) == 10


def start_worker(settings) -> subprocess.Popen:
    # Chunks of two leads, so the kill lands between two chunk commits.
    env = {**os.environ, "PYTHONPATH": str(REPO), "HUB_MARKETO_CHUNK_LEADS": "2"}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, msgspec.json.encode(settings)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


async def wait_for(predicate, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


@pytest.mark.slow
async def test_a_worker_killed_mid_batch_is_followed_by_one_that_finishes_and_calls_back(
    ready, fake, hub, hub_env, hub_settings, run_jobs
):
    # arq leases a job for the job timeout + 10 s: keep it short so the test takes seconds.
    settings = msgspec.structs.replace(hub_settings, job_timeout_seconds=5)
    count = 400
    accepted = await ready.submit(fake.invocation(leads(count), "welcome"))
    batch_id = accepted.json()["batchId"]

    async def done_through():
        async with hub.db.connect() as conn:
            return (await conn.execute(select(batch_table.c.started_through))).scalar()

    async def partly_started():
        return await done_through() >= 20

    first = start_worker(settings)
    try:
        await wait_for(partly_started, 60)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert 20 <= await done_through() < count

    second = start_worker(settings)
    try:
        await fake.wait_for_callbacks(1, seconds=90)  # after the killed job's lease runs out
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(40)
    await run_jobs()  # fan-outs the second worker had not reached yet
    assert await _counts(hub, hub_env.id) == ((count, count), (count, count), (count, count))
    (callback,) = fake.accepted
    data = callback.body["objectData"]
    assert [d["leadData"]["id"] for d in data] == [lead["id"] for lead in leads(count)]
    assert all(d["activityData"]["success"] for d in data)
    assert (await ready.batch(batch_id))["callback"]["status"] == "sent"

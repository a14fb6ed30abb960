"""Nothing is lost: a worker killed mid fan-out, a Redis restart mid-run."""

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

from hub.app import Hub
from hub.db import tables
from hub.embedded_redis import EmbeddedRedis
from hub.services import customers, triggers
from tests.engine.conftest import CARD_FLOW

REPO = Path(__file__).resolve().parents[2]
WORKER = textwrap.dedent("""
    import asyncio, sys
    import msgspec
    from hub.app import Hub
    from hub.settings import Settings
    from hub.worker import run_worker

    asyncio.run(run_worker(Hub(msgspec.json.decode(sys.argv[1], type=Settings))))
""")


def start_worker(settings, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (closed with the process)
    return subprocess.Popen([sys.executable, "-c", WORKER, msgspec.json.encode(settings)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=out, stderr=out)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def counts(hub, invocation_id):
    k = tables.card.c
    async with hub.db.connect() as conn:
        return (await conn.execute(select(func.count(), func.count(k.user_id.distinct()))
                                   .where(k.invocation_id == invocation_id))).one()


async def wait_until(predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.25)
    return False


async def prepare(hub, flows, env, n):
    for start in range(0, n, 1000):
        result = await customers.upsert_customers(hub, env, [
            {"userId": f"c-{i:06d}", "tags": ["everyone"]} for i in range(start, min(n, start + 1000))])
        assert result["failed"] == 0
    await flows.publish("welcome", CARD_FLOW)
    [started] = await triggers.start_flows(hub, env, "welcome", [{"target": {"tags": ["everyone"]}}])
    return started["flowInvocationId"]


@pytest.mark.slow
async def test_a_worker_killed_mid_fan_out_leaves_every_customer_exactly_one_card(
        hub, hub_settings, hub_env, flows):
    n = 10_000
    invocation = await prepare(hub, flows, hub_env.id, n)
    settings = msgspec.structs.replace(hub_settings, job_timeout_seconds=10)
    first = start_worker(settings)
    try:
        assert await wait_until(lambda: _ge(counts(hub, invocation), 1500), 120), "no progress"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        stop(first)
    total, _ = await counts(hub, invocation)
    assert total < n, "the fan-out finished before the kill; nothing was tested"
    second = start_worker(settings)
    try:
        assert await wait_until(lambda: _ge(counts(hub, invocation), n), 240), await counts(hub, invocation)
        await asyncio.sleep(1)  # anything still running would show as a duplicate now
    finally:
        stop(second)
    assert tuple(await counts(hub, invocation)) == (n, n)
    status = await triggers.get_invocation(hub, hub_env.id, invocation)
    assert status["status"] == "completed" and status["started"] == n


@pytest.mark.slow
async def test_a_redis_restart_mid_run_loses_nothing(hub_settings, tmp_path, hub_env, flows):
    redis = EmbeddedRedis(tmp_path / "redis", persist=True)
    settings = msgspec.structs.replace(hub_settings, redis_url=redis.start(), job_timeout_seconds=10)
    own = Hub(settings)
    await own.start()
    worker = None
    try:
        n = 3_000
        invocation = await prepare(own, flows, hub_env.id, n)
        worker = start_worker(settings)
        assert await wait_until(lambda: _ge(counts(own, invocation), 500), 120), "no progress"
        redis.stop()  # SIGTERM: Redis writes its append-only file and exits
        redis.start()
        stop(worker)  # the old worker may have lost its connection; a fresh one carries on
        worker = start_worker(settings)
        assert await wait_until(lambda: _ge(counts(own, invocation), n), 240), await counts(own, invocation)
        await asyncio.sleep(1)
        assert tuple(await counts(own, invocation)) == (n, n)
    finally:
        if worker is not None:
            stop(worker)
        await own.close()
        redis.stop()


async def _ge(awaitable, value) -> bool:
    return (await awaitable)[0] >= value


async def test_the_sweeper_leaves_chunks_that_are_still_queued_alone(hub, hub_env, flows):
    from datetime import timedelta

    from sqlalchemy import update

    from hub import queue
    from hub.core import clock as clock_module
    from hub.services import fanout

    invocation = await prepare(hub, flows, hub_env.id, 1200)
    await fanout.run_invocation({"hub": hub}, hub_env.id, invocation)  # plans three chunk jobs
    async with hub.db.begin() as conn:  # make the chunks look old
        await conn.execute(update(tables.invocation_chunk).values(
            created_at=clock_module.now() - timedelta(minutes=10)))
    queued = await hub.redis.zcard(queue.QUEUE_NAME)
    assert await fanout.sweep_invocations({"hub": hub}) == 0
    assert await hub.redis.zcard(queue.QUEUE_NAME) == queued
    await hub.redis.flushdb()  # now the chunk jobs really are lost
    assert await fanout.sweep_invocations({"hub": hub}) == 3

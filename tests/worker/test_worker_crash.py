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

from hub import queue

REPO = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent("""
    import asyncio, sys
    import msgspec
    from hub.app import Hub
    from hub.settings import Settings
    from hub.worker import run_worker
    from tests.worker import jobs_plugin

    settings = msgspec.json.decode(sys.argv[1], type=Settings)
    asyncio.run(run_worker(Hub(settings, plugins=[jobs_plugin])))
""")


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
async def test_a_worker_killed_mid_job_loses_nothing(hub, hub_settings):
    # arq leases a job for the longest job timeout + 10 s; keep it short for the test.
    settings = msgspec.structs.replace(hub_settings, job_timeout_seconds=5)
    redis = hub.redis

    async def count(name):
        return int(await redis.get(f"test:{name}:k") or 0)

    await queue.enqueue(redis, "slow_count", ["k"], "slow:k")
    first = start_worker(settings)
    try:
        await wait_for(lambda: _ge(count("started"), 1), 30)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert await count("finished") == 0
    finally:
        if first.poll() is None:
            first.kill()
    second = start_worker(settings)
    try:
        # The job's lease (its 5 s timeout + 10 s) runs out, then the second worker runs it again.
        await wait_for(lambda: _ge(count("finished"), 1), 40)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(40)
    assert await count("started") == 2
    assert await count("finished") == 1


async def _ge(awaitable, value) -> bool:
    return (await awaitable) >= value

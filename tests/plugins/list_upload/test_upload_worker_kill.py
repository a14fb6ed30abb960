"""A list upload whose worker is killed mid-way resumes in another worker and starts no row twice."""

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

from hub.db import tables
from tests.plugins.list_upload.conftest import csv_rows, upload

REPO = Path(__file__).resolve().parents[3]
ROWS = 400
WORKER = textwrap.dedent("""
    import asyncio, sys
    import msgspec
    from hub.app import Hub
    from hub.settings import Settings
    from hub.worker import run_worker

    settings = msgspec.json.decode(sys.argv[1], type=Settings)
    asyncio.run(run_worker(Hub(settings)))
""")


def start_worker(settings) -> subprocess.Popen:
    # Small chunks, so the kill lands between two chunk commits.
    env = {**os.environ, "PYTHONPATH": str(REPO), "HUB_LIST_UPLOAD_CHUNK_ROWS": "4",
           "HUB_LIST_UPLOAD_JOB_SECONDS": "60"}
    return subprocess.Popen([sys.executable, "-c", WORKER, msgspec.json.encode(settings)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_for(predicate, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.slow
async def test_an_upload_interrupted_by_a_worker_kill_resumes_without_starting_a_row_twice(
        hub, hub_settings, hub_client, hub_env, promo, run_jobs):
    # arq leases a job for the longest job timeout + 10 s; keep it short for the test.
    settings = msgspec.structs.replace(hub_settings, job_timeout_seconds=5)
    created = (await upload(hub_client, hub_env, csv_rows(ROWS))).json()
    url = f"/v1/{hub_env.id}/uploads/{created['uploadId']}"

    async def progress():
        return (await hub_client.get(url, headers=hub_env.headers())).json()

    async def partly_started():
        return (await progress())["rowsStarted"] >= 40

    first = start_worker(settings)
    try:
        await wait_for(partly_started, 60)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    at_kill = await progress()
    assert at_kill["state"] == "running" and 40 <= at_kill["rowsStarted"] < ROWS

    async def completed():
        return (await progress())["state"] == "completed"

    second = start_worker(settings)
    try:
        await wait_for(completed, 90)  # after the killed job's lease runs out
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(40)
    await run_jobs()  # fan-outs the second worker had not reached yet

    done = await progress()
    assert (done["rowsStarted"], done["rowsRejected"]) == (ROWS, 0)
    async with hub.db.connect() as conn:
        v, i, k = tables.invocation.c, tables.flow_instance.c, tables.card.c
        invocations = (await conn.execute(select(func.count()).where(
            v.environment_id == hub_env.id, v.id.like(f"list:{created['uploadId']}:%")))).scalar()
        instances = (await conn.execute(select(func.count(), func.count(i.user_id.distinct())))).one()
        cards = (await conn.execute(select(func.count(), func.count(k.user_id.distinct())))).one()
    assert invocations == ROWS
    assert tuple(instances) == (ROWS, ROWS)  # one instance per row's user, none twice
    assert tuple(cards) == (ROWS, ROWS)

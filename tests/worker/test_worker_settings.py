import asyncio
import gc
import inspect

import pytest
from arq import Worker

from hub.worker import make_worker, tune_gc, worker_settings
from tests.worker import jobs_plugin


@pytest.fixture
def hub_plugins():
    return [jobs_plugin]


async def test_worker_settings_are_real_arq_worker_arguments(hub):
    settings = worker_settings(hub)
    accepted = set(inspect.signature(Worker.__init__).parameters)
    assert set(settings) <= accepted
    names = {f.name for f in settings["functions"]}
    assert {"count_run", "flaky", "always_fails", "outbox_relay", "announce_customer_changes"} <= names
    assert any(c.name == "cron:outbox_relay" for c in settings["cron_jobs"])
    worker = make_worker(hub, burst=True, handle_signals=False)
    await worker.close()


async def test_job_max_tries_and_timeout_come_from_the_registration_or_settings(hub):
    functions = {f.name: f for f in worker_settings(hub)["functions"]}
    assert functions["always_fails"].max_tries == 3
    assert functions["count_run"].max_tries == hub.settings.job_max_tries
    assert functions["count_run"].timeout_s == hub.settings.job_timeout_seconds


def test_no_built_in_job_lengthens_the_lease_of_a_killed_workers_jobs(hub_settings):
    # arq leases every job a worker takes for the worker's longest job timeout + 10 s: one long
    # timeout would make the jobs of a killed worker wait that long before they run again.
    from hub.app import Hub
    from hub.worker import worker_settings

    hub = Hub(hub_settings)
    longest = max(f.timeout_s or 0 for f in worker_settings(hub)["functions"])
    assert longest <= hub_settings.job_timeout_seconds, [
        (job.name, job.timeout) for job in hub.registry.jobs.values() if job.timeout]


async def test_run_jobs_leaves_commands_in_flight_on_the_hub_connection_pool(hub, run_jobs, hub_worker):
    # Closing an arq worker closes the pool it polls through, in-use connections included: the
    # burst worker of run_jobs must not cut off the background worker, a server or anything
    # else using hub.redis in the same test. A blocking pop stands for a command in flight.
    waiting = asyncio.create_task(hub.redis.blpop(["test:wakeup"], timeout=10))
    await asyncio.sleep(0.05)
    await hub.redis.enqueue_job("count_run", "first")
    await run_jobs()
    await hub.redis.rpush("test:wakeup", "go")
    assert await waiting == (b"test:wakeup", b"go")
    await hub.redis.enqueue_job("count_run", "second")
    for _ in range(200):
        if await hub.redis.get("test:runs:second"):
            break
        await asyncio.sleep(0.02)
    assert await hub.redis.get("test:runs:second") == b"1", "the background worker stopped polling"


def test_the_worker_collects_young_objects_less_often_and_freezes_what_startup_made():
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    try:
        tune_gc(0)  # 0: Python's defaults stay
        assert gc.get_threshold() == before and gc.get_freeze_count() == frozen
        made_at_startup = [object() for _ in range(10)]
        tune_gc(20_000)
        assert gc.get_threshold() == (20_000, *before[1:])
        assert gc.get_freeze_count() > frozen + len(made_at_startup)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)

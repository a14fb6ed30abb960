import asyncio
import os
import subprocess
import sys
import textwrap
from datetime import timedelta

import msgspec
import pytest
from sqlalchemy import func, select

from hub import queue
from hub.db import tables
from hub.services import outbox
from tests.worker import jobs_plugin


@pytest.fixture
def hub_plugins():
    return [jobs_plugin]


async def runs(hub, key):
    return int(await hub.redis.get(f"test:runs:{key}") or 0)


async def outbox_rows(hub):
    async with hub.db.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(tables.outbox))).scalar_one()


async def test_job_is_enqueued_after_commit_and_the_relay_clears_its_outbox_row(hub, run_jobs):
    async with outbox.transaction(hub) as tx:
        await tx.enqueue("count_run", ["a"], job_id="count:a")
        assert await hub.redis.zcard(queue.QUEUE_NAME) == 0  # nothing before the commit
    assert await hub.redis.zcard(queue.QUEUE_NAME) == 1
    # The request pays no second transaction: the row waits for the relay, which sees that
    # Redis knows the job (queued here) and deletes the row without enqueueing anything.
    assert await outbox_rows(hub) == 1
    assert await outbox.relay(hub, older_than=timedelta(0)) == 0
    assert await outbox_rows(hub) == 0
    assert await run_jobs() == 1
    assert await runs(hub, "a") == 1


async def test_relay_clears_rows_of_jobs_already_done_without_running_them_again(hub, run_jobs):
    async with outbox.transaction(hub) as tx:
        await tx.enqueue("count_run", ["done"], job_id="count:done")
    assert await run_jobs() == 1
    assert await outbox_rows(hub) == 1
    assert await outbox.relay(hub, older_than=timedelta(0)) == 0  # its result is kept: known
    assert await outbox_rows(hub) == 0
    await run_jobs()
    assert await runs(hub, "done") == 1


async def test_an_inline_job_runs_right_after_a_worker_jobs_commit_and_counts_as_done(hub, run_jobs):
    async with outbox.transaction(hub) as tx:
        await tx.enqueue("announce_later", ["inline_count", "i"], job_id="later:i")
    assert await run_jobs() == 1  # only the outer job went through the queue
    assert await runs(hub, "i") == 1
    assert await queue.known_jobs(hub.redis, ["inline_count:i"]) == {"inline_count:i"}
    # Its outbox row is cleared like any done job's, and enqueueing it again is refused.
    assert await outbox.relay(hub, older_than=timedelta(0)) == 0
    assert await outbox_rows(hub) == 0
    assert not await queue.enqueue(hub.redis, "inline_count", ["i"], "inline_count:i")
    await run_jobs()
    assert await runs(hub, "i") == 1


async def test_an_inline_job_that_raises_is_queued_and_retried(hub, run_jobs):
    async with outbox.transaction(hub) as tx:
        await tx.enqueue("announce_later", ["inline_flaky", "f"], job_id="later:f")
    await run_jobs()
    assert await runs(hub, "f") == 2  # failed inline, then succeeded from the queue
    assert hub.metrics.jobs.labels("inline_flaky", "ok")._value.get() == 1


async def test_outside_a_worker_inline_jobs_are_queued_like_any_other(hub, run_jobs):
    async with outbox.transaction(hub) as tx:
        await tx.enqueue("inline_count", ["q"], job_id="inline_count:q")
    assert await runs(hub, "q") == 0
    assert await hub.redis.zcard(queue.QUEUE_NAME) == 1
    assert await run_jobs() == 1 and await runs(hub, "q") == 1


async def test_rolled_back_transaction_enqueues_nothing(hub, run_jobs):
    with pytest.raises(RuntimeError):
        async with outbox.transaction(hub) as tx:
            await tx.enqueue("count_run", ["b"], job_id="count:b")
            raise RuntimeError("the change fails")
    assert await outbox_rows(hub) == 0
    assert await hub.redis.zcard(queue.QUEUE_NAME) == 0


async def test_process_killed_between_commit_and_enqueue_still_runs_the_job_exactly_once(
        hub, hub_settings, run_jobs):
    # A real process commits the outbox row and dies before it can hand the job to Redis.
    script = textwrap.dedent("""
        import asyncio, os, sys
        import msgspec
        from hub.app import Hub
        from hub.services import outbox
        from hub.settings import Settings

        async def crash_before_enqueue(hub, jobs):
            os._exit(9)

        outbox.flush = crash_before_enqueue

        async def main():
            hub = Hub(msgspec.json.decode(sys.argv[1], type=Settings))
            await hub.start()
            async with outbox.transaction(hub) as tx:
                await tx.enqueue("count_run", ["crash"], job_id="count:crash")

        asyncio.run(main())
    """)
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", script, msgspec.json.encode(hub_settings)],
        capture_output=True, timeout=60, env={**os.environ})
    assert result.returncode == 9, result.stderr.decode()
    assert await outbox_rows(hub) == 1
    assert await hub.redis.zcard(queue.QUEUE_NAME) == 0  # the job never reached the queue

    assert await outbox.relay(hub) == 1
    assert await run_jobs() == 1
    assert await runs(hub, "crash") == 1
    # Sweeping again, and enqueueing the same job id again, runs nothing more.
    assert await outbox.relay(hub) == 0
    assert not await queue.enqueue(hub.redis, "count_run", ["crash"], "count:crash")
    await run_jobs()
    assert await runs(hub, "crash") == 1


async def test_relay_leaves_young_rows_to_the_request_that_wrote_them(hub):
    async with hub.db.begin() as conn:
        await outbox.add(conn, outbox.PendingJob("count_run", ["young"], "count:young"))
    from datetime import timedelta

    assert await outbox.relay(hub, older_than=timedelta(minutes=5)) == 0
    assert await outbox_rows(hub) == 1
    assert await hub.redis.zcard(queue.QUEUE_NAME) == 0


async def test_the_worker_cron_relay_sweeps_missed_rows(hub, run_jobs):
    async with hub.db.begin() as conn:
        await outbox.add(conn, outbox.PendingJob("count_run", ["cron"], "count:cron"))
    await hub.redis.enqueue_job("outbox_relay", _job_id="relay-now")
    await run_jobs()
    assert await runs(hub, "cron") == 1
    assert await outbox_rows(hub) == 0


async def test_job_arguments_are_msgpack_not_pickle(hub):
    await queue.enqueue(hub.redis, "count_run", ["msgpack"], "count:msgpack")
    raw = await hub.redis.get("arq:job:count:msgpack")
    decoded = msgspec.msgpack.decode(raw)
    assert decoded["f"] == "count_run" and decoded["a"] == ["msgpack"]
    assert not raw.startswith(b"\x80")  # a pickle would start with the PROTO opcode


async def test_failing_job_is_retried_with_backoff_then_succeeds(hub, run_jobs):
    await queue.enqueue(hub.redis, "flaky", ["flaky"], "flaky:1")
    await run_jobs()
    assert await runs(hub, "flaky") == 2
    metrics = hub.metrics.render().decode()
    assert 'hub_jobs_total{job="flaky",outcome="retry"} 1.0' in metrics
    assert 'hub_jobs_total{job="flaky",outcome="ok"} 1.0' in metrics


async def test_job_that_keeps_failing_stops_after_its_max_tries(hub, run_jobs, monkeypatch):
    from hub import worker

    monkeypatch.setattr(worker, "backoff_seconds", lambda attempt: 0.01)
    await queue.enqueue(hub.redis, "always_fails", ["bad"], "bad:1")
    await run_jobs()
    assert await runs(hub, "bad") == 3
    assert 'hub_jobs_total{job="always_fails",outcome="failed"} 1.0' in hub.metrics.render().decode()


def test_backoff_grows_exponentially_with_full_jitter():
    from hub.worker import backoff_seconds

    for attempt in range(1, 12):
        assert 0 <= backoff_seconds(attempt) <= min(300, 2 ** (attempt - 1))

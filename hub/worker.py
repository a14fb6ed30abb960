"""``hub worker``: arq's Worker, with functions and cron jobs gathered from plugins.

Every job function is wrapped so that an unexpected exception is retried with exponential
backoff (arq by itself gives up on the first error), its outcome is counted in metrics, and its
log lines carry the job id.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import random
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from arq import Retry, Worker
from arq.cron import CronJob, cron
from arq.worker import Function, func

from hub import queue
from hub.app import Hub
from hub.logging import configure_logging, get_logger
from hub.registry import JobRegistration

log = get_logger(__name__)


def backoff_seconds(attempt: int, base: float = 1.0, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter: attempt 1 waits up to 1 s, 2 up to 2 s, 3 up to 4 s..."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


def _wrap(hub: Hub, job: JobRegistration, max_tries: int) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(job.function)
    async def run(ctx: dict[str, Any], *args: Any) -> Any:
        attempt = ctx.get("job_try", 1)
        structlog.contextvars.bind_contextvars(job_id=ctx.get("job_id"), job=job.name,
                                               attempt=attempt)
        in_job = queue.IN_WORKER_JOB.set(True)
        try:
            result = await job.function(ctx, *args)
        except Retry:
            hub.metrics.jobs.labels(job.name, "retry").inc()
            raise
        except Exception as exc:
            if attempt >= max_tries:
                hub.metrics.jobs.labels(job.name, "failed").inc()
                log.exception("job_failed", error=repr(exc))
                raise
            delay = backoff_seconds(attempt)
            hub.metrics.jobs.labels(job.name, "retry").inc()
            log.warning("job_retry", error=repr(exc), retry_in=round(delay, 2))
            raise Retry(defer=delay) from exc
        else:
            hub.metrics.jobs.labels(job.name, "ok").inc()
            return result
        finally:
            queue.IN_WORKER_JOB.reset(in_job)
            structlog.contextvars.unbind_contextvars("job_id", "job", "attempt")

    return run


def build_functions(hub: Hub) -> tuple[list[Function], list[CronJob]]:
    functions: list[Function] = []
    cron_jobs: list[CronJob] = []
    for job in hub.registry.jobs.values():
        max_tries = job.max_tries or hub.settings.job_max_tries
        wrapped = _wrap(hub, job, max_tries)
        timeout = job.timeout or hub.settings.job_timeout_seconds
        if job.cron is not None:
            spec = dict(job.cron(hub.settings) if callable(job.cron) else job.cron)
            cron_jobs.append(cron(wrapped, name=f"cron:{job.name}", timeout=timeout,
                                  max_tries=1, unique=True, **spec))
        functions.append(func(wrapped, name=job.name, max_tries=max_tries, timeout=timeout))
    return functions, cron_jobs


def worker_settings(hub: Hub) -> dict[str, Any]:
    """Keyword arguments for ``arq.Worker``; ``redis_settings`` needs ``hub.start()`` first."""
    functions, cron_jobs = build_functions(hub)

    async def on_startup(ctx: dict[str, Any]) -> None:
        ctx["hub"] = hub

    return {
        "functions": functions,
        "cron_jobs": cron_jobs,
        "on_startup": on_startup,
        "redis_settings": queue.redis_settings(hub.redis_url),
        "job_serializer": queue.serialize,
        "job_deserializer": queue.deserialize,
        "queue_name": queue.QUEUE_NAME,
        # More concurrent jobs than database connections would only queue on the pool.
        "max_jobs": hub.settings.worker_max_jobs or (4 if hub.settings.is_sqlite
                                                     else max(1, hub.settings.db_pool_size)),
        "job_timeout": hub.settings.job_timeout_seconds,
        "max_tries": hub.settings.job_max_tries,
        "keep_result": queue.KEEP_RESULT_MS // 1000,
        "job_completion_wait": 30,
        "poll_delay": 0.05,
    }


def make_worker(hub: Hub, **overrides: Any) -> Worker:
    """An arq Worker for ``hub`` (whose ``start()`` must have been awaited).

    It polls through ``hub.redis`` unless ``redis_pool=`` says otherwise. ``Worker.close()``
    closes the connection pool it polls through, in-use connections included: a worker that
    shares a process with other users of ``hub.redis`` (a test's server, a second worker)
    needs a pool of its own."""
    kwargs: dict[str, Any] = {"redis_pool": hub.redis, **worker_settings(hub)}
    kwargs.update(overrides)
    return Worker(**kwargs)


async def run_worker(hub: Hub) -> None:
    """Run until SIGINT/SIGTERM; running jobs get ``job_completion_wait`` seconds to finish."""
    configure_logging(hub.settings)
    await hub.start()
    worker = make_worker(hub)
    tune_gc(hub.settings.worker_gc_threshold)
    log.info("worker_started", jobs=sorted(hub.registry.jobs), redis=_safe_url(hub.redis_url))
    try:
        # async_run (not main) so that arq's signal handler can cancel the main task.
        await worker.async_run()
    except asyncio.CancelledError:
        log.info("worker_stopped")
    finally:
        await worker.close()
        await hub.close()


def tune_gc(threshold: int) -> None:
    """Collect young objects every ``threshold`` allocations instead of 700, and leave what startup
    made (modules, plugins, settings) out of every later collection (``gc.freeze``)."""
    if threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(threshold, middle, old)


def _safe_url(url: str) -> str:
    """A Redis URL without its password, for logs."""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url

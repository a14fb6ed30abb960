"""A plugin with jobs that count their runs in Redis, for the outbox and worker tests."""

from typing import Any

from hub.hookspecs import hookimpl

FAIL_FIRST: set[str] = set()


async def count_run(ctx: dict[str, Any], key: str) -> int:
    return int(await ctx["hub"].redis.incr(f"test:runs:{key}"))


async def flaky(ctx: dict[str, Any], key: str) -> int:
    runs = int(await ctx["hub"].redis.incr(f"test:runs:{key}"))
    if runs == 1:
        raise ConnectionError("transient failure on the first try")
    return runs


async def always_fails(ctx: dict[str, Any], key: str) -> None:
    await ctx["hub"].redis.incr(f"test:runs:{key}")
    raise ValueError("this job never succeeds")


async def inline_count(ctx: dict[str, Any], key: str) -> int:
    return int(await ctx["hub"].redis.incr(f"test:runs:{key}"))


async def inline_flaky(ctx: dict[str, Any], key: str) -> int:
    return await flaky(ctx, key)


async def announce_later(ctx: dict[str, Any], name: str, key: str) -> None:
    """A job whose transaction enqueues another job ``name`` (inline ones run right after)."""
    from hub.services import outbox

    async with outbox.transaction(ctx["hub"]) as tx:
        await tx.enqueue(name, [key], job_id=f"{name}:{key}")


@hookimpl
def hub_register_jobs(register: Any) -> None:
    register(count_run)
    register(flaky)
    register(always_fails, max_tries=3)
    register(inline_count, inline=True)
    register(inline_flaky, inline=True)
    register(announce_later)


async def slow_count(ctx: dict[str, Any], key: str) -> None:
    """Counts starts and finishes, sleeping in between, so a test can kill the worker mid-job."""
    import asyncio

    redis = ctx["hub"].redis
    await redis.incr(f"test:started:{key}")
    await asyncio.sleep(3)
    await redis.incr(f"test:finished:{key}")


@hookimpl(specname="hub_register_jobs")
def register_slow(register: Any) -> None:
    register(slow_count, timeout=5)

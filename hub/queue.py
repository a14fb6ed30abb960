"""The job queue: arq on Redis, with msgpack (never pickle) for job arguments and results."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime
from typing import Any

import msgspec
from arq import ArqRedis, create_pool
from arq.connections import RedisSettings

QUEUE_NAME = "hub:queue"
IN_WORKER_JOB: ContextVar[bool] = ContextVar("hub_in_worker_job", default=False)
"""True while a worker runs a job: jobs registered ``inline=True`` that such a job's transaction
enqueues run right after the commit (:func:`hub.services.outbox.flush`)."""
KEEP_RESULT_MS = 3600 * 1000
"""How long a finished job's result (and so its id, against a second enqueue) is kept."""

def _fallback(value: Any) -> Any:
    # arq stores a failed job's exception as its result; keep its text, not the object.
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    raise TypeError(f"cannot serialise {type(value).__name__} in a job: pass ids and plain data")


_encoder = msgspec.msgpack.Encoder(enc_hook=_fallback)
_decoder = msgspec.msgpack.Decoder()


def serialize(value: dict[str, Any]) -> bytes:
    return _encoder.encode(value)


def deserialize(data: bytes) -> dict[str, Any]:
    return _decoder.decode(data)  # type: ignore[no-any-return]


def redis_settings(url: str) -> RedisSettings:
    return RedisSettings.from_dsn(url)


async def connect(url: str) -> ArqRedis:
    return await create_pool(redis_settings(url), job_serializer=serialize,
                             job_deserializer=deserialize, default_queue_name=QUEUE_NAME)


# arq's enqueue_job in one round trip: it WATCHes the job key, checks it and the result key, then
# writes the job and its queue entry in MULTI/EXEC (four round trips). Every trigger pays for
# its enqueue, so the same check-and-write runs here as one atomic script.
_ENQUEUE = """
if redis.call('exists', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('psetex', KEYS[1], ARGV[1], ARGV[2])
redis.call('zadd', KEYS[3], ARGV[3], ARGV[4])
return 1
"""


async def enqueue(redis: ArqRedis, job_name: str, args: list[Any], job_id: str,
                  defer_until: datetime | None = None) -> bool:
    """Enqueue one job; ``False`` when a job with this id is already queued or recently done.

    The job is stored exactly as :meth:`arq.ArqRedis.enqueue_job` stores it (same keys, same
    serialised form, same expiry), so arq's workers and job APIs see no difference.
    """
    from arq.constants import job_key_prefix, result_key_prefix
    from arq.jobs import serialize_job
    from arq.utils import timestamp_ms, to_unix_ms

    enqueue_time_ms = timestamp_ms()
    score = to_unix_ms(defer_until) if defer_until is not None else enqueue_time_ms
    expires_ms = score - enqueue_time_ms + redis.expires_extra_ms
    job = serialize_job(job_name, tuple(args), {}, None, enqueue_time_ms, serializer=serialize)
    script = getattr(redis, "_hub_enqueue", None)
    if script is None:
        script = redis._hub_enqueue = redis.register_script(_ENQUEUE)  # type: ignore[attr-defined]
    done = await script(keys=[job_key_prefix + job_id, result_key_prefix + job_id, QUEUE_NAME],
                        args=[expires_ms, job, score, job_id])
    return bool(done)


async def mark_done(redis: ArqRedis, job_name: str, args: list[Any], job_id: str, started_ms: int,
                    result: Any) -> None:
    """Record a job that ran without going through the queue (inline, after its transaction
    committed) as done, with the result arq would have kept: enqueueing it again is refused and
    the outbox relay clears its row."""
    from arq.constants import result_key_prefix
    from arq.jobs import serialize_result
    from arq.utils import timestamp_ms

    data = serialize_result(job_name, tuple(args), {}, 1, started_ms, True, result, started_ms,
                            timestamp_ms(), job_id, QUEUE_NAME, job_id, serializer=serialize)
    if data is not None:
        await redis.set(result_key_prefix + job_id, data, px=KEEP_RESULT_MS, nx=True)


async def known_jobs(redis: Any, job_ids: list[str]) -> set[str]:
    """The ids among ``job_ids`` that Redis knows: queued or deferred, running, or done (result kept)."""
    from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix

    if not job_ids:
        return set()
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.exists(job_key_prefix + job_id, in_progress_key_prefix + job_id,
                        result_key_prefix + job_id)
        counts = await pipe.execute()
    return {job_id for job_id, count in zip(job_ids, counts, strict=True) if count}

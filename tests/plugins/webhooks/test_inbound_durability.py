"""An acknowledged event is never lost: a server killed right after its 202, or between its commit
and its enqueue, still runs the invocation exactly once."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import httpx
import msgspec
import pytest
from sqlalchemy import select

from hub.db import tables
from hub.services import outbox
from tests.plugins.webhooks.test_inbound_hooks import EVENT, TRIGGER, invocations

SERVER = textwrap.dedent("""
    import os, sys
    import msgspec, uvicorn
    from hub.app import Hub, create_app
    from hub.services import outbox
    from hub.settings import Settings

    if sys.argv[3] == "crash-before-enqueue":
        async def crash_before_enqueue(hub, jobs):
            os._exit(9)

        outbox.flush = crash_before_enqueue
    hub = Hub(msgspec.json.decode(sys.argv[1], type=Settings))
    uvicorn.run(create_app(hub=hub), host="127.0.0.1", port=int(sys.argv[2]), log_config=None,
                access_log=False, lifespan="on")
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(settings, port: int, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SERVER, msgspec.json.encode(settings), str(port), mode],
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def start_server(settings, mode: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = spawn(settings, port, mode)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(process.stderr.read().decode()[-2000:])
            try:
                if (await client.get(url + "/healthz")).status_code == 200:
                    return process, url
            except httpx.TransportError:
                await asyncio.sleep(0.2)
    process.kill()
    raise AssertionError("the server did not start")


def kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(10)


async def cards_for(hub, user_id):
    k = tables.card.c
    async with hub.db.connect() as conn:
        return (await conn.execute(select(k.id, k.invocation_id).where(k.user_id == user_id))).all()


def signed_headers(trigger, raw: bytes) -> dict[str, str]:
    from hub_plugins.webhooks.inbound_signing import sign_hub

    return {
        "Content-Type": "application/json",
        "Hub-Signature": sign_hub(trigger["secret"], raw, int(time.time())),
    }


@pytest.mark.slow
async def test_a_server_killed_right_after_its_202_still_has_the_invocation(
    hub, hub_settings, inbound, run_jobs
):
    await inbound.publish()
    trigger = await inbound.create(**TRIGGER)
    process, url = await start_server(hub_settings, "normal")
    raw = msgspec.json.encode(EVENT)
    try:
        async with httpx.AsyncClient() as client:
            response = await client.post(
                url + "/hooks/" + trigger["url"].rsplit("/", 1)[1],
                content=raw,
                headers=signed_headers(trigger, raw),
            )
            kill(process)  # at once: nothing after the answer gets a chance to run
    finally:
        kill(process)
    assert response.status_code == 202, response.text
    invocation_id = response.json()["flows"][0]["flowInvocationId"]
    assert await invocations(hub) == 1
    await outbox.relay(hub)
    await run_jobs()
    [card] = await cards_for(hub, "cust-100234")
    assert card.invocation_id == invocation_id


@pytest.mark.slow
async def test_a_server_dying_between_commit_and_enqueue_loses_nothing_and_a_retry_starts_nothing_new(
    hub, hub_settings, inbound, hub_client, run_jobs
):
    await inbound.publish()
    trigger = await inbound.create(**TRIGGER)
    process, url = await start_server(hub_settings, "crash-before-enqueue")
    raw = msgspec.json.encode(EVENT)
    try:
        async with httpx.AsyncClient() as client:
            with pytest.raises(httpx.TransportError):  # the sender never gets its 202...
                await client.post(
                    url + "/hooks/" + trigger["url"].rsplit("/", 1)[1],
                    content=raw,
                    headers=signed_headers(trigger, raw),
                )
        assert process.wait(10) == 9
    finally:
        kill(process)
    assert await invocations(hub) == 1  # ...but the invocation was committed
    assert await outbox.relay(hub) == 1  # and the relay hands its job to the queue
    await run_jobs()
    assert len(await cards_for(hub, "cust-100234")) == 1
    # The sender retries (signed again): the same event, so the same invocation, nothing new.
    retry = await inbound.hook(trigger, EVENT, sign="hub")
    assert retry.status_code == 202 and retry.json()["flows"][0]["created"] is False
    await run_jobs()
    assert len(await cards_for(hub, "cust-100234")) == 1

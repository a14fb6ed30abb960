"""hub.client.HubClient: the end-user API from Python, over HTTP (in-process) and a real socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from hub.client import HubClient, HubClientError
from hub.testing import serve_app
from hub_plugins.sdk_streams.realtime import CONTROL, PONG
from hub_plugins.sdk_streams.realtime_fanout import fanout
from tests.engine.conftest import CARD_FLOW, FORM_FLOW
from tests.plugins.sdk_streams.test_realtime import change


class Recording(httpx.AsyncBaseTransport):
    """The app in-process, remembering each answer's status."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.statuses: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.statuses.append(response.status_code)
        return response


@pytest.fixture
async def server(hub_app: Any) -> AsyncIterator[str]:
    async with serve_app(hub_app) as url:
        yield url


@pytest.fixture
def recording(hub_app: Any) -> Recording:
    return Recording(hub_app)


@pytest.fixture
async def kim(hub_env: Any, sdk_signer: Any, recording: Recording) -> AsyncIterator[HubClient]:
    async with HubClient("http://testserver", hub_env.id, sdk_signer.token("kim"),
                         transport=recording) as client:
        yield client


async def test_the_feed_is_answered_from_the_cache_when_the_server_says_304(flows, kim, recording):
    await flows.publish("welcome", CARD_FLOW)
    await flows.start("welcome", target={"usersById": ["kim"]})
    await flows.run_jobs()
    first = await kim.feed()
    second = await kim.feed()
    assert [c["templateId"] for c in first["cards"]] == ["hello"] and first["version"]
    assert second is first
    assert recording.statuses == [200, 304]


async def test_actions_change_the_card_and_report_problems(flows, kim, sdk_signer, hub_env):
    await flows.publish("confirm", FORM_FLOW)
    await flows.publish("welcome", CARD_FLOW)
    await flows.start("confirm", target={"usersById": ["kim"]}, payload={"variables": {"amount": 42}})
    await flows.start("welcome", target={"usersById": ["kim"]})
    await flows.run_jobs()
    cards = {c["templateId"]: c["cardInstanceId"] for c in (await kim.feed())["cards"]}
    voted = await kim.vote(cards["hello"], up=False, message="not for me")
    assert voted["cardInstanceId"] == cards["hello"]
    snoozed = await kim.snooze(cards["hello"], datetime.now(UTC) + timedelta(hours=1))
    assert snoozed["status"] == "snoozed"
    submitted = await kim.submit(cards["ask"], {"mine": True})
    assert submitted["status"] == "completed" and submitted["values"] == {"mine": True}
    with pytest.raises(HubClientError) as closed:
        await kim.dismiss(cards["ask"])
    assert closed.value.status == 409
    async with HubClient("http://testserver", hub_env.id, sdk_signer.token("lee"),
                         transport=kim._http._transport) as lee:
        with pytest.raises(HubClientError) as other:
            await lee.dismiss(cards["hello"])
    assert other.value.status == 404 and other.value.problem["status"] == 404


async def test_events_and_devices_are_accepted(flows, kim):
    await kim.send_events([{"analyticsEvent": "stream-displayed", "streamContext": {"streamId": "default"}}])
    device = await kim.register_device("ios", "a" * 64, apns_topic="com.example.app")
    assert device["platform"] == "ios"
    with pytest.raises(HubClientError) as bad:
        await kim.send_events([{"analyticsEvent": "no-such-event"}])
    assert bad.value.status == 422


@contextlib.asynccontextmanager
async def collecting(client: HubClient, last_event_id: int | None = None
                     ) -> AsyncIterator[asyncio.Queue[Any]]:
    """Iterate ``client.stream()`` in a task; frames (or the exception that ended it) land in a queue."""
    frames: asyncio.Queue[Any] = asyncio.Queue()

    async def run() -> None:
        try:
            async for frame in client.stream(last_event_id):
                frames.put_nowait(frame)
        except Exception as exc:
            frames.put_nowait(exc)

    task = asyncio.create_task(run())
    try:
        yield frames
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def connected(hub: Any, client: HubClient, user: str) -> Any:
    """The server's session of ``client``'s socket, once its hello has been received."""
    for _ in range(500):
        sessions = list(fanout(hub).subscribers.get(("acme", user), ()))
        if len(sessions) == 1 and client.last_event_id is not None:
            return sessions[0]
        await asyncio.sleep(0.01)
    raise AssertionError(f"{user} did not connect")


async def test_the_stream_yields_card_frames_and_reconnects_with_its_last_id(hub, sdk_signer, server):
    async with HubClient(server, "acme", sdk_signer.token("kim"), reconnect_delay=0.05) as client, \
            collecting(client) as frames:
        session = await connected(hub, client, "kim")
        await change(hub, "kim", "c1")
        first = await asyncio.wait_for(frames.get(), 5)
        session.limit = 1  # two frames pending at once: closed as too slow (1013)
        session.offer(CONTROL, PONG)
        session.offer(CONTROL, PONG)
        await change(hub, "kim", "c2")
        await change(hub, "kim", "c3")
        rest = [await asyncio.wait_for(frames.get(), 10) for _ in range(2)]
        again = await connected(hub, client, "kim")
    assert again is not session
    assert [(f["eventId"], f["cardInstanceId"], f["change"]) for f in (first, *rest)] == [
        (1, "c1", "added"), (2, "c2", "added"), (3, "c3", "added")]
    assert client.last_event_id == 3


async def test_the_stream_starts_after_a_given_id_and_stops_when_the_token_is_refused(
        hub, sdk_signer, server):
    for card_id in ("a", "b", "c"):
        await change(hub, "kim", card_id)
    async with HubClient(server, "acme", sdk_signer.token("kim")) as client, \
            collecting(client, last_event_id=1) as frames:
        replayed = [await asyncio.wait_for(frames.get(), 5) for _ in range(2)]
    assert [f["cardInstanceId"] for f in replayed] == ["b", "c"]
    async with HubClient(server, "acme", sdk_signer.token("kim", expires_in=-3600)) as expired, \
            collecting(expired) as frames:
        error = await asyncio.wait_for(frames.get(), 5)
    assert isinstance(error, HubClientError) and error.status == 401
    assert "expired" in error.detail

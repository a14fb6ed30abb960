"""The SDK socket: card frames in real time, replay on reconnect, isolation, slow clients, tokens.

Sockets are real: the app is served by uvicorn on a loopback port inside the test's event loop
(:func:`hub.testing.serve_app`), and clients are ``websockets`` connections.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket as stdlib_socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from hub.app import Hub, create_app
from hub.testing import make_environment, serve_app
from hub_plugins.sdk_streams import realtime, realtime_log
from hub_plugins.sdk_streams.realtime_fanout import fanout
from hub_plugins.sdk_streams.testing import make_signer
from tests.engine.conftest import CARD_FLOW, Flows


class Socket:
    """A test's end of one socket."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn

    async def next(self, wait: float = 5.0) -> dict[str, Any]:
        return dict(json.loads(await asyncio.wait_for(self.conn.recv(), wait)))

    async def nothing_pending(self) -> None:
        """Nothing was queued for this socket: a ping sent now is answered by the next frame."""
        await self.conn.send('{"type": "ping"}')
        assert await self.next() == {"type": "pong"}

    async def closed(self, wait: float = 10.0) -> tuple[int, list[dict[str, Any]]]:
        """Read until the server closes: (close code, frames read before)."""
        frames = []
        with pytest.raises(ConnectionClosed) as info:
            while True:
                frames.append(await self.next(wait))
        assert info.value.rcvd is not None
        return info.value.rcvd.code, frames


def socket_url(base: str, env: str, token: str, last_event_id: int | None = None) -> str:
    url = base.replace("http://", "ws://") + f"/v1/{env}/sdk/socket?token={token}"
    return url if last_event_id is None else f"{url}&lastEventId={last_event_id}"


@contextlib.asynccontextmanager
async def open_socket(base: str, env: str, token: str, last_event_id: int | None = None,
                      **options: Any) -> AsyncIterator[Socket]:
    async with connect(socket_url(base, env, token, last_event_id), **options) as conn:
        yield Socket(conn)


@pytest.fixture
async def server(hub_app: Any) -> AsyncIterator[str]:
    async with serve_app(hub_app) as url:
        yield url


def use_settings(hub: Hub, **changes: Any) -> None:
    current = hub.plugin_settings["sdk_streams"]
    hub.plugin_settings["sdk_streams"] = msgspec.structs.replace(current, **changes)


def fake_card(user: str, card_id: str, status: str = "active", **extra: Any) -> dict[str, Any]:
    return {"cardInstanceId": card_id, "userId": user, "status": status, "priority": 5,
            "targetStreamIds": ["default"], "environmentId": "acme", "content": {}, **extra}


async def change(hub: Hub, user: str, card_id: str, status: str = "active", previous: str | None = None,
                 event_id: str | None = None, **extra: Any) -> None:
    """What the worker does for one card change: call the hook."""
    card = fake_card(user, card_id, status, **extra)
    before = None if previous is None else {**card, "status": previous}
    await realtime.card_changed(hub, card, before, {"environmentId": "acme", "reason": status,
                                                    "eventId": event_id or uuid.uuid4().hex})


async def test_a_card_sent_by_a_flow_reaches_the_connected_socket(
        hub, hub_client, hub_env, run_jobs, sdk_signer, server):
    flows = Flows(hub_client, hub_env, run_jobs, hub)
    await flows.publish("welcome", CARD_FLOW)
    async with open_socket(server, hub_env.id, sdk_signer.token("kim")) as socket:
        hello = await socket.next()
        assert hello == {"type": "hello", "userId": "kim", "lastEventId": 0, "heartbeatSeconds": 25}
        started = time.perf_counter()
        await flows.start("welcome", target={"usersById": ["kim"]})
        await run_jobs()
        frame = await socket.next(wait=10)
        elapsed = time.perf_counter() - started
        print(f"trigger accepted -> frame received (jobs run inline): {elapsed * 1000:.0f} ms")
    [card] = await flows.cards(userId="kim")
    assert frame["type"] == "card" and frame["eventId"] == 1 and frame["change"] == "added"
    assert frame["cardInstanceId"] == card["cardInstanceId"]
    assert frame["card"]["status"] == "active" and frame["card"]["targetStreamIds"] == ["default"]
    assert frame["card"]["content"] == card["content"] and "userId" not in frame["card"]


async def test_a_card_leaving_the_stream_is_removed_and_an_invisible_change_is_not_sent(
        hub, sdk_signer, server):
    async with open_socket(server, "acme", sdk_signer.token("kim")) as socket:
        await socket.next()
        await change(hub, "kim", "c1", "embargoed")
        await change(hub, "kim", "c1", "cancelled", previous="embargoed")
        await change(hub, "kim", "c2", "active")
        await change(hub, "kim", "c2", "active", previous="active", values={"a": 1})
        await change(hub, "kim", "c2", "snoozed", previous="active")
        await change(hub, "kim", "c2", "active", previous="snoozed")
        frames = [await socket.next() for _ in range(4)]
        await socket.nothing_pending()
    assert [(f["eventId"], f["cardInstanceId"], f["change"]) for f in frames] == [
        (1, "c2", "added"), (2, "c2", "updated"), (3, "c2", "removed"), (4, "c2", "added")]


async def test_reconnecting_with_the_last_id_replays_exactly_what_was_missed(hub, sdk_signer, server):
    token = sdk_signer.token("kim")
    await change(hub, "kim", "old")
    async with open_socket(server, "acme", token) as socket:
        assert (await socket.next())["lastEventId"] == 1
        await change(hub, "kim", "seen")
        last = (await socket.next())["eventId"]
    for card_id in ("a", "b", "c"):
        await change(hub, "kim", card_id)
    async with open_socket(server, "acme", token, last) as socket:
        assert await socket.next() == {"type": "hello", "userId": "kim", "lastEventId": 5,
                                       "heartbeatSeconds": 25}
        missed = [await socket.next() for _ in range(3)]
        await socket.nothing_pending()
        await change(hub, "kim", "live")
        live = await socket.next()
    assert [(f["eventId"], f["cardInstanceId"]) for f in missed] == [(3, "a"), (4, "b"), (5, "c")]
    assert (live["eventId"], live["cardInstanceId"]) == (6, "live")


async def test_a_change_announced_twice_is_sent_once(hub, sdk_signer, server):
    async with open_socket(server, "acme", sdk_signer.token("kim")) as socket:
        await socket.next()
        await change(hub, "kim", "c1", event_id="evt-1")
        await change(hub, "kim", "c1", event_id="evt-1")
        frame = await socket.next()
        await socket.nothing_pending()
    assert frame["eventId"] == 1
    assert (await realtime_log.replay(hub, "acme", "kim", 0)).frames == [(1, json.dumps(
        frame, separators=(",", ":")))]


async def test_an_id_older_than_the_log_or_newer_than_the_newest_gets_a_resync(hub, sdk_signer, server):
    use_settings(hub, socket_replay_events=2)
    token = sdk_signer.token("kim")
    for n in range(5):
        await change(hub, "kim", f"c{n}")
    async with open_socket(server, "acme", token, 1) as socket:
        assert (await socket.next())["type"] == "hello"
        assert await socket.next() == {"type": "resync", "lastEventId": 5}
        await socket.nothing_pending()
    async with open_socket(server, "acme", token, 99) as socket:
        await socket.next()
        assert await socket.next() == {"type": "resync", "lastEventId": 5}
    async with open_socket(server, "acme", token, 3) as socket:  # 4 and 5 are retained
        await socket.next()
        assert [(await socket.next())["eventId"] for _ in range(2)] == [4, 5]
        await socket.nothing_pending()


async def test_a_socket_on_another_app_instance_receives_the_change(hub, hub_settings, sdk_signer, server):
    other = Hub(hub_settings)
    await other.start()
    try:
        async with serve_app(create_app(hub=other)) as other_url, \
                open_socket(other_url, "acme", sdk_signer.token("kim")) as socket:
            await socket.next()
            await change(hub, "kim", "c1")  # recorded through the first Hub (as a worker would)
            frame = await socket.next()
        assert frame["cardInstanceId"] == "c1"
        assert fanout(other).received == 1
    finally:
        await other.close()


async def test_a_client_that_does_not_read_is_closed_with_1013_and_loses_nothing(hub, sdk_signer, server):
    use_settings(hub, socket_send_queue=4)
    token = sdk_signer.token("kim")
    big = {"text": base64.b64encode(os.urandom(150_000)).decode()}  # compression cannot shrink it
    tiny = stdlib_socket.socket()
    tiny.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_RCVBUF, 4096)  # before connecting
    tiny.connect(("127.0.0.1", int(server.rsplit(":", 1)[1])))
    async with open_socket(server, "acme", token, sock=tiny, max_queue=1, max_size=None) as socket:
        await socket.next()
        for n in range(60):  # ~12 MB: more than the socket buffers hold
            await change(hub, "kim", f"c{n}", content=big)
        code, frames = await socket.closed(wait=20)
    assert code == 1013
    assert len(frames) < 60
    last = frames[-1]["eventId"] if frames else 0
    async with open_socket(server, "acme", token, last, max_size=None) as socket:
        await socket.next()
        rest = [(await socket.next())["eventId"] for _ in range(60 - last)]
    assert rest == list(range(last + 1, 61))


async def test_expired_and_forged_tokens_are_closed_with_4401(hub, sdk_signer, server):
    other_signer = await make_signer(hub, "acme", issuer="https://other.example")
    forged = other_signer.token("kim")[:-8] + "AAAAAAAA"
    for token in (sdk_signer.token("kim", expires_in=-3600), forged, "not-a-jwt", ""):
        async with open_socket(server, "acme", token) as socket:
            error = await socket.next()
            code, _ = await socket.closed()
        assert error["type"] == "error" and error["status"] == 401 and error["detail"]
        assert code == 4401


async def test_a_token_that_expires_while_connected_closes_the_socket_with_4401(hub, sdk_signer, server):
    use_settings(hub, jwt_leeway_seconds=0)
    async with open_socket(server, "acme", sdk_signer.token("kim", expires_in=2)) as socket:
        assert (await socket.next())["type"] == "hello"
        error = await socket.next(wait=10)
        code, _ = await socket.closed()
    assert error == {"type": "error", "status": 401, "detail": "the token has expired"}
    assert code == 4401


async def test_another_user_never_receives_this_users_frames(hub, sdk_signer, server):
    async with open_socket(server, "acme", sdk_signer.token("kim")) as kim, \
            open_socket(server, "acme", sdk_signer.token("lee")) as lee:
        await kim.next()
        await lee.next()
        await change(hub, "kim", "secret")
        assert (await kim.next())["cardInstanceId"] == "secret"
        await lee.nothing_pending()
    async with open_socket(server, "acme", sdk_signer.token("lee"), 0) as lee:
        assert (await lee.next())["lastEventId"] == 0
        await lee.nothing_pending()


async def test_a_token_of_another_environment_is_refused(hub, sdk_signer, server):
    await make_environment(hub, "globex")
    globex = await make_signer(hub, "globex")
    async with open_socket(server, "acme", globex.token("kim")) as socket:
        error = await socket.next()
        code, _ = await socket.closed()
    assert error["status"] == 401 and code == 4401


async def test_heartbeats_are_sent_and_a_bad_last_event_id_is_refused(hub, sdk_signer, server):
    use_settings(hub, socket_heartbeat_seconds=0.2)
    async with open_socket(server, "acme", sdk_signer.token("kim")) as socket:
        assert (await socket.next())["heartbeatSeconds"] == 0.2
        assert await socket.next(wait=2) == {"type": "ping"}
        await socket.conn.send('{"type": "pong"}')
        assert await socket.next(wait=2) == {"type": "ping"}
    async with open_socket(server, "acme", sdk_signer.token("kim"), last_event_id=None) as socket:
        await socket.next()
    url = socket_url(server, "acme", sdk_signer.token("kim")) + "&lastEventId=-1"
    async with connect(url) as conn:
        error = json.loads(await conn.recv())
        with pytest.raises(ConnectionClosed) as info:
            await conn.recv()
    assert error["status"] == 400 and "lastEventId" in error["detail"]
    assert info.value.rcvd is not None and info.value.rcvd.code == 4400


async def test_a_frame_lost_on_the_way_is_recovered_from_the_log(hub, sdk_signer, server, monkeypatch):
    async with open_socket(server, "acme", sdk_signer.token("kim")) as socket:
        await socket.next()
        with monkeypatch.context() as patch:  # logged, but published where nobody listens
            patch.setattr(realtime_log, "channel_name", lambda redis: "hub:sdk:socket:nowhere")
            await change(hub, "kim", "lost-1")
        await change(hub, "kim", "next")  # id 2 arrives after 1: the gap is read from the log
        assert [(await socket.next())["cardInstanceId"] for _ in range(2)] == ["lost-1", "next"]
        with monkeypatch.context() as patch:
            patch.setattr(realtime_log, "channel_name", lambda redis: "hub:sdk:socket:nowhere")
            await change(hub, "kim", "lost-2")
        [session] = fanout(hub).subscribers[("acme", "kim")]
        session.resume()  # what the fan-out does after it resubscribed
        frame = await socket.next()
        await socket.nothing_pending()
    assert (frame["eventId"], frame["cardInstanceId"]) == (3, "lost-2")


async def test_when_the_subscription_drops_the_process_resubscribes_and_sockets_catch_up(
        hub, sdk_signer, server):
    async with open_socket(server, "acme", sdk_signer.token("kim")) as socket:
        await socket.next()
        fan = fanout(hub)
        await fan._pubsub.connection.disconnect()  # as if Redis had gone away for a moment
        await change(hub, "kim", "during")  # published while nobody of this process listens
        frame = await socket.next()
        await change(hub, "kim", "after")
        after = await socket.next()
    assert fan.subscriptions == 2
    assert [(f["eventId"], f["cardInstanceId"]) for f in (frame, after)] == [(1, "during"), (2, "after")]

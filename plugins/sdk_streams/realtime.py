"""Real-time card updates over WebSocket (``/v1/{env}/sdk/socket``), fanned out through Redis.

This module is what ``hooks.py`` delegates to: ``ROUTES`` (route handlers), ``JOBS`` (job
functions) and :func:`card_changed` / :func:`queue_card_changed` (for ``hub_cards_changed``).
The event log lives in :mod:`realtime_log`, the per-process subscription in
:mod:`realtime_fanout`.

One socket costs one :class:`Session` (a bounded deque of shared frame strings) and two tasks:
the handler, which reads what the client sends, and the sender, which alone writes to the
socket (hello, replay, live frames, pings, the close).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath

from hub.api.problems import Problem
from hub.logging import get_logger
from hub_plugins.sdk_streams import realtime_log
from hub_plugins.sdk_streams.realtime_fanout import fanout

if TYPE_CHECKING:
    from hub.app import Hub

log = get_logger(__name__)

CONTROL = -1  # the event id of queued frames that are not card events (pong)
PING = '{"type":"ping"}'
PONG = '{"type":"pong"}'
CLOSE_TOO_SLOW = 1013
CLOSE_UNAVAILABLE = 1011
GONE = (WebSocketDisconnect, OSError)


def _frame(**fields: Any) -> str:
    return msgspec.json.encode(fields).decode()


def _seconds(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


class Session:
    """One connected socket: what was sent last, and what waits to be sent."""

    __slots__ = ("socket", "hub", "env", "user", "last_sent", "pending", "limit", "wake",
                 "close_code", "resume_needed", "expires_at")

    def __init__(self, socket: WebSocket[Any, Any, Any], hub: Hub, env: str, user: str,
                 limit: int, expires_at: float | None) -> None:
        self.socket, self.hub, self.env, self.user = socket, hub, env, user
        self.last_sent = 0
        self.pending: deque[tuple[int, str]] = deque()
        self.limit = max(1, limit)
        self.wake = asyncio.Event()
        self.close_code = 0
        self.resume_needed = False
        self.expires_at = expires_at

    # --- called by the fan-out and the reader (never block) ---------------------------------

    def offer(self, event_id: int, text: str) -> None:
        if self.close_code:
            return
        if len(self.pending) >= self.limit:
            # The client does not read: drop what waits (it is in the log) and close; the
            # client reconnects with its last id and gets it back.
            self.pending.clear()
            self.close_code = CLOSE_TOO_SLOW
        else:
            self.pending.append((event_id, text))
        self.wake.set()

    def resume(self) -> None:
        self.resume_needed = True
        self.wake.set()

    # --- the sender task --------------------------------------------------------------------

    async def run(self, after: int | None, heartbeat: float) -> None:
        try:
            await self._open(after, heartbeat)
            await self._loop(heartbeat)
        except GONE:
            return

    async def _send(self, text: str) -> None:
        await self.socket.send_data(text, "text")

    async def _open(self, after: int | None, heartbeat: float) -> None:
        if after is None:
            newest = await realtime_log.newest_id(self.hub, self.env, self.user)
            self.last_sent = newest
            await self._send(self._hello(newest, heartbeat))
            return
        found = await realtime_log.replay(self.hub, self.env, self.user, after)
        await self._send(self._hello(found.newest, heartbeat))
        self.last_sent = after
        await self._deliver(found)

    def _hello(self, newest: int, heartbeat: float) -> str:
        return _frame(type="hello", userId=self.user, lastEventId=newest,
                      heartbeatSeconds=_seconds(heartbeat))

    async def _deliver(self, found: realtime_log.Replay) -> None:
        if not found.complete:
            self.last_sent = found.newest
            await self._send(_frame(type="resync", lastEventId=found.newest))
            return
        for event_id, text in found.frames:
            if event_id > self.last_sent:
                await self._send(text)
                self.last_sent = event_id

    async def _catch_up(self) -> None:
        await self._deliver(await realtime_log.replay(self.hub, self.env, self.user, self.last_sent))

    async def _loop(self, heartbeat: float) -> None:
        loop = asyncio.get_running_loop()
        next_ping = loop.time() + heartbeat
        while True:
            if not self.pending and not self.close_code and not self.resume_needed:
                self.wake.clear()
                deadline = next_ping if self.expires_at is None else min(next_ping, self.expires_at)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(deadline):
                        await self.wake.wait()
            if self.close_code:
                await self.socket.close(self.close_code, "too many frames pending: reconnect")
                return
            now = loop.time()
            if self.expires_at is not None and now >= self.expires_at:
                await self._send(_frame(type="error", status=401, detail="the token has expired"))
                await self.socket.close(4401, "token expired")
                return
            if now >= next_ping:
                await self._send(PING)
                next_ping = now + heartbeat
            if self.resume_needed:
                self.resume_needed = False
                await self._catch_up()
            while self.pending and not self.close_code:
                event_id, text = self.pending.popleft()
                if event_id == CONTROL:
                    await self._send(text)
                elif event_id <= self.last_sent:
                    continue  # already sent by the replay
                elif event_id > self.last_sent + 1:
                    await self._catch_up()  # a frame was lost on the way: the log has it
                else:
                    await self._send(text)
                    self.last_sent = event_id


def _after(socket: WebSocket[Any, Any, Any]) -> int | None:
    raw = socket.query_params.get("lastEventId")
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise Problem(400, "lastEventId must be a non-negative integer")
    return int(raw)


async def _refuse(socket: WebSocket[Any, Any, Any], problem: Problem) -> None:
    code = 4000 + problem.status if 400 <= problem.status < 500 else CLOSE_UNAVAILABLE
    with contextlib.suppress(*GONE):
        await socket.send_data(_frame(type="error", status=problem.status, detail=problem.detail), "text")
        await socket.close(code, problem.detail[:120])


@websocket("/v1/{env:str}/sdk/socket", opt={"auth": "end_user"}, name="sdk_socket")
async def sdk_socket(socket: WebSocket[Any, Any, Any], env: FromPath[str]) -> None:
    """Card frames for the user of ``?token=`` as they happen; see docs/sdk-realtime.md."""
    from hub_plugins.sdk_streams.auth import authenticate

    hub: Hub = socket.app.state.hub
    settings = hub.plugin_settings["sdk_streams"]
    await socket.accept()
    try:
        after = _after(socket)
        user = await authenticate(hub, env, socket.query_params.get("token", ""))
    except Problem as problem:
        await _refuse(socket, problem)
        return
    exp = user.claims.get("exp")
    expires_at = None
    if isinstance(exp, int | float):
        remaining = float(exp) + settings.jwt_leeway_seconds - time.time()
        expires_at = asyncio.get_running_loop().time() + remaining
    session = Session(socket, hub, env, user.user_id, settings.socket_send_queue, expires_at)
    key = (env, user.user_id)
    fan = fanout(hub)
    try:
        await fan.add(key, session)
    except TimeoutError:
        fan.remove(key, session)
        log.warning("sdk_socket_fanout_unavailable", env=env)
        await _refuse(socket, Problem(503, "real-time updates are unavailable: retry later"))
        return
    sender = asyncio.create_task(session.run(after, settings.socket_heartbeat_seconds))
    try:
        await _read(socket, session)
    finally:
        fan.remove(key, session)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, *GONE):
            await sender


async def _read(socket: WebSocket[Any, Any, Any], session: Session) -> None:
    """What the client sends: pings (answered), pongs (nothing to do); until it goes."""
    while True:
        try:
            message = await socket.receive()
        except GONE:
            return
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("text") or message.get("bytes") or b""
        try:
            decoded = msgspec.json.decode(data)
        except msgspec.DecodeError:
            continue
        if isinstance(decoded, dict) and decoded.get("type") == "ping":
            session.offer(CONTROL, PONG)


ROUTES: list[Any] = [sdk_socket]
JOBS: list[Any] = []


async def card_changed(hub: Hub, card: dict[str, Any], previous: dict[str, Any] | None,
                       context: dict[str, Any]) -> None:
    """Bump the user's feed version; record the change in their event log and publish it to
    connected sockets."""
    await realtime_log.card_changed(hub, card, previous, context)


async def queue_card_changed(hub: Hub, pipe: Any, card: dict[str, Any], previous: dict[str, Any] | None,
                             context: dict[str, Any]) -> None:
    """:func:`card_changed` as a command of the Redis pipeline ``pipe``."""
    await realtime_log.queue_card_changed(hub, pipe, card, previous, context)

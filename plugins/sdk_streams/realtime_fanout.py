"""One Redis pub/sub subscription per Hub process, fanned out to the sockets connected to it.

Whichever process a change is recorded in (usually a worker), the Lua script of
:mod:`realtime_log` publishes it on one channel; every ``hub serve`` process listens on that
channel with one connection and hands each message to the sockets of its user, found in an
in-process map. The listener starts with the first socket and stops when the Hub closes; if its
Redis connection drops, it resubscribes and asks every socket to catch up from the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from hub.logging import get_logger
from hub_plugins.sdk_streams.realtime_log import channel_name

if TYPE_CHECKING:
    from hub.app import Hub

log = get_logger(__name__)

UserKey = tuple[str, str]
READY_TIMEOUT = 10.0


class Subscriber(Protocol):
    def offer(self, event_id: int, text: str) -> None:
        """A frame of this subscriber's user, as published (called on the event loop)."""

    def resume(self) -> None:
        """Messages may have been lost: catch up from the log."""


class Fanout:
    """The process's subscription and its map of user → connected sockets."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.subscribers: dict[UserKey, set[Subscriber]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event = asyncio.Event()
        self._decoder = msgspec.json.Decoder(tuple[str, str, int])
        self._pubsub: Any = None
        self.received = 0
        self.subscriptions = 0

    async def add(self, key: UserKey, subscriber: Subscriber) -> None:
        """Route ``key``'s frames to ``subscriber``; returns once the subscription is active, so
        a log read after this cannot miss a frame published in between."""
        self.subscribers.setdefault(key, set()).add(subscriber)
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="sdk-socket-fanout")
            self.hub.on_close(self.stop)
        async with asyncio.timeout(READY_TIMEOUT):
            await self._ready.wait()

    def remove(self, key: UserKey, subscriber: Subscriber) -> None:
        group = self.subscribers.get(key)
        if group is not None:
            group.discard(subscriber)
            if not group:
                del self.subscribers[key]

    def count(self) -> int:
        return sum(len(group) for group in self.subscribers.values())

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._ready.clear()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def dispatch(self, data: bytes) -> None:
        head, _, frame = data.partition(b"\n")
        try:
            env, user, event_id = self._decoder.decode(head)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.warning("sdk_socket_bad_message", head=head[:200])
            return
        group = self.subscribers.get((env, user))
        if group:
            text = frame.decode()
            for subscriber in tuple(group):
                subscriber.offer(event_id, text)

    async def _listen(self) -> None:
        delay, first = 0.1, True
        channel = channel_name(self.hub.redis)
        while True:
            pubsub = self._pubsub = self.hub.redis.pubsub()
            try:
                await pubsub.subscribe(channel)
                # Ready only once Redis confirms: a socket reads the log after this, and a frame
                # published in between must reach it live.
                while True:
                    confirmed: Any = await pubsub.get_message(timeout=None)
                    if confirmed is not None and confirmed.get("type") == "subscribe":
                        break
                self.subscriptions += 1
                if not first:
                    log.info("sdk_socket_fanout_resubscribed", channel=channel)
                    for group in tuple(self.subscribers.values()):
                        for subscriber in tuple(group):
                            subscriber.resume()
                first, delay = False, 0.1
                self._ready.set()
                while True:
                    message: Any = await pubsub.get_message(timeout=None)
                    if message is not None and message.get("type") == "message":
                        self.received += 1
                        self.dispatch(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the connection dropped: resubscribe, sockets catch up
                self._ready.clear()
                log.warning("sdk_socket_fanout_disconnected", error=f"{type(exc).__name__}: {exc}",
                            retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()


_fanouts: weakref.WeakKeyDictionary[Any, Fanout] = weakref.WeakKeyDictionary()


def fanout(hub: Hub) -> Fanout:
    """The fan-out of ``hub`` (one per Hub, so two apps in one test process are two "servers")."""
    found = _fanouts.get(hub)
    if found is None:
        found = _fanouts[hub] = Fanout(hub)
    return found

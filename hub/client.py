"""A Python client for Hub's end-user SDK API: feed, card actions, analytics, devices, real time.

For servers, scripts and tests that act as one customer (with the end-user JWT the customer's
backend signs)::

    async with HubClient("https://hub.example.com", "prod", token) as client:
        feed = await client.feed()
        await client.submit(feed["cards"][0]["cardInstanceId"], {"mine": True})
        async for frame in client.stream():
            print(frame["change"], frame["cardInstanceId"])

``stream()`` reconnects on its own with the last event id it saw, so no change is lost; it
yields ``card`` frames and, when the server could not replay what was missed, a ``resync`` frame
(refetch the feed). It depends on ``httpx`` and ``websockets`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

AUTH_CLOSE_CODES = frozenset({4401, 4403})
"""Close codes after which reconnecting with the same token cannot help."""


class HubClientError(Exception):
    """An answer that was not a success: ``status`` and the problem document (``problem``)."""

    def __init__(self, status: int, problem: dict[str, Any] | None, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.problem = problem or {}
        self.detail = detail


class HubClient:
    """One end user's view of Hub. ``token`` may be replaced (``client.token = new``) at any
    time; the next request and the next reconnection use it."""

    def __init__(self, base_url: str, env: str, token: str, *, timeout: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None,
                 reconnect_delay: float = 0.5, max_reconnect_delay: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.env = env
        self.token = token
        self.reconnect_delay = reconnect_delay
        self.max_reconnect_delay = max_reconnect_delay
        self.last_event_id: int | None = None
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport)
        self._feeds: dict[str, tuple[str, dict[str, Any]]] = {}

    async def __aenter__(self) -> HubClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- HTTP ---------------------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return "/v1/" + "/".join(quote(p, safe="") for p in (self.env, "sdk", *parts))

    async def _request(self, method: str, path: str, *, body: Any = None,
                       headers: dict[str, str] | None = None) -> httpx.Response:
        response = await self._http.request(
            method, path, json=body,
            headers={"Authorization": f"Bearer {self.token}", **(headers or {})})
        if response.status_code >= 400:
            problem: dict[str, Any] | None = None
            with contextlib.suppress(ValueError):
                decoded = response.json()
                problem = decoded if isinstance(decoded, dict) else None
            detail = str((problem or {}).get("detail") or response.text[:200])
            raise HubClientError(response.status_code, problem, detail)
        return response

    async def feed(self, container: str = "default") -> dict[str, Any]:
        """The open cards of ``container``: ``{"cards", "version", "pollSeconds"}``. Sends the
        last ETag; on ``304 Not Modified`` returns the answer it has (the same dict)."""
        cached = self._feeds.get(container)
        headers = {"If-None-Match": cached[0]} if cached else {}
        response = await self._request("GET", self._path("streams", container, "cards"), headers=headers)
        if response.status_code == 304 and cached is not None:
            return cached[1]
        body: dict[str, Any] = response.json()
        etag = response.headers.get("etag")
        if etag:
            self._feeds[container] = (etag, body)
        return body

    async def _act(self, card_id: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._request("POST", self._path("cards", card_id, action), body=body)
        card: dict[str, Any] = response.json()["card"]
        return card

    async def submit(self, card_id: str, values: dict[str, Any]) -> dict[str, Any]:
        """Complete a card with its input values; returns the card."""
        return await self._act(card_id, "submit", {"values": values})

    async def dismiss(self, card_id: str) -> dict[str, Any]:
        return await self._act(card_id, "dismiss", {})

    async def snooze(self, card_id: str, until: datetime | str) -> dict[str, Any]:
        """Hide a card until ``until`` (an aware datetime or an ISO 8601 UTC string)."""
        when = until if isinstance(until, str) else until.isoformat().replace("+00:00", "Z")
        return await self._act(card_id, "snooze", {"until": when})

    async def vote(self, card_id: str, up: bool, message: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"direction": "up" if up else "down"}
        if message is not None:
            body["message"] = message
        return await self._act(card_id, "vote", body)

    async def send_events(self, events: list[dict[str, Any]]) -> None:
        """SDK analytics events (``{"analyticsEvent": "card-displayed", ...}``), in one batch."""
        await self._request("POST", self._path("events"), body={"events": events})

    async def register_device(self, platform: str, token: str, *, app_id: str | None = None,
                              apns_topic: str | None = None) -> dict[str, Any]:
        """Register a push token (``platform``: ``ios``, ``android`` or ``web``)."""
        body: dict[str, Any] = {"platform": platform, "token": token}
        if app_id is not None:
            body["appId"] = app_id
        if apns_topic is not None:
            body["apnsTopic"] = apns_topic
        response = await self._request("POST", self._path("devices"), body=body)
        return dict(response.json()) if response.content else {}

    # --- real time ----------------------------------------------------------------------------

    def socket_url(self, last_event_id: int | None = None) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        query: dict[str, Any] = {"token": self.token}
        if last_event_id is not None:
            query["lastEventId"] = last_event_id
        return urlunsplit((scheme, parts.netloc, parts.path + self._path("socket"), urlencode(query), ""))

    async def stream(self, last_event_id: int | None = None) -> AsyncIterator[dict[str, Any]]:
        """Card frames (``{"type": "card", "eventId", "change", "cardInstanceId", "card"}``) and
        ``resync`` frames, for ever: reconnects with the last event id after a drop (with
        backoff). Raises :class:`HubClientError` (401) when the server refuses the token."""
        self.last_event_id = last_event_id
        delay = self.reconnect_delay
        while True:
            try:
                async with connect(self.socket_url(self.last_event_id), max_queue=64,
                                   open_timeout=10) as socket:
                    async for frame in self._frames(socket):
                        delay = self.reconnect_delay
                        yield frame
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else 1006
                if code in AUTH_CLOSE_CODES:
                    reason = closed.rcvd.reason if closed.rcvd is not None else ""
                    raise HubClientError(code - 4000, None, reason or "token refused") from closed
            except InvalidStatus as refused:
                status = refused.response.status_code
                if 400 <= status < 500 and status != 429:
                    raise HubClientError(status, None, "the socket was refused") from refused
            except (OSError, InvalidHandshake, TimeoutError):
                pass
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, self.max_reconnect_delay)

    async def _frames(self, socket: ClientConnection) -> AsyncIterator[dict[str, Any]]:
        async for raw in socket:
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "ping":
                await socket.send('{"type":"pong"}')
            elif kind == "hello" and self.last_event_id is None:
                self.last_event_id = int(frame["lastEventId"])
            elif kind == "error":
                status = int(frame.get("status", 0))
                if status in (401, 403):
                    raise HubClientError(status, frame, str(frame.get("detail", "")))
            elif kind == "resync":
                self.last_event_id = int(frame["lastEventId"])
                yield frame
            elif kind == "card":
                self.last_event_id = int(frame["eventId"])
                yield frame
        # A clean close (1000/1001/1012...) ends the iteration of the socket: reconnect.


__all__ = ["HubClient", "HubClientError"]

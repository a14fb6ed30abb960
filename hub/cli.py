"""The ``hub`` command line."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import typer

from hub.settings import Settings, SettingsError, load_settings

T = TypeVar("T")

cli = typer.Typer(
    name="hub",
    help="Hub: action cards, push and flows for your customers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
env_cli = typer.Typer(help="Environments (tenants).", no_args_is_help=True)
client_cli = typer.Typer(help="API clients (OAuth2 client credentials).", no_args_is_help=True)
cli.add_typer(env_cli, name="env")
cli.add_typer(client_cli, name="client")


class CliError(Exception):
    """Printed as one line on stderr; the command exits with status 1."""


def fail(message: str) -> None:
    raise CliError(message)


def _settings() -> Settings:
    return load_settings()


def _run(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(coro_fn())


async def _with_db(settings: Settings, fn: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    from hub.db import Database

    db = Database(settings)
    try:
        return await fn(db)
    finally:
        await db.dispose()


def run_with_hub(env: str | None, action: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run ``action(hub)`` on a started Hub (database and Redis), checking ``env`` exists.

    For commands that change things: their jobs go through Redis like the API's do.
    """
    from hub.app import Hub
    from hub.logging import configure_logging
    from hub.services import environments

    settings = _settings()
    configure_logging(settings)  # log lines go to stderr at HUB_LOG_LEVEL, never into the output

    async def go() -> T:
        hub = Hub(settings)
        await hub.start()
        try:
            if env is not None and await environments.get_environment(hub.db, env) is None:
                raise CliError(f"environment {env!r} does not exist (hub env create {env})")
            return await action(hub)
        finally:
            await hub.close()

    return _run(go)


def parse_json_option(value: str | None, name: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise CliError(f"{name} is not valid JSON: {exc}") from None


# --- database -------------------------------------------------------------------------------


@cli.command()
def migrate(revision: str = typer.Option(
        "heads", help="Alembic revision to go to (default: the newest of every branch).")) -> None:
    """Apply database migrations (run before `hub serve` after each upgrade).

    Example: HUB_DATABASE_URL=postgresql+asyncpg://hub@db/hub hub migrate
    """
    from hub.db import migrate as migrations

    settings = _settings()

    async def go(db: Any) -> str | None:
        await migrations.upgrade(db.engine, revision)
        return await migrations.current(db.engine)

    current = _run(lambda: _with_db(settings, go))
    typer.echo(f"database at revision {current}")


# --- environments and clients ---------------------------------------------------------------


@env_cli.command("create")
def env_create(env_id: str = typer.Argument(..., metavar="NAME"),
               name: str = typer.Option("", help="Display name (defaults to NAME).")) -> None:
    """Create an environment. Example: hub env create production"""
    from hub.services import environments

    row = _run(lambda: _with_db(_settings(),
                                lambda db: environments.create_environment(db, env_id, name)))
    typer.echo(f"created environment {row['id']}")


@env_cli.command("list")
def env_list() -> None:
    """List environments."""
    from hub.services import environments

    for row in _run(lambda: _with_db(_settings(), environments.list_environments)):
        typer.echo(f"{row['id']}\t{row['name']}")


@client_cli.command("create")
def client_create(
    env: str = typer.Option(..., "--env", help="Environment the client belongs to."),
    roles: str = typer.Option("admin", help="Comma-separated roles: admin, read, users, flows, "
                                            "trigger, cards, analytics."),
    name: str = typer.Option("", help="A name to recognise the client by."),
    as_json: bool = typer.Option(False, "--json", help="Print {client_id, client_secret} as JSON."),
) -> None:
    """Create an API client. The secret is printed once and stored only as a hash.

    Example: hub client create --env production --roles trigger,users --json
    """
    from hub.services import environments

    role_list = [r.strip() for r in roles.split(",") if r.strip()]
    created = _run(lambda: _with_db(
        _settings(), lambda db: environments.create_client(db, env, role_list, name)))
    if as_json:
        typer.echo(json.dumps({"client_id": created["client_id"],
                               "client_secret": created["client_secret"]}))
    else:
        typer.echo(f"client_id:     {created['client_id']}\nclient_secret: "
                   f"{created['client_secret']}\nroles:         {','.join(role_list)}\n"
                   "The secret is shown once; store it now.")


@client_cli.command("list")
def client_list(env: str = typer.Option(..., "--env")) -> None:
    """List an environment's API clients (never their secrets)."""
    from hub.services import environments

    for row in _run(lambda: _with_db(_settings(), lambda db: environments.list_clients(db, env))):
        state = "revoked" if row["revoked_at"] else "active"
        typer.echo(f"{row['client_id']}\t{state}\t{','.join(row['roles'])}\t{row['name']}")


@client_cli.command("revoke")
def client_revoke(client_id: str) -> None:
    """Revoke a client: it can get no new tokens (issued tokens expire within HUB_TOKEN_TTL_SECONDS)."""
    from hub.services import environments

    if not _run(lambda: _with_db(_settings(), lambda db: environments.revoke_client(db, client_id))):
        fail(f"no active client {client_id}")
    typer.echo(f"revoked {client_id}")


# --- plugins and settings -------------------------------------------------------------------


@cli.command()
def plugins(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List loaded plugins with their versions and hooks."""
    from hub.plugins import describe_plugins, make_plugin_manager

    rows = describe_plugins(make_plugin_manager(_settings()))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        kind = "built-in" if row["builtin"] else (row["version"] or "")
        typer.echo(f"{row['name']:<32} {kind:<10} {', '.join(row['hooks'])}")


@cli.command("settings")
def show_settings() -> None:
    """Print the effective settings (secrets hidden)."""
    import msgspec

    from hub.plugins import make_plugin_manager
    from hub.registry import collect, load_plugin_settings

    settings = _settings()
    rows = [(f"HUB_{key.upper()}", key, value) for key, value in msgspec.structs.asdict(settings).items()]
    plugin_settings = load_plugin_settings(collect(make_plugin_manager(settings)))
    for name, struct in sorted(plugin_settings.items()):  # HUB_<PLUGIN>_* of every loaded plugin
        rows += [(f"HUB_{name.upper()}_{key.upper()}", key, value)
                 for key, value in msgspec.structs.asdict(struct).items()]
    for variable, key, value in rows:
        if any(word in key for word in ("secret", "token", "password")) and value:
            value = "[set]"
        elif key.endswith("_url") and isinstance(value, str) and "@" in value:
            value = value.split("://")[0] + "://***@" + value.split("@", 1)[1]
        typer.echo(f"{variable}={value if value is not None else ''}")


# --- running --------------------------------------------------------------------------------


def _export_embedded_redis(settings: Settings) -> Any:
    """Start (or reuse) the embedded Redis and export its URL to child processes."""
    from hub.embedded_redis import ensure_redis_url

    url, server = ensure_redis_url(settings.redis_url, settings.var_dir,
                                   settings.embedded_redis_port)
    os.environ["HUB_REDIS_URL"] = url
    return server


@cli.command()
def serve(host: str = typer.Option(None, help="Bind address (HUB_HOST)."),
          port: int = typer.Option(None, help="Port (HUB_PORT)."),
          workers: int = typer.Option(1, help="HTTP worker processes."),
          ) -> None:
    """Run the HTTP API. Example: hub serve --host 0.0.0.0 --port 8000 --workers 4"""
    import uvicorn

    from hub.logging import configure_logging

    settings = _settings()
    configure_logging(settings)
    server = _export_embedded_redis(settings)
    options = dict(host=host or settings.host, port=port or settings.port, log_config=None,
                   access_log=False, server_header=False, proxy_headers=True,
                   timeout_graceful_shutdown=30, lifespan="on", factory=True,
                   # Socket frames are small JSON; a zlib context pair would cost ~37 KiB per socket.
                   ws_per_message_deflate=False)
    try:
        if workers > 1:
            uvicorn.run("hub.app:create_app", workers=workers, **options)  # type: ignore[arg-type]
        else:
            _uvicorn_server()(uvicorn.Config("hub.app:create_app", **options)).run()  # type: ignore[arg-type]
    finally:
        if server is not None:
            server.stop()


def _uvicorn_server() -> type:
    import contextlib

    import uvicorn

    class QuietExitServer(uvicorn.Server):
        """uvicorn re-raises SIGTERM/SIGINT after a graceful shutdown, which would kill the
        process before ``hub serve`` stops the embedded Redis it started. Shut down, then
        return normally instead."""

        @contextlib.contextmanager
        def capture_signals(self):  # type: ignore[no-untyped-def]
            with super().capture_signals():
                yield
                self._captured_signals.clear()

    return QuietExitServer


def _run_fast(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop (installed with ``uvicorn[standard]``), else on asyncio's loop.

    uvloop's event loop takes a third less CPU per socket operation, which is most of what a
    worker sending pushes and webhooks does.
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] installs it on CPython
        asyncio.run(main)
        return
    uvloop.run(main)


@cli.command()
def worker() -> None:
    """Run a background worker (start as many as you like, on the same Redis and database)."""
    from hub.app import Hub
    from hub.worker import run_worker

    settings = _settings()
    server = _export_embedded_redis(settings)
    try:
        _run_fast(run_worker(Hub(load_settings())))
    finally:
        if server is not None:
            server.stop()


@cli.command()
def dev(host: str = typer.Option(None, help="Bind address (HUB_HOST)."),
        port: int = typer.Option(None, help="Port (HUB_PORT).")) -> None:
    """Run everything locally: embedded Redis, SQLite in ./var, migrations, demo data, API, worker."""
    from hub.dev import run_dev

    run_dev(_settings(), host=host, port=port)


def main() -> None:
    """Entry point of the ``hub`` console script."""
    try:
        from hub.plugins import make_plugin_manager
        from hub.registry import register_cli

        register_cli(make_plugin_manager(load_settings()), cli)
        cli(standalone_mode=False)
    except (CliError, SettingsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # one clear line for the errors a user can fix
        from hub.plugins import PluginLoadError
        from hub.registry import RegistrationError
        from hub.services.environments import SetupError

        if isinstance(exc, SetupError | PluginLoadError | RegistrationError):
            typer.echo(f"error: {exc}", err=True)
            sys.exit(1)
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort | KeyboardInterrupt):
            sys.exit(130)
        raise


"""The salesforce_mc plugin's hookimpls: settings, routes, the profile sync's jobs and the
``hub sfmc`` command."""

from __future__ import annotations

from typing import Any

from hub.hookspecs import hookimpl
from hub_plugins.salesforce_mc import activity, api, config, profile_sync, sync_api, ui
from hub_plugins.salesforce_mc.settings import SfmcSettings

DEFAULT_CLI_BASE_URL = "http://127.0.0.1:8000"


@hookimpl
def hub_register_settings(register: Any) -> None:
    register("sfmc", SfmcSettings)


@hookimpl
def hub_register_routes(register: Any) -> None:
    for handler in (*api.ROUTES, *sync_api.ROUTES, *activity.ROUTES):
        register(handler)
    register(ui.router())  # the staff UI's settings page


@hookimpl
def hub_register_ui(register: Any) -> None:
    register(ui.ENTRY)


@hookimpl
def hub_register_jobs(register: Any) -> None:
    # A run ends itself within the job timeout (HUB_SFMC_SYNC_RUN_SECONDS, capped) and hands over.
    register(profile_sync.sfmc_profile_sync, max_tries=1)
    register(profile_sync.sfmc_profile_sync_sweep, cron={"second": {15}}, max_tries=1)


def _show(hub: Any, row: Any) -> str:
    base = hub.plugin_settings[config.SETTINGS].public_base_url or DEFAULT_CLI_BASE_URL
    shown = config.view(row, base)
    return (f"activityUrl={shown['activityUrl']}\ndecisionUrl={shown['decisionUrl']}\n"
            f"timeoutMs={shown['timeoutMs']}  retryCount={shown['retryCount']}  "
            f"retryDelayMs={shown['retryDelayMs']}  concurrentRequests={shown['concurrentRequests']}  "
            f"userIdFrom={shown['userIdFrom']}  since={shown['updatedAt']}")


@hookimpl
def hub_register_cli(cli: Any) -> None:
    import typer

    from hub.cli import CliError, run_with_hub

    sfmc_cli = typer.Typer(help="Salesforce Marketing Cloud: the Journey Builder custom activity of an "
                                "environment.", no_args_is_help=True)
    cli.add_typer(sfmc_cli, name="sfmc")

    @sfmc_cli.command("set")
    def set_(env: str = typer.Option(..., "--env"),
             jwt_signing_secret: str = typer.Option(
                 None, "--jwt-signing-secret", envvar="HUB_SFMC_JWT_SIGNING_SECRET",
                 help="The installed package's JWT signing secret (or set HUB_SFMC_JWT_SIGNING_SECRET; "
                      "asked for when the integration is new)."),
             timeout_ms: int = typer.Option(None, "--timeout-ms", help="1000-100000 (default 20000)."),
             retry_count: int = typer.Option(None, "--retry-count", help="0-5 (default 0)."),
             retry_delay_ms: int = typer.Option(None, "--retry-delay-ms", help="0-60000 (default 1000)."),
             concurrent_requests: int = typer.Option(None, "--concurrent-requests",
                                                     help="1-50 (default 10)."),
             user_id_from: str = typer.Option(None, "--user-id-from",
                                              help="keyValue (default) or an inArgument name.")) -> None:
        """Create or change the activity's settings; prints the URLs to install in Marketing Cloud.

        Example: hub sfmc set --env demo --jwt-signing-secret "$SECRET" --timeout-ms 20000
        """
        changes = {"jwtSigningSecret": jwt_signing_secret, "timeoutMs": timeout_ms, "retryCount": retry_count,
                   "retryDelayMs": retry_delay_ms, "concurrentRequests": concurrent_requests,
                   "userIdFrom": user_id_from}

        async def go(hub: Any) -> str:
            given = {k: v for k, v in changes.items() if v is not None}
            if "jwtSigningSecret" not in given and await config.get(hub, env) is None:
                given["jwtSigningSecret"] = typer.prompt("JWT signing secret", hide_input=True)
            try:
                return _show(hub, await config.save(hub, env, given))
            except config.ConfigError as exc:
                raise CliError(f"{exc.field}: {exc.reason}") from None

        typer.echo(run_with_hub(env, go))

    @sfmc_cli.command("show")
    def show(env: str = typer.Option(..., "--env")) -> None:
        """Show the settings and URLs (never the secret). Example: hub sfmc show --env demo"""

        async def go(hub: Any) -> str | None:
            row = await config.get(hub, env)
            return None if row is None else _show(hub, row)

        shown = run_with_hub(env, go)
        if shown is None:
            raise CliError(f"environment {env} has no SFMC integration (hub sfmc set --env {env} ...)")
        typer.echo(shown)

    @sfmc_cli.command("remove")
    def remove(env: str = typer.Option(..., "--env")) -> None:
        """Delete the settings: the activity URL answers 404. Example: hub sfmc remove --env demo"""
        if not run_with_hub(env, lambda hub: config.remove(hub, env)):
            raise CliError(f"environment {env} has no SFMC integration")
        typer.echo(f"{env}: SFMC integration removed")

    from hub_plugins.salesforce_mc.sync_cli import register_sync_cli

    register_sync_cli(sfmc_cli)

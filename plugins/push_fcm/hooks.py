"""The push_fcm plugin's hookimpls; the work is done in ``api``, ``config`` and ``sender``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hub.hookspecs import hookimpl
from hub_plugins.push_fcm import api, config, sender, ui
from hub_plugins.push_fcm.settings import PushFcmSettings


@hookimpl
def hub_register_settings(register: Any) -> None:
    register("push_fcm", PushFcmSettings)


@hookimpl
def hub_register_routes(register: Any) -> None:
    for handler in api.ROUTES:
        register(handler)
    register(ui.router())  # the staff UI's settings page


@hookimpl
def hub_register_ui(register: Any) -> None:
    register(ui.ENTRY)


@hookimpl
async def hub_send_push(hub: Any, notification: dict[str, Any], device: dict[str, Any]
                        ) -> dict[str, Any] | None:
    return await sender.send(hub, notification, device)


def _show(shown: dict[str, Any]) -> str:
    return (f"project={shown['projectId']}  client={shown['clientEmail']}  "
            f"key={shown['privateKeyId'] or '-'}  platforms={','.join(shown['platforms'])}  "
            f"since={shown['updatedAt']}")


@hookimpl
def hub_register_cli(cli: Any) -> None:
    import typer

    from hub.cli import CliError, run_with_hub

    fcm_cli = typer.Typer(help="Firebase Cloud Messaging credentials of an environment.",
                          no_args_is_help=True)
    cli.add_typer(fcm_cli, name="push-fcm")

    @fcm_cli.command("set")
    def set_(env: str = typer.Option(..., "--env"),
             service_account: Path = typer.Option(..., "--service-account",
                                                  help="The service account's JSON key file."),
             platforms: str = typer.Option(None, "--platforms",
                                           help="Comma-separated: android,web (default) and ios.")) -> None:
        """Validate and store a service account key (the key is sealed, never shown again).

        Example: hub push-fcm set --env demo --service-account my-project-firebase-adminsdk.json
        """
        try:
            account = json.loads(service_account.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"--service-account: cannot read {service_account}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise CliError(f"--service-account: {service_account} is not JSON: {exc}") from None
        chosen = [p.strip() for p in platforms.split(",") if p.strip()] if platforms is not None else None

        async def go(hub: Any) -> dict[str, Any]:
            try:
                return await config.save(hub, env, account, chosen)
            except config.ConfigError as exc:
                raise CliError(f"--service-account: {exc.field}: {exc.reason}") from None

        typer.echo(_show(run_with_hub(env, go)))

    @fcm_cli.command("show")
    def show(env: str = typer.Option(..., "--env")) -> None:
        """Show the stored configuration (never the key). Example: hub push-fcm show --env demo"""
        shown = run_with_hub(env, lambda hub: config.get_view(hub, env))
        if shown is None:
            raise CliError(f"environment {env} has no FCM configuration (hub push-fcm set --env {env} ...)")
        typer.echo(_show(shown))

    @fcm_cli.command("remove")
    def remove(env: str = typer.Option(..., "--env")) -> None:
        """Delete the configuration: pushes to its platforms stop. Example: hub push-fcm remove --env demo"""
        if not run_with_hub(env, lambda hub: config.remove(hub, env)):
            raise CliError(f"environment {env} has no FCM configuration")
        typer.echo(f"{env}: FCM configuration removed")

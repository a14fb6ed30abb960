"""The push_apns plugin's hookimpls; the work is done in ``api``, ``config`` and ``sender``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hub.hookspecs import hookimpl
from hub_plugins.push_apns import api, config, sender, ui
from hub_plugins.push_apns.settings import PushApnsSettings


@hookimpl
def hub_register_settings(register: Any) -> None:
    register("push_apns", PushApnsSettings)


@hookimpl
def hub_register_routes(register: Any) -> None:
    for handler in api.ROUTES:
        register(handler)
    register(ui.router())  # the staff UI's settings page


@hookimpl
def hub_register_ui(register: Any) -> None:
    register(ui.ENTRY)


# Asked after the other providers: an environment that routes iOS through FCM (push_fcm's
# platforms include ios), or through a third-party plugin, keeps doing so with APNs configured too.
@hookimpl(trylast=True)
async def hub_send_push(hub: Any, notification: dict[str, Any], device: dict[str, Any]
                        ) -> dict[str, Any] | None:
    return await sender.send(hub, notification, device)


def _show(shown: dict[str, Any]) -> str:
    return (f"topic={shown['topic']}  environment={shown['environment']}  key={shown['keyId']}  "
            f"team={shown['teamId']}  since={shown['updatedAt']}")


_FIELD_OPTIONS = {"keyP8": "--key-file", "keyId": "--key-id", "teamId": "--team-id", "topic": "--topic",
                  "environment": "--environment"}


@hookimpl
def hub_register_cli(cli: Any) -> None:
    import typer

    from hub.cli import CliError, run_with_hub

    apns_cli = typer.Typer(help="Apple Push Notification service auth key of an environment.",
                           no_args_is_help=True)
    cli.add_typer(apns_cli, name="push-apns")

    @apns_cli.command("set")
    def set_(env: str = typer.Option(..., "--env"),
             key_file: Path = typer.Option(..., "--key-file", help="The AuthKey_<KEYID>.p8 file."),
             key_id: str = typer.Option(..., "--key-id", help="The key's Key ID (10 characters)."),
             team_id: str = typer.Option(..., "--team-id", help="The Apple Developer Team ID."),
             topic: str = typer.Option(..., "--topic", help="The app's bundle id."),
             environment: str = typer.Option(..., "--environment",
                                             help="sandbox (development builds) or production "
                                                  "(TestFlight, App Store).")) -> None:
        """Validate and store an APNs auth key (the key is sealed, never shown again).

        Example: hub push-apns set --env demo --key-file AuthKey_ABC123DEFG.p8 --key-id ABC123DEFG
        --team-id DEF123GHIJ --topic com.example.bank --environment production
        """
        try:
            key_p8 = key_file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"--key-file: cannot read {key_file}: {exc}") from None

        async def go(hub: Any) -> dict[str, Any]:
            try:
                return await config.save(hub, env, key_p8, key_id, team_id, topic, environment)
            except config.ConfigError as exc:
                raise CliError(f"{_FIELD_OPTIONS.get(exc.field, exc.field)}: {exc.reason}") from None

        typer.echo(_show(run_with_hub(env, go)))

    @apns_cli.command("show")
    def show(env: str = typer.Option(..., "--env")) -> None:
        """Show the stored configuration (never the key). Example: hub push-apns show --env demo"""
        shown = run_with_hub(env, lambda hub: config.get_view(hub, env))
        if shown is None:
            raise CliError(f"environment {env} has no APNs configuration (hub push-apns set --env {env} ...)")
        typer.echo(_show(shown))

    @apns_cli.command("remove")
    def remove(env: str = typer.Option(..., "--env")) -> None:
        """Delete the configuration: pushes to iOS devices stop. Example: hub push-apns remove --env demo"""
        if not run_with_hub(env, lambda hub: config.remove(hub, env)):
            raise CliError(f"environment {env} has no APNs configuration")
        typer.echo(f"{env}: APNs configuration removed")

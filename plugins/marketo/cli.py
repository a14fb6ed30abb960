"""``hub marketo set|show|remove --env E``: the environment's Marketo integration from the shell."""

from __future__ import annotations

from typing import Any


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _service_url(hub: Any, env: str) -> str:
    base = hub.plugin_settings["marketo"].public_base_url or f"http://{hub.settings.host}:{hub.settings.port}"
    return f"{base.rstrip('/')}/marketo/{env}/openapi.json"


def _show(shown: dict[str, Any], url: str) -> str:
    flows = ",".join(shown["flows"]) if shown["flows"] is not None else "all"
    return (
        f"serviceUrl={url}\nuserIdFrom={shown['userIdFrom']}  "
        f"writeBack={','.join(shown['writeBack']) or '-'}  flows={flows}  since={shown['updatedAt']}"
    )


def register_cli(cli: Any) -> None:
    import typer

    from hub.cli import CliError, run_with_hub
    from hub_plugins.marketo import config

    marketo_cli = typer.Typer(help="Marketo self-service flow step of an environment.", no_args_is_help=True)
    cli.add_typer(marketo_cli, name="marketo")

    @marketo_cli.command("set")
    def set_(
        env: str = typer.Option(..., "--env"),
        user_id_from: str = typer.Option(None, "--user-id-from", help="leadId (default) or email."),
        write_back: str = typer.Option(
            None,
            "--write-back",
            help="Comma-separated lead fields to write back "
            f"({', '.join(config.WRITE_BACK_FIELDS)}); '' for none.",
        ),
        flows: str = typer.Option(None, "--flows", help="Comma-separated flowConfigIds offered, or 'all'."),
        api_key: str = typer.Option(None, "--api-key", help="Use this API key instead of a generated one."),
        rotate_api_key: bool = typer.Option(False, "--rotate-api-key", help="Make a new API key."),
    ) -> None:
        """Create or change the integration; options left out keep their value. A key Hub makes is
        printed once.

        Example: hub marketo set --env demo --user-id-from email --write-back hubInvocationId
        """

        async def go(hub: Any) -> tuple[dict[str, Any], str | None, str]:
            current = await config.get_view(hub, env) or {
                "userIdFrom": "leadId",
                "writeBack": [],
                "flows": None,
            }
            chosen_flows = current["flows"] if flows is None else (None if flows == "all" else _split(flows))
            try:
                shown, key, _created = await config.save(
                    hub,
                    env,
                    api_key=api_key,
                    rotate_api_key=rotate_api_key,
                    user_id_from=user_id_from or current["userIdFrom"],
                    write_back=current["writeBack"] if write_back is None else _split(write_back),
                    flows=chosen_flows,
                )
            except config.ConfigError as exc:
                raise CliError(f"{exc.field}: {exc.reason}") from None
            return shown, key, _service_url(hub, env)

        shown, key, url = run_with_hub(env, go)
        typer.echo(_show(shown, url))
        if key is not None:
            typer.echo(f"apiKey={key}   (shown once: enter it in Marketo Admin > Service Providers)")

    @marketo_cli.command("show")
    def show(env: str = typer.Option(..., "--env")) -> None:
        """Show the integration (never the API key). Example: hub marketo show --env demo"""

        async def go(hub: Any) -> tuple[dict[str, Any] | None, str]:
            return await config.get_view(hub, env), _service_url(hub, env)

        shown, url = run_with_hub(env, go)
        if shown is None:
            raise CliError(f"environment {env} has no Marketo integration (hub marketo set --env {env})")
        typer.echo(_show(shown, url))

    @marketo_cli.command("remove")
    def remove(env: str = typer.Option(..., "--env")) -> None:
        """Delete the integration: Marketo's calls are refused. Example: hub marketo remove --env demo"""
        if not run_with_hub(env, lambda hub: config.remove(hub, env)):
            raise CliError(f"environment {env} has no Marketo integration")
        typer.echo(f"{env}: Marketo integration removed")

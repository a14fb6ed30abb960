"""The sdk_streams plugin's hookimpls; the work is done in the modules they delegate to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hub.hookspecs import hookimpl
from hub_plugins.sdk_streams import api, auth, demo, devices, realtime
from hub_plugins.sdk_streams import cards as sdk_cards
from hub_plugins.sdk_streams.settings import SdkStreamsSettings


@hookimpl
def hub_register_settings(register: Any) -> None:
    register("sdk_streams", SdkStreamsSettings)


@hookimpl
def hub_register_routes(register: Any) -> None:
    for handler in (*api.ROUTES, *realtime.ROUTES, *demo.ROUTES):
        register(handler)


@hookimpl
def hub_register_jobs(register: Any) -> None:
    for job in (*api.JOBS, *realtime.JOBS):
        register(job)


@hookimpl
def hub_register_cli(cli: Any) -> None:
    import typer

    from hub.cli import CliError, run_with_hub

    keys_cli = typer.Typer(help="Keys that end-user tokens (JWTs your backend signs) are checked "
                                "against.", no_args_is_help=True)
    cli.add_typer(keys_cli, name="sdk-keys")

    @keys_cli.command("add")
    def add(env: str = typer.Option(..., "--env"),
            pem: str = typer.Option(None, "--pem", help="PEM file of the public key."),
            jwks_url: str = typer.Option(None, "--jwks-url", help="URL of a JWKS instead of --pem."),
            issuer: str = typer.Option(..., "--issuer", help="The iss claim of the tokens."),
            audience: str = typer.Option(..., "--audience", help="The aud claim of the tokens."),
            name: str = typer.Option("", "--name")) -> None:
        """Register a public key (or a JWKS URL) for end-user tokens.

        Example: hub sdk-keys add --env demo --pem public.pem --issuer https://bank.example --audience hub-sdk
        """
        try:
            pem_text = Path(pem).read_text() if pem is not None else None
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"--pem: cannot read {pem}: {exc}") from None

        async def go(hub: Any) -> dict[str, Any]:
            try:
                return await auth.add_key(hub, env, issuer=issuer, audience=audience, pem=pem_text,
                                          jwks_url=jwks_url, name=name)
            except auth.SdkKeyError as exc:
                raise CliError(str(exc)) from None

        created = run_with_hub(env, go)
        typer.echo(f"{created['keyId']}  {created['kind']}  {','.join(created['algorithms'])}  "
                   f"iss={created['issuer']}  aud={created['audience']}")

    @keys_cli.command("list")
    def list_(env: str = typer.Option(..., "--env")) -> None:
        """List the keys. Example: hub sdk-keys list --env demo"""
        for key in run_with_hub(env, lambda hub: auth.list_keys(hub, env)):
            where = key["jwksUrl"] or "PEM"
            typer.echo(f"{key['keyId']}  {key['kind']:<4}  iss={key['issuer']}  "
                       f"aud={key['audience']}  {where}")

    @keys_cli.command("remove")
    def remove(key_id: str, env: str = typer.Option(..., "--env")) -> None:
        """Delete a key; tokens it signed stop working. Example: hub sdk-keys remove KEY_ID --env demo"""
        if not run_with_hub(env, lambda hub: auth.delete_key(hub, env, key_id)):
            raise CliError(f"no SDK key {key_id} in {env}")
        typer.echo(f"{key_id}: removed")


@hookimpl
async def hub_cards_changed(hub: Any, changes: list[dict[str, Any]]) -> None:
    """Every change of the batch bumps its user's feed version and goes to their sockets' event
    log, in order: one script call each, all in one Redis round trip (a fan-out chunk announces
    500 new cards at once)."""
    async with hub.redis.pipeline(transaction=False) as pipe:
        for change in changes:
            await realtime.queue_card_changed(hub, pipe, change["card"], change["previous"],
                                              change["context"])
        await pipe.execute()


@hookimpl
async def hub_customer_changed(hub: Any, customer: dict[str, Any], changes: dict[str, Any]) -> None:
    if changes.get("erased"):
        env, user_id = customer["environmentId"], customer["userId"]
        await devices.delete_user_devices(hub, env, user_id)
        await sdk_cards.bump_feed_version(hub, env, user_id)  # their cards are gone
        await hub.redis.delete(f"sdk_streams:seen:{env}:{user_id}")
        auth.forget_user(hub, env, user_id)


@hookimpl
async def hub_push_devices(hub: Any, environment_id: str, user_ids: list[str], platforms: list[str]
                           ) -> list[dict[str, Any]]:
    return await devices.valid_devices_of(hub, environment_id, user_ids, platforms)


@hookimpl
async def hub_push_device_invalid(hub: Any, environment_id: str, device: dict[str, Any], detail: str) -> None:
    if device.get("platform") in devices.PLATFORMS and device.get("deviceId"):
        await devices.mark_invalid(hub, environment_id, device["deviceId"], detail)


@hookimpl
async def hub_push_device_counts(hub: Any, environment_id: str) -> dict[str, dict[str, int]]:
    return await devices.count_devices(hub, environment_id)

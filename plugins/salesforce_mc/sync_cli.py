"""``hub sfmc sync-set | sync-show | sync-run | sync-remove``: the Salesforce profile sync."""

from __future__ import annotations

from typing import Any

from hub_plugins.salesforce_mc import profile_sync, sync_config
from hub_plugins.salesforce_mc.config import ConfigError


def show(row: Any) -> str:
    """The settings and the latest run, a few lines (never the password or token)."""
    shown = sync_config.view(row)
    status = shown["status"]
    fields = ", ".join(f"{sf}->{hub}" for sf, hub in shown["fields"].items())
    watermark = status["watermark"]
    lines = [
        f"loginUrl={shown['loginUrl']}  username={shown['username']}  "
        f"securityTokenSet={str(shown['securityTokenSet']).lower()}",
        f"object={shown['object']}  userIdField={shown['userIdField']}  "
        f"enabled={str(shown['enabled']).lower()}  intervalMinutes={shown['intervalMinutes']}",
        f"fields: {fields}",
        f"state={status['state']}  lastRunRecords={status['lastRunRecords']}  "
        f"lastRunSkipped={status['lastRunSkipped']}  totalRecords={status['totalRecords']}  "
        f"watermark={watermark['lastModifiedDate'] if watermark else '-'}  "
        f"nextRunAt={status['nextRunAt'] or '-'}",
    ]
    if status["lastSkip"]:
        lines.append(f"lastSkip: {status['lastSkip']}")
    if status["lastError"]:
        error = status["lastError"]
        lines.append(f"lastError: {error['code']}: {error['message']} (at {error['at']})")
    return "\n".join(lines)


def _field_map(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        sf_field, sep, hub_field = pair.partition("=")
        if not sep:
            raise ConfigError("fields", f"{pair!r}: write SalesforceField=customerField")
        mapping[sf_field.strip()] = hub_field.strip()
    return mapping


def _absent(env: str) -> str:
    return f"environment {env} has no Salesforce profile sync (hub sfmc sync-set --env {env} ...)"


def register_sync_cli(sfmc_cli: Any) -> None:
    import typer

    from hub.cli import CliError, run_with_hub

    @sfmc_cli.command("sync-set")
    def sync_set(env: str = typer.Option(..., "--env"),
                 login_url: str = typer.Option(None, "--login-url",
                                               help="https://login.salesforce.com (default), "
                                                    "https://test.salesforce.com or your My Domain URL."),
                 username: str = typer.Option(None, "--username", help="The integration user's username."),
                 password: str = typer.Option(None, "--password", envvar="HUB_SFMC_SALESFORCE_PASSWORD",
                                              help="Its password (or set HUB_SFMC_SALESFORCE_PASSWORD; asked "
                                                   "for when the sync is new)."),
                 security_token: str = typer.Option(None, "--security-token",
                                                    envvar="HUB_SFMC_SALESFORCE_SECURITY_TOKEN",
                                                    help="Its security token (or set "
                                                         "HUB_SFMC_SALESFORCE_SECURITY_TOKEN; empty when the "
                                                         "org trusts Hub's IP addresses)."),
                 sobject: str = typer.Option(None, "--object", help="Contact (default) or Lead."),
                 user_id_field: str = typer.Option(None, "--user-id-field",
                                                   help="The Salesforce field holding the user id "
                                                        "(default Id)."),
                 field: list[str] = typer.Option(None, "--field",
                                                 help="SalesforceField=customerField, once per field "
                                                      "(replaces the mapping)."),
                 enabled: bool = typer.Option(None, "--enable/--disable", help="Run on schedule or not."),
                 interval_minutes: int = typer.Option(None, "--interval-minutes", help="1-1440 (default 15).")
                 ) -> None:
        """Create or change the Salesforce profile sync; prints its settings and state.

        Example: hub sfmc sync-set --env demo --username hub@acme.com --field Email=email
        --field Loyalty_Tier__c=tier --interval-minutes 15
        """

        async def go(hub: Any) -> str:
            try:
                changes = {"loginUrl": login_url, "username": username, "password": password,
                           "securityToken": security_token, "object": sobject, "userIdField": user_id_field,
                           "fields": _field_map(field) if field else None, "enabled": enabled,
                           "intervalMinutes": interval_minutes}
                given = {k: v for k, v in changes.items() if v is not None}
                if "password" not in given and await sync_config.get(hub, env) is None:
                    given["password"] = typer.prompt("Salesforce password", hide_input=True)
                return show(await sync_config.save(hub, env, given))
            except ConfigError as exc:
                raise CliError(f"{exc.field}: {exc.reason}") from None

        typer.echo(run_with_hub(env, go))

    @sfmc_cli.command("sync-show")
    def sync_show(env: str = typer.Option(..., "--env")) -> None:
        """Show the profile sync's settings and latest run. Example: hub sfmc sync-show --env demo"""

        async def go(hub: Any) -> str | None:
            row = await sync_config.get(hub, env)
            return None if row is None else show(row)

        shown = run_with_hub(env, go)
        if shown is None:
            raise CliError(_absent(env))
        typer.echo(shown)

    @sfmc_cli.command("sync-run")
    def sync_run(env: str = typer.Option(..., "--env"),
                 full: bool = typer.Option(False, "--full", help="Start over from the oldest record.")
                 ) -> None:
        """Run the profile sync now, here, and print the outcome (exit status 1 when it fails).

        Example: hub sfmc sync-run --env demo
        """

        async def go(hub: Any) -> tuple[dict[str, Any], str | None]:
            if full:
                async with hub.db.begin() as conn:
                    await sync_config.restart(conn, env)
            outcome = await profile_sync.run(hub, env)
            row = await sync_config.get(hub, env)
            return outcome, None if row is None else show(row)

        outcome, shown = run_with_hub(env, go)
        if outcome["outcome"] == "absent":
            raise CliError(_absent(env))
        if outcome["outcome"] == "busy":
            raise CliError(f"{env}: a profile sync is running already; try again when it ends")
        if outcome["outcome"] == "failed":
            raise CliError(f"{outcome['code']}: {outcome['message']}")
        typer.echo(shown)

    @sfmc_cli.command("sync-remove")
    def sync_remove(env: str = typer.Option(..., "--env")) -> None:
        """Delete the profile sync (customers keep what it wrote). Example: hub sfmc sync-remove --env demo"""
        if not run_with_hub(env, lambda hub: sync_config.remove(hub, env)):
            raise CliError(f"environment {env} has no Salesforce profile sync")
        typer.echo(f"{env}: Salesforce profile sync removed")

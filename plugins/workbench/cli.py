"""``hub staff``: staff members and the groups that grant them permissions."""

from __future__ import annotations

from typing import Any

import typer

from hub_plugins.workbench import staff as staff_service
from hub_plugins.workbench.staff import PERMISSIONS, StaffError


def _split(values: str) -> list[str]:
    return [v.strip() for v in values.split(",") if v.strip()]


def staff_cli() -> typer.Typer:
    from hub.cli import CliError, run_with_hub

    app = typer.Typer(help="Staff members of the Workbench and the Customer Center, and their groups.",
                      no_args_is_help=True)

    def run(action: Any) -> Any:
        async def go(hub: Any) -> Any:
            try:
                return await action(hub)
            except StaffError as exc:
                raise CliError(f"{exc.field}: {exc.reason}") from None

        return run_with_hub(None, go)

    @app.command("group-set")
    def group_set(name: str = typer.Argument(..., help="The group's name, e.g. support."),
                  permissions: str = typer.Option(..., "--permissions",
                                                  help="Comma-separated: " + ", ".join(PERMISSIONS)),
                  env: str = typer.Option("*", "--env", help="Comma-separated environments, or * for all."),
                  description: str = typer.Option("", "--description")) -> None:
        """Create a group or replace what it grants.

        Example: hub staff group-set support --permissions customer_center:edit --env demo
        """
        saved = run(lambda hub: staff_service.save_group(hub, name, _split(permissions), _split(env),
                                                         description))
        typer.echo(f"group {saved['name']}: {', '.join(saved['permissions'])} "
                   f"in {', '.join(saved['environments'])}")

    @app.command("groups")
    def groups() -> None:
        """List the groups. Example: hub staff groups"""
        for g in run(staff_service.list_groups):
            typer.echo(f"{g['name']}\t{','.join(g['permissions'])}\t{','.join(g['environments'])}")

    @app.command("create")
    def create(email: str = typer.Option(..., "--email"),
               groups: str = typer.Option(..., "--groups", help="Comma-separated group names."),
               name: str = typer.Option("", "--name"),
               password: str = typer.Option(None, "--password", envvar="HUB_STAFF_PASSWORD",
                                            help="Or set HUB_STAFF_PASSWORD; asked for when not given."),
               oidc_only: bool = typer.Option(False, "--oidc-only",
                                              help="No password: signs in only through OIDC.")) -> None:
        """Create a staff member.

        Example: hub staff create --email ana@example.com --groups support
        """
        if password is None and not oidc_only:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        created = run(lambda hub: staff_service.create_staff(
            hub, email, name=name, password=None if oidc_only else password, groups=_split(groups)))
        typer.echo(f"staff {created['email']} created in {', '.join(created['groups'])}")

    @app.command("set")
    def set_(email: str = typer.Option(..., "--email"),
             groups: str = typer.Option(None, "--groups", help="Comma-separated; replaces the groups."),
             password: bool = typer.Option(False, "--password", help="Ask for a new password."),
             disable: bool = typer.Option(False, "--disable", help="Disable (ends its sessions)."),
             enable: bool = typer.Option(False, "--enable")) -> None:
        """Change a member's groups, password or whether the account is enabled.

        Example: hub staff set --email ana@example.com --groups support,editors
        """
        new_password = (typer.prompt("New password", hide_input=True, confirmation_prompt=True)
                        if password else None)
        disabled = True if disable else (False if enable else None)
        run(lambda hub: staff_service.set_staff(hub, email, password=new_password,
                                                groups=None if groups is None else _split(groups),
                                                disabled=disabled))
        typer.echo(f"staff {email.strip().lower()} updated")

    @app.command("list")
    def list_() -> None:
        """List staff members. Example: hub staff list"""
        for s in run(staff_service.list_staff):
            state = "disabled" if s["disabled"] else "active"
            typer.echo(f"{s['email']}\t{state}\t{','.join(s['groups'])}")

    return app

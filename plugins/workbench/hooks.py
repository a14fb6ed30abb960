"""The workbench plugin's hookimpls: settings, the staff pages and the ``hub staff`` command."""

from __future__ import annotations

from typing import Any

from hub.hookspecs import hookimpl
from hub_plugins.workbench import (
    oidc,
    pages_auth,
    pages_customer_center,
    pages_search,
    pages_workbench,
    web,
)
from hub_plugins.workbench.settings import WorkbenchSettings

# Page modules add their routes here; each module has a ROUTES tuple.
PAGE_MODULES: tuple[Any, ...] = (pages_auth, oidc, pages_workbench, pages_search, pages_customer_center)


@hookimpl
def hub_register_settings(register: Any) -> None:
    register("workbench", WorkbenchSettings)


@hookimpl
def hub_register_routes(register: Any) -> None:
    register(web.router([handler for module in PAGE_MODULES for handler in module.ROUTES]))


@hookimpl
def hub_register_cli(cli: Any) -> None:
    from hub_plugins.workbench.cli import staff_cli

    cli.add_typer(staff_cli(), name="staff")

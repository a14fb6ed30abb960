"""The marketo plugin's hookimpls: settings, routes, jobs and the ``hub marketo`` command."""

from __future__ import annotations

from typing import Any

from hub.hookspecs import hookimpl
from hub_plugins.marketo import api, batches, ssfs, ui
from hub_plugins.marketo.settings import MarketoSettings


@hookimpl
def hub_register_settings(register: Any) -> None:
    register("marketo", MarketoSettings)


@hookimpl
def hub_register_routes(register: Any) -> None:
    for handler in (*api.ROUTES, *ssfs.ROUTES):
        register(handler)
    register(ui.router())  # the staff UI's settings page


@hookimpl
def hub_register_ui(register: Any) -> None:
    register(ui.ENTRY)


@hookimpl
def hub_register_jobs(register: Any) -> None:
    register(batches.marketo_run_batch)
    register(batches.marketo_sweep, cron={"second": {45}}, max_tries=1)


@hookimpl
def hub_register_cli(cli: Any) -> None:
    from hub_plugins.marketo.cli import register_cli

    register_cli(cli)

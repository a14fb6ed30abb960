"""The list_upload plugin's hookimpls: settings, routes, jobs and the ``hub upload`` command."""

from __future__ import annotations

from typing import Any

from hub.hookspecs import hookimpl
from hub_plugins.list_upload import api, service
from hub_plugins.list_upload.settings import ListUploadSettings


@hookimpl
def hub_register_settings(register: Any) -> None:
    register("list_upload", ListUploadSettings)


@hookimpl
def hub_register_routes(register: Any) -> None:
    for handler in api.ROUTES:
        register(handler)


@hookimpl
def hub_register_jobs(register: Any) -> None:
    register(service.list_upload_run)
    register(service.list_upload_sweep, cron={"minute": set(range(0, 60, 5)), "second": {30}}, max_tries=1)


@hookimpl
def hub_register_cli(cli: Any) -> None:
    from hub_plugins.list_upload.cli import register_cli

    register_cli(cli)

"""A second plugin module with no entry point: loaded only when HUB_LOAD_PLUGINS names its path."""

from __future__ import annotations

from typing import Any

from hub.hookspecs import hookimpl
from hub.registry import UiEntry


@hookimpl
def hub_register_ui(register: Any) -> None:
    register(UiEntry(id="example-extra", title="Example extra", path="/ui/example-extra"))

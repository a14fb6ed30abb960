"""The plugin manager factory: built-ins, entry points, and the selection settings.

There is no global plugin manager: each :class:`hub.app.Hub` (and so each test) builds its own.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable
from importlib import metadata
from typing import Any

import pluggy

from hub import hookspecs
from hub.settings import Settings

ENTRY_POINT_GROUP = "hub.plugins"

# Core features are plugins too, registered through the same manager as third-party ones.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "hub.api.ops",
    "hub.api.auth",
    "hub.api.customers",
    "hub.services.outbox",
    "hub.services.customers",
)


class PluginLoadError(RuntimeError):
    """A plugin named in settings or an entry point could not be imported."""


def _entry_points() -> Iterable[metadata.EntryPoint]:
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def make_plugin_manager(settings: Settings | None = None,
                        extra_plugins: Iterable[Any] = ()) -> pluggy.PluginManager:
    """Build a plugin manager with the built-ins, installed entry points and ``extra_plugins``.

    ``HUB_LOAD_PLUGINS`` loads only the named plugins (module paths or entry-point names, built-in
    or not); ``HUB_DISABLE_PLUGINS`` skips named ones. ``extra_plugins`` (objects or modules) are
    always registered: tests use it to add a plugin in one line.
    """
    settings = settings or Settings()
    pm = pluggy.PluginManager("hub")
    pm.add_hookspecs(hookspecs)
    only = set(settings.load_plugins) if settings.load_plugins is not None else None
    disabled = set(settings.disable_plugins)

    def wanted(name: str) -> bool:
        return (only is None or name in only) and name not in disabled

    for module_name in DEFAULT_PLUGINS:
        if wanted(module_name):
            pm.register(importlib.import_module(module_name), name=module_name)
    seen_entry_points: set[str] = set()
    for ep in _entry_points():
        seen_entry_points.add(ep.name)
        if not wanted(ep.name) or pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken third-party plugin must say which one it is
            raise PluginLoadError(f"plugin entry point {ep.name!r} ({ep.value}) failed: {exc}") from exc
        pm.register(plugin, name=ep.name)
    # Names in HUB_LOAD_PLUGINS that are neither built-ins nor entry points are module paths.
    for name in sorted(only or ()):
        if pm.has_plugin(name) or name in seen_entry_points or name in disabled:
            continue
        try:
            pm.register(importlib.import_module(name), name=name)
        except ImportError as exc:
            raise PluginLoadError(f"HUB_LOAD_PLUGINS names {name!r}, which cannot be imported: {exc}") from exc
    for plugin in extra_plugins:
        pm.register(plugin)
    pm.check_pending()
    return pm


def distribution_version(plugin: Any) -> str | None:
    """The version of the installed distribution that ships ``plugin``, if any."""
    module = inspect.getmodule(plugin) or plugin
    top = getattr(module, "__name__", "").split(".")[0]
    for dist_name in metadata.packages_distributions().get(top, []):
        try:
            return metadata.version(dist_name)
        except metadata.PackageNotFoundError:
            continue
    return None


def describe_plugins(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """What ``GET /-/plugins`` and ``hub plugins`` show: name, version, hooks, built-in or not."""
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            continue
        hooks = sorted(impl.name for impl in pm.get_hookcallers(plugin) or [])
        rows.append({
            "name": name,
            "version": distribution_version(plugin),
            "builtin": name in DEFAULT_PLUGINS,
            "hooks": hooks,
        })
    return rows


async def await_me_maybe(value: Any) -> Any:
    """Await ``value`` if it is awaitable, so sync and async hookimpls can coexist."""
    if inspect.isawaitable(value):
        return await value
    return value


async def call_hook(pm: pluggy.PluginManager, name: str, **kwargs: Any) -> list[Any]:
    """Call an outbound hook and await every awaitable result, in plugin order."""
    results = getattr(pm.hook, name)(**kwargs)
    return [await await_me_maybe(result) for result in results]


async def call_first(pm: pluggy.PluginManager, name: str, **kwargs: Any) -> Any:
    """Call a ``firstresult`` hook whose implementations may be async.

    pluggy's own firstresult stops at the first non-``None`` return value, and a coroutine is
    never ``None``; so Hub walks the implementations in pluggy's order and awaits each in turn.
    """
    for impl in reversed(getattr(pm.hook, name).get_hookimpls()):
        result = await await_me_maybe(impl.function(**{k: kwargs[k] for k in impl.argnames}))
        if result is not None:
            return result
    return None

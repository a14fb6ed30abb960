"""The plugin manager factory: built-ins, entry points, and the selection settings.

There is no global plugin manager: each :class:`hub.app.Hub` (and so each test) builds its own
with :func:`make_plugin_manager`. Outbound hooks are called with :func:`call_hook` (every
implementation) or :func:`call_first` (``firstresult`` hooks); both await async implementations.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import types
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
    "hub.services.statistics",
    "hub.services.customers",
    "hub.api.flows",
    "hub.api.analytics",
    "hub.services.analytics",
    "hub.api.triggers",
    "hub.api.cards",
    "hub.api.push",
    "hub.services.engine",
    "hub.services.cards",
    "hub.services.push",
    "hub.services.triggers",
    "hub_plugins.sdk_streams.hooks",
    "hub_plugins.webhooks.hooks",
    "hub_plugins.list_upload.hooks",
    "hub_plugins.push_fcm.hooks",
    "hub_plugins.push_apns.hooks",
    "hub_plugins.marketo.hooks",
    "hub_plugins.salesforce_mc.hooks",
    "hub_plugins.workbench.hooks",
)


class PluginLoadError(RuntimeError):
    """A plugin could not be loaded: its import failed, or its hookimpls do not match the hookspecs.

    The message names the plugin (entry point, module path or object) and says what to fix; the
    ``hub`` command prints it as one line.
    """


class HubPluginManager(pluggy.PluginManager):
    """A pluggy manager for the ``hub`` hooks that remembers which distribution shipped a plugin."""

    def __init__(self) -> None:
        super().__init__("hub")
        self.add_hookspecs(hookspecs)
        self.distributions: dict[str, metadata.Distribution] = {}


def _entry_points() -> Iterable[metadata.EntryPoint]:
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def _default_name(pm: pluggy.PluginManager, plugin: Any) -> str:
    """A readable, unique name for a plugin passed as an object (``/-/plugins`` shows it)."""
    if isinstance(plugin, types.ModuleType | type | types.FunctionType):
        base = f"{plugin.__module__}.{plugin.__qualname__}" if not isinstance(
            plugin, types.ModuleType) else plugin.__name__
    else:
        base = f"{type(plugin).__module__}.{type(plugin).__qualname__}"
    name, n = base, 1
    while pm.has_plugin(name):
        n += 1
        name = f"{base}#{n}"
    return name


def make_plugin_manager(settings: Settings | None = None,
                        extra_plugins: Iterable[Any] = ()) -> HubPluginManager:
    """Build a plugin manager with the built-ins, installed entry points and ``extra_plugins``.

    ``HUB_LOAD_PLUGINS`` loads only the named plugins (entry-point names, or module paths of
    built-ins, entry points or any importable module); ``HUB_DISABLE_PLUGINS`` skips named ones
    (by entry-point name or module path). ``extra_plugins`` (modules, classes or objects) are
    always registered: tests use it to add a plugin in one line.

    Raises :class:`PluginLoadError` when a plugin cannot be imported, when ``HUB_LOAD_PLUGINS``
    names something that does not exist, or when a hookimpl does not match a hookspec (a
    misspelt hook name, an argument the hook does not have, a hook function not marked with
    ``@hookimpl``).
    """
    settings = settings or Settings()
    pm = HubPluginManager()
    only = set(settings.load_plugins) if settings.load_plugins is not None else None
    disabled = set(settings.disable_plugins)

    def wanted(*names: str) -> bool:
        return (only is None or any(n in only for n in names)) and not any(n in disabled for n in names)

    def register(plugin: Any, name: str) -> None:
        try:
            pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginLoadError(f"plugin {name!r}: {exc}") from exc

    for module_name in DEFAULT_PLUGINS:
        if wanted(module_name):
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                raise PluginLoadError(f"built-in plugin {module_name!r} failed to import: {exc}") from exc
            register(module, module_name)

    entry_point_names: set[str] = set()
    for ep in _entry_points():
        entry_point_names.update((ep.name, ep.module))
        if not wanted(ep.name, ep.module) or pm.has_plugin(ep.name):
            continue
        where = f"entry point {ep.name} = {ep.value}" + (f" of {ep.dist.name} {ep.dist.version}"
                                                          if ep.dist else "")
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken third-party plugin must say which one it is
            raise PluginLoadError(
                f"plugin {ep.name!r} ({where}) failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        if pm.is_registered(plugin):  # e.g. an entry point naming a built-in module
            continue
        register(plugin, ep.name)
        if ep.dist is not None:
            pm.distributions[ep.name] = ep.dist

    # Names in HUB_LOAD_PLUGINS that are neither built-ins nor entry points are module paths.
    for name in sorted(only or ()):
        if pm.has_plugin(name) or name in entry_point_names or name in disabled:
            continue
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            known = ", ".join(sorted(set(DEFAULT_PLUGINS) | entry_point_names)) or "none"
            raise PluginLoadError(
                f"HUB_LOAD_PLUGINS names {name!r}, which is not an installed plugin and cannot be "
                f"imported ({type(exc).__name__}: {exc}); installed plugins: {known}"
            ) from exc
        if not pm.is_registered(module):
            register(module, name)

    for plugin in extra_plugins:
        if not pm.is_registered(plugin):
            register(plugin, _default_name(pm, plugin))
    check_hookimpls(pm)
    return pm


def check_hookimpls(pm: pluggy.PluginManager) -> None:
    """Fail loudly on hookimpls Hub would otherwise silently never call.

    A ``@hookimpl`` whose name is no hookspec (a typo), a function named like a hook but not
    marked with ``@hookimpl``, and a wrapper on a ``firstresult`` hook (which :func:`call_first`
    cannot run) all raise :class:`PluginLoadError`. pluggy's own ``check_pending`` runs last.
    """
    spec_names = sorted(name for name in vars(hookspecs) if pm.parse_hookspec_opts(hookspecs, name))
    for name, caller in sorted(vars(pm.hook).items()):
        if name.startswith("_"):
            continue
        if not caller.has_spec():
            for impl in caller.get_hookimpls():
                if impl.optionalhook:
                    continue
                hint = difflib.get_close_matches(name, spec_names, n=1)
                raise PluginLoadError(
                    f"plugin {impl.plugin_name!r} implements unknown hook {name!r}"
                    + (f": did you mean {hint[0]!r}?" if hint else "")
                )
        elif caller.spec is not None and caller.spec.opts.get("firstresult"):
            for impl in caller.get_hookimpls():
                if impl.wrapper or impl.hookwrapper:
                    raise PluginLoadError(
                        f"plugin {impl.plugin_name!r}: {name} is a firstresult hook; Hub calls it "
                        "with call_first, which does not run hook wrappers"
                    )
    for plugin_name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        implemented = {impl.name for impl in pm.get_hookcallers(plugin) or []}
        for name in spec_names:
            attr = inspect.getattr_static(plugin, name, None)
            if attr is not None and callable(getattr(plugin, name, None)) and name not in implemented:
                raise PluginLoadError(
                    f"plugin {plugin_name!r} defines {name} but it is not marked with @hookimpl "
                    "(from hub.hookspecs import hookimpl), so Hub would never call it"
                )
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginLoadError(str(exc)) from exc


def distribution_version(plugin: Any,
                         packages: dict[str, list[str]] | None = None) -> str | None:
    """The version of the installed distribution that ships ``plugin``, if any."""
    module = inspect.getmodule(plugin) or plugin
    top = getattr(module, "__name__", "").split(".")[0]
    packages = metadata.packages_distributions() if packages is None else packages
    for dist_name in packages.get(top, []):
        try:
            return metadata.version(dist_name)
        except metadata.PackageNotFoundError:
            continue
    return None


def describe_plugins(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """What ``GET /-/plugins`` and ``hub plugins`` show: name, version, hooks, built-in or not.

    The version is that of the distribution whose entry point loaded the plugin, else of the
    distribution that ships the plugin's top-level package (``hub-engage`` for built-ins).
    """
    distributions: dict[str, metadata.Distribution] = getattr(pm, "distributions", {})
    packages = metadata.packages_distributions()
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            continue
        dist = distributions.get(name)
        rows.append({
            "name": name,
            "version": dist.version if dist is not None else distribution_version(plugin, packages),
            "builtin": name in DEFAULT_PLUGINS,
            "hooks": sorted(caller.name for caller in pm.get_hookcallers(plugin) or []),
        })
    return rows


async def await_me_maybe(value: Any) -> Any:
    """Await ``value`` if it is awaitable, so sync and async hookimpls can coexist."""
    if inspect.isawaitable(value):
        return await value
    return value


def _is_firstresult(pm: pluggy.PluginManager, name: str) -> bool:
    caller = getattr(pm.hook, name)
    return bool(caller.spec is not None and caller.spec.opts.get("firstresult"))


async def call_hook(pm: pluggy.PluginManager, name: str, **kwargs: Any) -> list[Any]:
    """Call an outbound hook and await every awaitable result, in plugin order.

    Returns the results that are not ``None`` (as pluggy does for sync implementations, whose
    ``None`` it drops before Hub sees them; an async one's ``None`` is dropped after awaiting).
    Every plugin's coroutine is awaited even when an earlier one raised, so one failing plugin
    does not starve the others; the first exception is then raised (the calling job retries,
    and the hooks' contract is "at least once").
    """
    if _is_firstresult(pm, name):
        raise TypeError(f"{name} is a firstresult hook: call it with call_first()")
    results = getattr(pm.hook, name)(**kwargs)
    values: list[Any] = []
    errors: list[BaseException] = []
    for result in results:
        try:
            value = await await_me_maybe(result)
        except Exception as exc:
            errors.append(exc)
            continue
        if value is not None:
            values.append(value)
    if errors:
        for other in errors[1:]:
            errors[0].add_note(f"another {name} implementation also failed: {other!r}")
        raise errors[0]
    return values


async def call_first(pm: pluggy.PluginManager, name: str, **kwargs: Any) -> Any:
    """Call a ``firstresult`` hook whose implementations may be async.

    pluggy's own firstresult stops at the first non-``None`` return value, and a coroutine is
    never ``None``; so Hub walks the implementations in pluggy's call order (last registered
    first, ``tryfirst`` / ``trylast`` honoured) and awaits each in turn until one returns
    something other than ``None``. Returns ``None`` when none does.
    """
    if not _is_firstresult(pm, name):
        raise TypeError(f"{name} is not a firstresult hook: call it with call_hook()")
    for impl in reversed(getattr(pm.hook, name).get_hookimpls()):
        result = await await_me_maybe(impl.function(**{k: kwargs[k] for k in impl.argnames}))
        if result is not None:
            return result
    return None

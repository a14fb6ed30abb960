"""What plugins registered at start-up: routes, jobs, step types, push platforms, settings, UI
entries.

Built once per process by :func:`collect` and kept on the :class:`hub.app.Hub`; nothing here is
global, so two Hubs with different plugins can live in one test process.
"""

from __future__ import annotations

import inspect
import os
import re
import tomllib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pluggy

from hub.core.flow_steps import PUSH_PLATFORMS as BUILT_IN_PUSH_PLATFORMS
from hub.settings import Settings, SettingsError, load_struct


@dataclass(frozen=True)
class JobRegistration:
    """One background job; see ``hub_register_jobs``."""

    function: Callable[..., Awaitable[Any]]
    name: str
    cron: Mapping[str, Any] | Callable[[Settings], Mapping[str, Any]] | None = None
    max_tries: int | None = None
    timeout: float | None = None
    plugin: str = ""
    inline: bool = False


@dataclass(frozen=True)
class StepType:
    """A flow step type; see ``hub_register_step_types``."""

    name: str
    run: Callable[..., Any]
    schema: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class UiEntry:
    """A page contributed to the staff UI; see ``hub_register_ui``."""

    id: str
    title: str
    path: str
    section: str = "settings"
    permission: str = "workbench:admin"
    plugin: str = ""


PUSH_PLATFORM_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


class RegistrationError(RuntimeError):
    """Two plugins registered the same name, or a registration is malformed."""


@dataclass
class Registry:
    routes: list[tuple[str, Any]] = field(default_factory=list)
    jobs: dict[str, JobRegistration] = field(default_factory=dict)
    step_types: dict[str, StepType] = field(default_factory=dict)
    push_platforms: dict[str, str] = field(default_factory=dict)
    """Push platforms plugins added (``hub_register_push_platforms``), name to plugin."""
    settings_types: dict[str, type[msgspec.Struct]] = field(default_factory=dict)
    ui: dict[str, UiEntry] = field(default_factory=dict)


def _plugin_name(pm: pluggy.PluginManager, impl: Any) -> str:
    return pm.get_name(impl.plugin) or str(impl.plugin)


def _each_impl(pm: pluggy.PluginManager, hook_name: str, make_register: Callable[[str], Any],
               arg: str = "register") -> None:
    """Call ``hook_name`` on each plugin separately so registrations know their plugin.

    Registration runs at start-up, before any event loop may exist, so ``async def``
    implementations are refused (and never left un-awaited).
    """
    caller = getattr(pm.hook, hook_name)
    for impl in reversed(caller.get_hookimpls()):
        name = _plugin_name(pm, impl)
        if inspect.iscoroutinefunction(impl.function) or inspect.isasyncgenfunction(impl.function):
            raise RegistrationError(f"{name}.{hook_name} must not be async: it runs at start-up")
        result = impl.function(**{arg: make_register(name)})
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            raise RegistrationError(f"{name}.{hook_name} must not be async: it runs at start-up")


def register_cli(pm: pluggy.PluginManager, cli: Any) -> None:
    """Call ``hub_register_cli`` on every plugin with the root ``typer.Typer``."""
    _each_impl(pm, "hub_register_cli", lambda _plugin: cli, arg="cli")


def collect(pm: pluggy.PluginManager) -> Registry:
    """Ask every plugin what it registers; a name registered twice is a :class:`RegistrationError`."""
    registry = Registry()
    settings_owner: dict[str, str] = {}

    def routes(plugin: str) -> Callable[[Any], None]:
        def register(handler: Any) -> None:
            registry.routes.append((plugin, handler))

        return register

    def jobs(plugin: str) -> Callable[..., JobRegistration]:
        def register(function: Callable[..., Awaitable[Any]], *, name: str | None = None,
                     cron: Mapping[str, Any] | Callable[[Settings], Mapping[str, Any]] | None = None,
                     max_tries: int | None = None, timeout: float | None = None,
                     inline: bool = False) -> JobRegistration:
            job_name = name or getattr(function, "__name__", "")
            if not inspect.iscoroutinefunction(function):
                raise RegistrationError(f"{plugin}: job {job_name!r} must be an async def function")
            if job_name in registry.jobs:
                raise RegistrationError(
                    f"job {job_name!r} registered by {plugin} and by {registry.jobs[job_name].plugin}"
                )
            job = JobRegistration(function, job_name, cron, max_tries, timeout, plugin, inline)
            registry.jobs[job_name] = job
            return job

        return register

    def step_types(plugin: str) -> Callable[[StepType], None]:
        def register(step: StepType) -> None:
            if not isinstance(step, StepType):
                raise RegistrationError(f"{plugin}: register a hub.registry.StepType, not {step!r}")
            if step.name in registry.step_types:
                raise RegistrationError(f"step type {step.name!r} registered by {plugin} and by "
                                        f"{registry.step_types[step.name].plugin}")
            registry.step_types[step.name] = StepType(
                step.name, step.run, step.schema, step.description, plugin
            )

        return register

    def push_platforms(plugin: str) -> Callable[[str], None]:
        def register(name: str) -> None:
            if not isinstance(name, str) or not PUSH_PLATFORM_NAME.fullmatch(name):
                raise RegistrationError(f"{plugin}: push platform {name!r} must be 1-32 lowercase letters, "
                                        "digits, '_' or '-', starting with a letter")
            if name in BUILT_IN_PUSH_PLATFORMS:
                raise RegistrationError(f"{plugin}: push platform {name!r} is built in")
            if name in registry.push_platforms:
                raise RegistrationError(f"push platform {name!r} registered by {plugin} and by "
                                        f"{registry.push_platforms[name]}")
            registry.push_platforms[name] = plugin

        return register

    def settings(plugin: str) -> Callable[[str, type], None]:
        def register(name: str, struct: type) -> None:
            if not (isinstance(struct, type) and issubclass(struct, msgspec.Struct)):
                raise RegistrationError(f"{plugin}: settings {name!r} must be a msgspec.Struct")
            if not name.isidentifier() or name.lower() != name:
                raise RegistrationError(f"{plugin}: settings name {name!r} must be lower_snake")
            if name in registry.settings_types:
                raise RegistrationError(
                    f"settings {name!r} registered by {plugin} and by {settings_owner[name]}"
                )
            info = msgspec.inspect.type_info(struct)
            assert isinstance(info, msgspec.inspect.StructType)
            for f in info.fields:
                if f.required:
                    raise RegistrationError(f"{plugin}: settings field {name}.{f.name} needs a default")
                if f"{name}_{f.name}" in Settings.__struct_fields__:
                    raise RegistrationError(
                        f"{plugin}: HUB_{name.upper()}_{f.name.upper()} is a core setting; "
                        "choose another settings name"
                    )
            registry.settings_types[name] = struct
            settings_owner[name] = plugin

        return register

    def ui(plugin: str) -> Callable[[UiEntry], None]:
        def register(entry: UiEntry) -> None:
            if not isinstance(entry, UiEntry):
                raise RegistrationError(f"{plugin}: register a hub.registry.UiEntry, not {entry!r}")
            if entry.id in registry.ui:
                raise RegistrationError(f"UI entry {entry.id!r} registered by {plugin} and by "
                                        f"{registry.ui[entry.id].plugin}")
            registry.ui[entry.id] = UiEntry(
                entry.id, entry.title, entry.path, entry.section, entry.permission, plugin
            )

        return register

    _each_impl(pm, "hub_register_routes", routes)
    _each_impl(pm, "hub_register_jobs", jobs)
    _each_impl(pm, "hub_register_step_types", step_types)
    _each_impl(pm, "hub_register_push_platforms", push_platforms)
    _each_impl(pm, "hub_register_settings", settings)
    _each_impl(pm, "hub_register_ui", ui)
    return registry


def _config_file_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``[hub]`` table of ``HUB_CONFIG`` (or ``./hub.toml``), as :func:`load_settings` reads it."""
    path = environ.get("HUB_CONFIG") or ("hub.toml" if Path("hub.toml").exists() else "")
    if not path:
        return {}
    try:
        values = tomllib.loads(Path(path).read_text()).get("hub", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot read HUB_CONFIG file {path}: {exc}") from exc
    return values if isinstance(values, dict) else {}


def load_plugin_settings(registry: Registry, environ: Mapping[str, str] | None = None,
                         file_values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read each registered plugin settings Struct from ``HUB_<NAME>_*`` over ``[hub.<name>]``.

    ``environ`` defaults to ``os.environ`` and ``file_values`` to the ``[hub]`` table of the
    configuration file, so plugin settings come from the same places as the core settings.
    """
    environ = os.environ if environ is None else environ
    file_values = _config_file_values(environ) if file_values is None else file_values
    return {
        name: load_struct(struct, f"HUB_{name.upper()}_", environ, file_values.get(name))
        for name, struct in registry.settings_types.items()
    }

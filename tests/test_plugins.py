"""The plugin host: entry points, selection, registration, outbound hooks, /-/plugins, the CLI.

The example plugin in ``tests/example_plugin`` is installed the way pip installs it: its package
and a ``*.dist-info`` directory with ``entry_points.txt`` in a site directory on ``sys.path``, so
``importlib.metadata`` finds it. Nothing in Hub's core knows about it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path
from typing import Any

import msgspec
import pluggy
import pytest
import typer
from typer.testing import CliRunner

from hub.hookspecs import hookimpl
from hub.plugins import (
    DEFAULT_PLUGINS,
    HubPluginManager,
    PluginLoadError,
    call_first,
    call_hook,
    describe_plugins,
    make_plugin_manager,
)
from hub.registry import RegistrationError, StepType, UiEntry, collect, load_plugin_settings, register_cli
from hub.settings import Settings, load_settings

EXAMPLE_PROJECT = Path(__file__).parent / "example_plugin"
EXAMPLE_HOOKS = {
    "hub_register_routes", "hub_register_jobs", "hub_register_step_types", "hub_register_settings",
    "hub_register_ui", "hub_register_cli", "hub_card_changed", "hub_analytics_event",
    "hub_customer_changed", "hub_send_push",
}


def write_dist_info(site: Path, name: str, version: str, entry_points: dict[str, str],
                    top_level: list[str]) -> Path:
    """Write the ``*.dist-info`` directory pip writes when it installs a distribution."""
    dist_info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = [f"{ep} = {value}" for ep, value in entry_points.items()]
    (dist_info / "entry_points.txt").write_text("[hub.plugins]\n" + "\n".join(lines) + "\n")
    (dist_info / "top_level.txt").write_text("\n".join(top_level) + "\n")
    (dist_info / "INSTALLER").write_text("pip\n")
    (dist_info / "RECORD").write_text("")
    return dist_info


@pytest.fixture(scope="session")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site directory holding the example plugin as ``pip install tests/example_plugin`` leaves it."""
    project = tomllib.loads((EXAMPLE_PROJECT / "pyproject.toml").read_text())["project"]
    site = tmp_path_factory.mktemp("site")
    shutil.copytree(EXAMPLE_PROJECT / "hub_example", site / "hub_example",
                    ignore=shutil.ignore_patterns("__pycache__"))
    write_dist_info(site, project["name"], project["version"],
                    project["entry-points"]["hub.plugins"], ["hub_example"])
    return site


@pytest.fixture(autouse=True)
def example_installed(example_site: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Every test here runs with the example plugin installed and no HUB_EXAMPLE_* variables."""
    monkeypatch.syspath_prepend(str(example_site))
    for key in list(os.environ):
        if key.startswith("HUB_EXAMPLE_"):
            monkeypatch.delenv(key)
    from hub_example import hooks

    hooks.RECEIVED.clear()
    return hooks


@pytest.fixture
def example_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example plugin's settings, as an operator would set them (before the Hub is built)."""
    monkeypatch.setenv("HUB_EXAMPLE_GREETING", "hola")
    monkeypatch.setenv("HUB_EXAMPLE_REPEAT", "2")
    monkeypatch.setenv("HUB_EXAMPLE_CHANNELS", "sms, email")


def only(*names: str, disable: tuple[str, ...] = ()) -> Settings:
    return Settings(load_plugins=names, disable_plugins=disable)


def names(pm: pluggy.PluginManager) -> set[str]:
    return {name for name, plugin in pm.list_name_plugin() if plugin is not None}


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a ``hub`` subprocess: no HUB_* variable leaks in from this one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "PYTHON"))}
    env.update(extra)
    return env


# --- an installed plugin extends Hub without touching the core -------------------------------


async def test_entry_point_plugin_adds_a_route_that_reads_its_settings(example_env, hub, hub_client,
                                                                       hub_env):
    assert hub.plugin_settings["example"] == msgspec.convert(
        {"greeting": "hola", "repeat": 2, "channels": ["sms", "email"]},
        type(hub.plugin_settings["example"]))
    response = await hub_client.get(f"/v1/{hub_env.id}/example/hello", headers=hub_env.headers())
    assert response.status_code == 200, response.text
    assert response.json() == {"message": "hola hola, acme", "count": 0, "channels": ["sms", "email"]}


async def test_plugin_route_is_guarded_by_the_permission_it_names(hub_client, hub_env):
    assert (await hub_client.get(f"/v1/{hub_env.id}/example/hello")).status_code == 401
    users_only = hub_env.headers(roles=["users"])
    response = await hub_client.get(f"/v1/{hub_env.id}/example/hello", headers=users_only)
    assert response.status_code == 403


async def test_plugin_settings_default_when_no_variable_is_set(hub):
    settings = hub.plugin_settings["example"]
    assert (settings.greeting, settings.repeat, settings.channels) == ("hello", 1, ())


async def test_plugin_job_enqueued_through_the_outbox_runs_in_the_worker(hub_client, hub_env, run_jobs):
    headers = hub_env.headers()
    first = await hub_client.post(f"/v1/{hub_env.id}/example/count?key=a", headers=headers)
    again = await hub_client.post(f"/v1/{hub_env.id}/example/count?key=a", headers=headers)
    assert first.status_code == again.status_code == 202
    assert await run_jobs() >= 1
    hello = await hub_client.get(f"/v1/{hub_env.id}/example/hello", headers=headers)
    assert hello.json()["count"] == 1  # the same job id twice ran once


async def test_plugin_job_enqueued_directly_runs_in_the_worker(hub, hub_env, run_jobs):
    job = await hub.redis.enqueue_job("example_count", hub_env.id, _job_id="example:direct:1")
    assert job is not None
    await run_jobs()
    assert await job.result(timeout=5) == 1
    assert int(await hub.redis.get(f"example:{hub_env.id}:count")) == 1


async def test_step_types_and_ui_entries_land_in_the_registry(hub):
    step = hub.registry.step_types["example_wait"]
    assert step.plugin == "example"
    assert step.schema["properties"]["seconds"]["type"] == "integer"
    assert await step.run({}, {"seconds": 3}, None) == {"outcome": "next", "waited": 3}
    entry = hub.registry.ui["example"]
    assert (entry.plugin, entry.title, entry.section, entry.permission) == (
        "example", "Example", "workbench", "workbench:view")
    assert hub.registry.jobs["example_count"].plugin == "example"
    assert hub.registry.jobs["example_count"].max_tries == 3
    assert {handler.handler_name for plugin, handler in hub.registry.routes
            if plugin == "example"} == {"hello", "count"}
    assert hub.registry.settings_types["example"].__name__ == "ExampleSettings"


async def test_hub_customer_changed_reaches_an_async_plugin_after_commit(hub, hub_env, run_jobs,
                                                                         example_installed):
    from hub.services import customers

    await customers.upsert_customers(hub, hub_env.id, [{"userId": "ada", "tags": ["vip"]}])
    assert example_installed.RECEIVED == []  # announced by a worker, not in the request
    await run_jobs()
    calls = [args for hook, args in example_installed.RECEIVED if hook == "hub_customer_changed"]
    assert len(calls) == 1
    assert calls[0]["customer"]["userId"] == "ada"
    assert calls[0]["customer"]["environmentId"] == hub_env.id
    assert calls[0]["changes"]["created"] is True


# --- HUB_LOAD_PLUGINS and HUB_DISABLE_PLUGINS --------------------------------------------------


def test_all_built_ins_and_installed_entry_points_load_by_default():
    assert names(make_plugin_manager(Settings())) == set(DEFAULT_PLUGINS) | {"example"}


def test_load_plugins_loads_only_the_named_entry_points_and_modules():
    settings = load_settings(environ={"HUB_LOAD_PLUGINS": "example, hub.api.ops"})
    assert settings.load_plugins == ("example", "hub.api.ops")
    assert names(make_plugin_manager(settings)) == {"example", "hub.api.ops"}


def test_load_plugins_accepts_the_module_path_of_an_entry_point_or_of_any_module():
    pm = make_plugin_manager(only("hub_example.hooks", "hub_example.extra"))
    assert names(pm) == {"example", "hub_example.extra"}
    assert set(collect(pm).ui) == {"example", "example-extra"}


def test_load_plugins_naming_nothing_installed_is_a_clear_error():
    with pytest.raises(PluginLoadError,
                       match=r"HUB_LOAD_PLUGINS names 'exampel'.*installed plugins:.*example"):
        make_plugin_manager(only("exampel"))


class Extra:
    """A plugin with no hooks."""


def test_empty_load_plugins_loads_nothing_but_extra_plugins():
    pm = make_plugin_manager(only(), [Extra(), Extra()])
    assert names(pm) == {"tests.test_plugins.Extra", "tests.test_plugins.Extra#2"}


def test_disable_plugins_skips_entry_points_and_built_ins_by_name_or_module_path():
    settings = load_settings(environ={"HUB_DISABLE_PLUGINS": "example,hub.api.customers"})
    assert names(make_plugin_manager(settings)) == set(DEFAULT_PLUGINS) - {"hub.api.customers"}
    by_module = make_plugin_manager(Settings(disable_plugins=("hub_example.hooks",)))
    assert "example" not in names(by_module)
    both = make_plugin_manager(only("example", "hub.api.ops", disable=("example",)))
    assert names(both) == {"hub.api.ops"}


async def test_hub_without_the_plugin_has_no_plugin_route(hub_settings):
    import httpx

    from hub.app import Hub, create_app

    settings = msgspec.structs.replace(hub_settings, disable_plugins=("example",))
    hub = Hub(settings)
    await hub.start()
    try:
        assert "example" not in hub.plugin_settings and "example_count" not in hub.registry.jobs
        transport = httpx.ASGITransport(app=create_app(hub=hub))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await client.get("/v1/acme/example/hello")).status_code == 404
    finally:
        await hub.close()


# --- plugins that are wrong fail loudly, naming themselves -------------------------------------


def test_a_broken_entry_point_is_a_plugin_load_error_naming_it(tmp_path, monkeypatch):
    write_dist_info(tmp_path, "hub-broken-plugin", "1.2.3", {"broken": "hub_example.broken"},
                    ["hub_example"])
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginLoadError) as caught:
        make_plugin_manager(Settings())
    message = str(caught.value)
    assert "'broken'" in message and "hub_example.broken" in message and "hub-broken-plugin 1.2.3" in message
    assert "RuntimeError: hub_example.broken needs EXAMPLE_LICENSE_KEY" in message
    # the operator's way out: disable it
    assert "broken" not in names(make_plugin_manager(Settings(disable_plugins=("broken",))))


def test_an_entry_point_naming_a_missing_module_is_a_plugin_load_error(tmp_path, monkeypatch):
    write_dist_info(tmp_path, "hub-missing", "0.1", {"missing": "hub_missing_module.hooks"}, [])
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginLoadError, match=r"'missing'.*ModuleNotFoundError.*hub_missing_module"):
        make_plugin_manager(Settings())


class Misspelt:
    @hookimpl
    def hub_register_route(self, register):  # missing "s"
        pass


def test_check_pending_fails_on_a_misspelt_hookimpl():
    pm = HubPluginManager()
    pm.register(Misspelt())
    with pytest.raises(pluggy.PluginValidationError, match="hub_register_route"):
        pm.check_pending()
    with pytest.raises(PluginLoadError, match=r"unknown hook 'hub_register_route'.*did you mean "
                                              r"'hub_register_routes'"):
        make_plugin_manager(only(), [Misspelt()])


def test_a_hookimpl_with_an_argument_the_hook_does_not_have_fails():
    class WrongArgument:
        @hookimpl
        def hub_register_jobs(self, registry):
            pass

    with pytest.raises(PluginLoadError, match="registry"):
        make_plugin_manager(only(), [WrongArgument()])


def test_a_hook_function_not_marked_with_hookimpl_fails():
    class Unmarked:
        def hub_register_routes(self, register):
            pass

    with pytest.raises(PluginLoadError, match="hub_register_routes but it is not marked with @hookimpl"):
        make_plugin_manager(only(), [Unmarked()])


def test_a_wrapper_on_the_firstresult_push_hook_is_refused():
    class Timing:
        @hookimpl(wrapper=True)
        def hub_send_push(self, notification, device):
            return (yield)

    with pytest.raises(PluginLoadError, match="hub_send_push is a firstresult hook"):
        make_plugin_manager(only(), [Timing()])


# --- registrations -----------------------------------------------------------------------------


async def _job(ctx):
    return None


class Settings1(msgspec.Struct):
    level: int = 1


def _registering(hook: str, value: Any) -> Any:
    class Plugin:
        pass

    def impl(register):
        if hook == "hub_register_settings":
            register(*value)
        elif hook == "hub_register_jobs":
            register(value, name="dup")
        else:
            register(value)

    setattr(Plugin, hook, staticmethod(hookimpl(impl)))
    return Plugin


@pytest.mark.parametrize("hook, value, what", [
    ("hub_register_jobs", _job, "job 'dup'"),
    ("hub_register_step_types", StepType("dup", run=_job), "step type 'dup'"),
    ("hub_register_settings", ("dup", Settings1), "settings 'dup'"),
    ("hub_register_ui", UiEntry("dup", "Dup", "/ui/dup"), "UI entry 'dup'"),
])
def test_a_name_registered_by_two_plugins_is_a_registration_error(hook, value, what):
    first, second = _registering(hook, value), _registering(hook, value)
    pm = make_plugin_manager(only(), [first(), second()])
    with pytest.raises(RegistrationError, match=f"{what} registered by .*Plugin.* and by .*Plugin"):
        collect(pm)


def test_a_name_taken_by_an_installed_plugin_is_a_registration_error():
    class Copycat:
        @hookimpl
        def hub_register_step_types(self, register):
            register(StepType("example_wait", run=_job))

    with pytest.raises(RegistrationError, match="'example_wait' registered by example and by .*Copycat"):
        collect(make_plugin_manager(only("example"), [Copycat()]))


@pytest.mark.parametrize("hook", ["hub_register_routes", "hub_register_jobs", "hub_register_step_types",
                                  "hub_register_settings", "hub_register_ui"])
def test_async_registration_hooks_are_rejected(hook):
    class AsyncPlugin:
        pass

    async def impl(register):
        pass

    setattr(AsyncPlugin, hook, staticmethod(hookimpl(impl)))
    pm = make_plugin_manager(only(), [AsyncPlugin()])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no "coroutine was never awaited" either
        with pytest.raises(RegistrationError, match=f"AsyncPlugin.{hook} must not be async"):
            collect(pm)


def test_an_async_cli_hook_is_rejected():
    class AsyncCli:
        @hookimpl
        async def hub_register_cli(self, cli):
            pass

    with pytest.raises(RegistrationError, match="hub_register_cli must not be async"):
        register_cli(make_plugin_manager(only(), [AsyncCli()]), typer.Typer())


def test_a_sync_job_function_is_a_registration_error():
    class SyncJob:
        @hookimpl
        def hub_register_jobs(self, register):
            register(lambda ctx: None, name="sync")

    with pytest.raises(RegistrationError, match="job 'sync' must be an async def function"):
        collect(make_plugin_manager(only(), [SyncJob()]))


class NoDefault(msgspec.Struct):
    api_key: str


class ShadowsCore(msgspec.Struct):
    level: str = "DEBUG"


@pytest.mark.parametrize("name, struct, message", [
    ("nodefault", NoDefault, "nodefault.api_key needs a default"),
    ("log", ShadowsCore, "HUB_LOG_LEVEL is a core setting"),
    ("Bad-Name", Settings1, "must be lower_snake"),
    ("plain", dict, "must be a msgspec.Struct"),
])
def test_malformed_settings_registrations_are_errors(name, struct, message):
    class Plugin:
        @hookimpl
        def hub_register_settings(self, register):
            register(name, struct)

    with pytest.raises(RegistrationError, match=message):
        collect(make_plugin_manager(only(), [Plugin()]))


def test_plugin_settings_come_from_hub_toml_overridden_by_the_environment(tmp_path):
    config = tmp_path / "hub.toml"
    config.write_text('[hub.example]\ngreeting = "bonjour"\nrepeat = 3\n')
    registry = collect(make_plugin_manager(only("example")))
    from_file = load_plugin_settings(registry, {"HUB_CONFIG": str(config)})["example"]
    assert (from_file.greeting, from_file.repeat) == ("bonjour", 3)
    both = load_plugin_settings(registry, {"HUB_CONFIG": str(config), "HUB_EXAMPLE_REPEAT": "5"})
    assert (both["example"].greeting, both["example"].repeat) == ("bonjour", 5)


# --- outbound hooks: sync and async implementations --------------------------------------------


class SyncRecorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @hookimpl
    def hub_card_changed(self, card, previous, context):
        self.calls.append(("hub_card_changed", context["eventId"]))
        return "sync card"

    @hookimpl
    def hub_analytics_event(self, event):
        self.calls.append(("hub_analytics_event", event["id"]))
        return "sync event"

    @hookimpl
    def hub_customer_changed(self, customer, changes):
        self.calls.append(("hub_customer_changed", customer["userId"]))


class AsyncRecorder(SyncRecorder):
    @hookimpl
    async def hub_card_changed(self, card, previous, context):
        self.calls.append(("hub_card_changed", context["eventId"]))
        return "async card"

    @hookimpl
    async def hub_analytics_event(self, event):
        self.calls.append(("hub_analytics_event", event["id"]))
        return "async event"


CARD = {"cardInstanceId": "c1", "status": "active"}
CONTEXT = {"environmentId": "acme", "eventId": "e1", "reason": "created"}


async def test_call_hook_awaits_async_and_sync_implementations(example_installed):
    sync, async_ = SyncRecorder(), AsyncRecorder()
    pm = make_plugin_manager(only("example"), [sync, async_])
    results = await call_hook(pm, "hub_card_changed", hub=None, card=CARD, previous=None, context=CONTEXT)
    assert results == ["async card", "sync card", "example saw the card"]  # last registered first
    results = await call_hook(pm, "hub_analytics_event", hub=None, event={"id": "ev1"})
    assert results == ["async event", "sync event", "example saw the event"]
    assert sync.calls == async_.calls == [("hub_card_changed", "e1"), ("hub_analytics_event", "ev1")]
    assert [hook for hook, _ in example_installed.RECEIVED] == ["hub_card_changed", "hub_analytics_event"]
    assert await call_hook(pm, "hub_customer_changed", hub=None, customer={"userId": "u"}, changes={}) == []
    assert ("hub_customer_changed", "u") in sync.calls


async def test_a_failing_async_plugin_does_not_stop_the_others_and_its_error_is_raised():
    class Failing:
        @hookimpl
        async def hub_analytics_event(self, event):
            raise ConnectionError("webhook down")

    after, before = AsyncRecorder(), SyncRecorder()
    pm = make_plugin_manager(only(), [before, Failing(), after])
    with pytest.raises(ConnectionError, match="webhook down"):
        await call_hook(pm, "hub_analytics_event", hub=None, event={"id": "ev2"})
    assert after.calls == before.calls == [("hub_analytics_event", "ev2")]


async def test_call_hook_and_call_first_refuse_the_wrong_kind_of_hook():
    pm = make_plugin_manager(only())
    with pytest.raises(TypeError, match="call_first"):
        await call_hook(pm, "hub_send_push", hub=None, notification={}, device={})
    with pytest.raises(TypeError, match="call_hook"):
        await call_first(pm, "hub_analytics_event", hub=None, event={})


class AndroidPush:
    """A sync push plugin."""

    def __init__(self, name: str = "android") -> None:
        self.name = name
        self.asked = 0

    @hookimpl
    def hub_send_push(self, notification, device):
        self.asked += 1
        if device["platform"] != "android":
            return None
        return {"status": "sent", "detail": self.name, "retryAfter": None}


class IosPush:
    """An async push plugin."""

    def __init__(self) -> None:
        self.asked = 0

    @hookimpl
    async def hub_send_push(self, notification, device):
        self.asked += 1
        if device["platform"] != "ios":
            return None
        return {"status": "invalid_device", "detail": "ios", "retryAfter": None}


NOTIFICATION = {"title": "Hi", "body": "There", "data": {}}


async def test_call_first_returns_the_first_non_none_result_skipping_other_platforms(example_installed):
    android, ios = AndroidPush(), IosPush()
    # pluggy asks the last registered first: ios (async), then android (sync), then example (async)
    pm = make_plugin_manager(only("example"), [android, ios])
    sent = await call_first(pm, "hub_send_push", hub=None, notification=NOTIFICATION,
                            device={"platform": "example", "token": "t1"})
    assert sent == {"status": "sent", "detail": "example delivered to t1", "retryAfter": None}
    assert (ios.asked, android.asked) == (1, 1)  # both said None: not theirs
    assert await call_first(pm, "hub_send_push", hub=None, notification=NOTIFICATION,
                            device={"platform": "android", "token": "t2"}) == {
        "status": "sent", "detail": "android", "retryAfter": None}
    assert (await call_first(pm, "hub_send_push", hub=None, notification=NOTIFICATION,
                             device={"platform": "ios", "token": "t3"}))["detail"] == "ios"
    assert (ios.asked, android.asked) == (3, 2)  # android was not asked once ios answered
    assert await call_first(pm, "hub_send_push", hub=None, notification=NOTIFICATION,
                            device={"platform": "web", "token": "t4"}) is None
    assert [hook for hook, _ in example_installed.RECEIVED] == ["hub_send_push"]


async def test_call_first_honours_tryfirst_between_two_plugins_for_one_platform():
    class Preferred:
        @hookimpl(tryfirst=True)
        async def hub_send_push(self, notification, device):
            if device["platform"] == "android":
                return {"status": "sent", "detail": "preferred", "retryAfter": None}
            return None

    other = AndroidPush("other")
    pm = make_plugin_manager(only(), [Preferred(), other])  # other registered last, asked last
    result = await call_first(pm, "hub_send_push", hub=None, notification=NOTIFICATION,
                              device={"platform": "android", "token": "t"})
    assert result["detail"] == "preferred"
    assert other.asked == 0


# --- what is loaded: /-/plugins, `hub plugins`, plugin commands ----------------------------------


async def test_get_plugins_lists_built_ins_and_the_installed_plugin_with_its_version(hub_client, hub_env):
    response = await hub_client.get("/-/plugins", headers=hub_env.headers(roles=["read"]))
    assert response.status_code == 200, response.text
    rows = {row["name"]: row for row in response.json()}
    for name in DEFAULT_PLUGINS:
        assert rows[name]["builtin"] is True
    assert "hub_register_routes" in rows["hub.api.ops"]["hooks"]
    assert rows["example"] == {"name": "example", "version": "0.3.0", "builtin": False,
                               "hooks": sorted(EXAMPLE_HOOKS)}
    assert (await hub_client.get("/-/plugins")).status_code == 401


def test_describe_plugins_gives_built_ins_hubs_version():
    import hub

    rows = {row["name"]: row for row in describe_plugins(make_plugin_manager(Settings()))}
    assert rows["hub.services.outbox"]["version"] == hub.__version__
    assert rows["hub.services.outbox"]["hooks"] == ["hub_register_jobs"]


def test_hub_plugins_json_lists_built_ins_and_the_installed_plugin(monkeypatch):
    from hub.cli import cli

    monkeypatch.delenv("HUB_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("HUB_DISABLE_PLUGINS", raising=False)
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert {name for name, row in rows.items() if row["builtin"]} == set(DEFAULT_PLUGINS)
    assert rows["example"]["version"] == "0.3.0" and set(rows["example"]["hooks"]) == EXAMPLE_HOOKS
    human = CliRunner().invoke(cli, ["plugins"])
    line = next(line for line in human.output.splitlines() if line.startswith("example "))
    assert "0.3.0" in line and "hub_send_push" in line


def test_hub_register_cli_adds_a_command():
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """A stand-in for the root `hub` command."""

    register_cli(make_plugin_manager(only("example")), app)
    result = CliRunner().invoke(app, ["example-hello", "Ada"])
    assert result.exit_code == 0, result.output
    assert result.output == "hello, Ada, from the example plugin\n"


def _hub(args: list[str], site: Path | str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env=clean_env(PYTHONPATH=str(site), **env))


@pytest.mark.slow
def test_the_hub_command_runs_a_plugin_command_and_lists_the_plugin(example_site, tmp_path):
    hello = _hub(["example-hello", "Grace"], example_site, tmp_path)
    assert hello.returncode == 0, hello.stderr
    assert hello.stdout == "hello, Grace, from the example plugin\n"
    listed = _hub(["plugins", "--json"], example_site, tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["example"]["version"] == "0.3.0"
    assert {name for name, row in rows.items() if row["builtin"]} == set(DEFAULT_PLUGINS)


@pytest.mark.slow
def test_the_hub_command_reports_a_broken_plugin_in_one_line(example_site, tmp_path):
    write_dist_info(tmp_path / "site", "hub-broken-plugin", "1.2.3", {"broken": "hub_example.broken"},
                    ["hub_example"])
    site = f"{tmp_path / 'site'}{os.pathsep}{example_site}"
    result = _hub(["plugins"], site, tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: plugin 'broken'")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    disabled = _hub(["plugins", "--json"], site, tmp_path, HUB_DISABLE_PLUGINS="broken")
    assert disabled.returncode == 0, disabled.stderr
    assert "broken" not in {row["name"] for row in json.loads(disabled.stdout)}

import re
from pathlib import Path

import msgspec
import pytest

from hub.settings import Settings, SettingsError, load_settings, load_struct, settings_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults_run_on_sqlite_and_embedded_redis():
    settings = load_settings(environ={})
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.redis_url == ""
    assert settings.is_sqlite


def test_environment_variables_are_converted_to_the_field_types():
    settings = load_settings(environ={
        "HUB_PORT": "9000", "HUB_OUTBOX_RELAY_SECONDS": "2.5",
        "HUB_DISABLE_PLUGINS": "a, b,,c", "HUB_LOAD_PLUGINS": "x",
    })
    assert settings.port == 9000
    assert settings.outbox_relay_seconds == 2.5
    assert settings.disable_plugins == ("a", "b", "c")
    assert settings.load_plugins == ("x",)


def test_a_bad_value_names_the_variable():
    with pytest.raises(SettingsError, match="HUB_"):
        load_settings(environ={"HUB_PORT": "eighty"})


def test_toml_file_is_read_and_the_environment_wins(tmp_path):
    config = tmp_path / "hub.toml"
    config.write_text('[hub]\nport = 7000\nlog_level = "DEBUG"\n')
    settings = load_settings(environ={"HUB_CONFIG": str(config), "HUB_PORT": "7100"})
    assert settings.port == 7100
    assert settings.log_level == "DEBUG"


def test_unreadable_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(environ={"HUB_CONFIG": str(tmp_path / "missing.toml")})


def test_plugin_settings_struct_reads_its_own_prefix():
    class Example(msgspec.Struct):
        endpoint: str = "https://example.invalid"
        retries: int = 3
        enabled: bool = False

    value = load_struct(Example, "HUB_EXAMPLE_", {"HUB_EXAMPLE_RETRIES": "5",
                                                   "HUB_EXAMPLE_ENABLED": "true"})
    assert value == Example(retries=5, enabled=True)


def test_readme_documents_every_setting():
    text = README.read_text()
    rows = re.findall(r"^\| `(HUB_[A-Z_]+)` \| ([^|]*) \|", text, re.M)
    documented = {name: default.strip().strip("`") for name, default in rows}
    for name, default, description in settings_table():
        assert name in documented, f"{name} missing from the README configuration table"
        assert documented[name] == default, f"README default of {name} is out of date"
        assert description, f"{name} has no description in hub/settings.py"
    assert len(settings_table()) == len(Settings.__struct_fields__)

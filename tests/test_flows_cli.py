"""`hub flows apply | list | export`, run as a user would: `python -m hub` in a subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FRAUD_ALERT = REPO / "examples" / "flows" / "fraud_alert.json"
HELLO = {
    "name": "Hello",
    "cardTemplates": [{"id": "hi", "name": "Hi", "elements": [
        {"type": "headline", "text": "Hi {{customer.fields.name}}"}]}],
    "steps": [{"id": "send", "type": "card", "template": "hi"}],
}


def hub_cli(*args: str, settings=None, check=True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    if settings is not None:
        env.update(HUB_DATABASE_URL=settings.database_url, HUB_REDIS_URL=settings.redis_url,
                   HUB_SECRET_KEY=settings.secret_key, HUB_VAR_DIR=settings.var_dir)
    result = subprocess.run([sys.executable, "-m", "hub", *args], capture_output=True, text=True,
                            env=env, cwd=REPO, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"hub {' '.join(args)} failed: {result.stderr}")
    return result


@pytest.fixture
def bank(hub_settings):
    hub_cli("env", "create", "bank", settings=hub_settings)
    return hub_settings


def write(tmp_path: Path, document: dict, name: str = "flow.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


def test_apply_twice_publishes_a_new_version_of_the_same_flow(bank, tmp_path):
    path = write(tmp_path, {"id": "hello", **HELLO})
    first = hub_cli("flows", "apply", path, "--env", "bank", settings=bank)
    assert first.stdout == "hello\n"
    second = hub_cli("flows", "apply", path, "--env", "bank", settings=bank)
    assert second.stdout == "hello\n"
    exported = json.loads(hub_cli("flows", "export", "hello", "--env", "bank", settings=bank).stdout)
    assert exported["flowConfigId"] == "hello" and exported["formatVersion"] == 1
    assert exported["definition"]["steps"][0]["template"] == "hi"
    listing = hub_cli("flows", "list", "--env", "bank", settings=bank).stdout.splitlines()
    assert listing == ["hello\tpublished\t2\t-\tHello"]
    rows = [json.loads(line) for line in hub_cli("flows", "list", "--env", "bank", "--json",
                                                 settings=bank).stdout.splitlines()]
    assert rows[0]["publishedVersion"] == 2 and rows[0]["draftVersion"] is None
    first_version = hub_cli("flows", "export", "hello", "--env", "bank", "--version", "1",
                            settings=bank).stdout
    assert json.loads(first_version)["definition"] == exported["definition"]


def test_apply_with_an_id_option_an_export_or_no_id(bank, tmp_path):
    example = hub_cli("flows", "apply", str(FRAUD_ALERT), "--env", "bank", "--id", "fraud-alert",
                      settings=bank)
    assert example.stdout == "fraud-alert\n"
    exported = hub_cli("flows", "export", "fraud-alert", "--env", "bank", settings=bank).stdout
    again = hub_cli("flows", "apply", write(tmp_path, json.loads(exported)), "--env", "bank",
                    settings=bank)
    assert again.stdout == "fraud-alert\n"
    draft_only = hub_cli("flows", "apply", str(FRAUD_ALERT), "--env", "bank", "--id", "fraud-alert",
                         "--no-publish", settings=bank)
    assert draft_only.stdout == "fraud-alert\n"
    listing = hub_cli("flows", "list", "--env", "bank", settings=bank).stdout
    assert listing.startswith("fraud-alert\tpublished\t2\t3\t")
    generated = hub_cli("flows", "apply", write(tmp_path, HELLO), "--env", "bank", settings=bank)
    flow_id = generated.stdout.strip()
    assert flow_id.startswith("fl_") and f'"id": "{flow_id}"' in generated.stderr
    drafts = hub_cli("flows", "list", "--env", "bank", "--state", "published", settings=bank).stdout
    assert flow_id in drafts


def test_mistakes_are_one_line_errors(bank, tmp_path):
    broken = write(tmp_path, {"id": "broken", "name": "", "steps": [{"id": "a", "type": "teleport"}]})
    cases = [
        ("flows", "apply", broken, "--env", "bank"),
        ("flows", "apply", str(tmp_path / "missing.json"), "--env", "bank"),
        ("flows", "apply", write(tmp_path, {"id": "x", **HELLO}, "other-env.json"), "--env", "nowhere"),
        ("flows", "apply", write(tmp_path, {"id": "Bad Id", **HELLO}, "bad-id.json"), "--env", "bank"),
        ("flows", "export", "nope", "--env", "bank"),
        ("flows", "list", "--env", "bank", "--state", "live"),
    ]
    (tmp_path / "garbage.json").write_text("{not json")
    cases.append(("flows", "apply", str(tmp_path / "garbage.json"), "--env", "bank"))
    errors = []
    for args in cases:
        result = hub_cli(*args, settings=bank, check=False)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert result.stderr.startswith("error: "), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
        errors.append(result.stderr)
    assert "definition.name" in errors[0] and "definition.steps[0].type" in errors[0]
    assert "nowhere" in errors[2] and "Bad Id" in errors[3]


def test_archived_flows_cannot_be_applied(bank, tmp_path):
    import asyncio

    from hub.app import Hub
    from hub.services import flows

    path = write(tmp_path, {"id": "hello", **HELLO})
    hub_cli("flows", "apply", path, "--env", "bank", settings=bank)

    async def archive():
        hub = Hub(bank)
        try:
            await flows.set_archived(hub, "bank", "hello", True)
        finally:
            await hub.close()

    asyncio.run(archive())
    result = hub_cli("flows", "apply", path, "--env", "bank", settings=bank, check=False)
    assert result.returncode == 1 and "archived" in result.stderr


def test_help_has_an_example_for_every_flows_command():
    for command in ("apply", "list", "export"):
        assert "Example" in hub_cli("flows", command, "--help").stdout, command

"""``hub staff ...`` in a real subprocess, then signing in as the member it created."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub_plugins.workbench import staff as staff_service
from tests.plugins.workbench.conftest import PASSWORD, staff_login

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
async def test_groups_and_members_made_on_the_command_line_sign_in_with_their_permissions(
        hub, hub_settings, hub_env, ui_client):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATABASE_URL=hub_settings.database_url, HUB_REDIS_URL=hub_settings.redis_url,
               HUB_SECRET_KEY=hub_settings.secret_key, HUB_VAR_DIR=hub_settings.var_dir,
               HUB_LOG_LEVEL="WARNING")

    def hub_cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hub", "staff", *args], capture_output=True, text=True,
                              env={**env, **extra}, cwd=REPO, timeout=120)

    made = hub_cli("group-set", "support", "--permissions", "customer_center:edit", "--env", "acme")
    assert made.returncode == 0, made.stderr
    assert made.stdout == "group support: customer_center:edit in acme\n"
    bad = hub_cli("group-set", "x", "--permissions", "workbench:everything")
    assert bad.returncode == 1 and "unknown permission 'workbench:everything'" in bad.stderr
    assert "Traceback" not in bad.stderr
    created = hub_cli("create", "--email", "Sam@Example.com", "--groups", "support",
                      HUB_STAFF_PASSWORD=PASSWORD)
    assert created.returncode == 0, created.stderr
    assert created.stdout == "staff sam@example.com created in support\n"
    assert PASSWORD not in created.stdout + created.stderr
    short = hub_cli("create", "--email", "x@example.com", "--groups", "support", HUB_STAFF_PASSWORD="short")
    assert short.returncode == 1 and "password: a password is at least 12 characters" in short.stderr
    unknown = hub_cli("create", "--email", "y@example.com", "--groups", "nope", HUB_STAFF_PASSWORD=PASSWORD)
    assert unknown.returncode == 1 and "no group named 'nope'" in unknown.stderr
    assert hub_cli("list").stdout == "sam@example.com\tactive\tsupport\n"
    assert hub_cli("groups").stdout == "support\tcustomer_center:edit\tacme\n"

    client = ui_client()
    assert (await staff_login(client, "sam@example.com")).status_code == 303
    member = await staff_service.staff_by_email(hub, "sam@example.com")
    assert member is not None and member.can("customer_center:view", "acme")
    assert not member.can("workbench:view", "acme")

    assert hub_cli("set", "--email", "sam@example.com", "--disable").returncode == 0
    assert hub_cli("list").stdout == "sam@example.com\tdisabled\tsupport\n"
    assert (await client.get("/ui/acme/customers")).status_code == 303  # the session ended
    assert "Example" in hub_cli("create", "--help").stdout

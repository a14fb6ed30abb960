"""``hub sfmc set|show|remove --env E`` in a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugins.salesforce_mc.conftest import SECRET

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_the_cli_sets_shows_and_removes_the_integration(hub_settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATABASE_URL=hub_settings.database_url, HUB_REDIS_URL=hub_settings.redis_url,
               HUB_SECRET_KEY=hub_settings.secret_key, HUB_VAR_DIR=hub_settings.var_dir,
               HUB_LOG_LEVEL="WARNING", HUB_SFMC_PUBLIC_BASE_URL="https://hub.example.com")

    def hub_cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hub", *args], capture_output=True, text=True,
                              env={**env, **extra}, cwd=REPO, timeout=120)

    assert hub_cli("env", "create", "bank").returncode == 0
    saved = hub_cli("sfmc", "set", "--env", "bank", "--timeout-ms", "30000",
                    HUB_SFMC_JWT_SIGNING_SECRET=SECRET)
    assert saved.returncode == 0, saved.stderr
    assert "activityUrl=https://hub.example.com/sfmc/" in saved.stdout and "timeoutMs=30000" in saved.stdout
    shown = hub_cli("sfmc", "show", "--env", "bank")
    assert shown.stdout == saved.stdout
    assert SECRET not in saved.stdout + saved.stderr + shown.stdout + shown.stderr
    refused = hub_cli("sfmc", "set", "--env", "bank", "--retry-count", "9")
    assert refused.returncode == 1 and refused.stderr.startswith("error: retryCount: must be")
    assert "Traceback" not in refused.stderr
    assert hub_cli("sfmc", "remove", "--env", "bank").stdout == "bank: SFMC integration removed\n"
    gone = hub_cli("sfmc", "show", "--env", "bank")
    assert gone.returncode == 1 and "no SFMC integration" in gone.stderr
    assert "Example" in hub_cli("sfmc", "set", "--help").stdout

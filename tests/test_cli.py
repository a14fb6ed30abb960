import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]


def hub_cli(*args: str, settings=None, cwd=None, check=True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    if settings is not None:
        env.update(HUB_DATABASE_URL=settings.database_url, HUB_REDIS_URL=settings.redis_url,
                   HUB_SECRET_KEY=settings.secret_key, HUB_VAR_DIR=settings.var_dir)
    result = subprocess.run([sys.executable, "-m", "hub", *args], capture_output=True, text=True,
                            env=env, cwd=cwd or REPO, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"hub {' '.join(args)} failed: {result.stderr}")
    return result


def test_env_and_client_commands_create_working_credentials(hub_settings):
    hub_cli("migrate", settings=hub_settings)
    assert "created environment bank" in hub_cli("env", "create", "bank",
                                                 settings=hub_settings).stdout
    created = json.loads(hub_cli("client", "create", "--env", "bank", "--roles", "users,trigger",
                                 "--json", settings=hub_settings).stdout)
    assert set(created) == {"client_id", "client_secret"}
    listing = hub_cli("client", "list", "--env", "bank", settings=hub_settings).stdout
    assert created["client_id"] in listing and "users,trigger" in listing
    assert created["client_secret"] not in listing
    assert "bank" in hub_cli("env", "list", settings=hub_settings).stdout
    hub_cli("client", "revoke", created["client_id"], settings=hub_settings)
    assert "revoked" in hub_cli("client", "list", "--env", "bank", settings=hub_settings).stdout


def test_mistakes_are_one_line_errors_not_tracebacks(hub_settings):
    hub_cli("env", "create", "bank", settings=hub_settings)
    for args in (("env", "create", "bank"), ("env", "create", "Bad Name!"),
                 ("client", "create", "--env", "bank", "--roles", "superuser"),
                 ("client", "create", "--env", "nowhere"),
                 ("client", "revoke", "hubc_nope")):
        result = hub_cli(*args, settings=hub_settings, check=False)
        assert result.returncode == 1, args
        assert result.stderr.startswith("error: "), result.stderr
        assert "Traceback" not in result.stderr


def test_migrate_reports_the_revision(hub_settings):
    assert "database at revision" in hub_cli("migrate", settings=hub_settings).stdout


def test_help_has_an_example_for_every_command():
    for args in (("client", "create"), ("env", "create"), ("serve",), ("migrate",)):
        out = hub_cli(*args, "--help").stdout
        assert "Example" in out, args


def test_settings_command_hides_secrets(hub_settings):
    out = hub_cli("settings", settings=hub_settings).stdout
    assert "HUB_SECRET_KEY=[set]" in out
    assert hub_settings.secret_key not in out
    # Plugin settings too, read from HUB_<PLUGIN>_*.
    assert "HUB_SDK_STREAMS_POLL_SECONDS=15" in out
    assert "HUB_WEBHOOKS_OUTBOUND_BATCH_SIZE=100" in out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_hub_dev_runs_the_platform_with_a_seeded_demo_environment(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    dev = subprocess.Popen([sys.executable, "-m", "hub", "dev", "--port", str(port)], cwd=tmp_path,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = dev.stdout.readline()
            output.append(line)
            if "curl -s -H" in line or dev.poll() is not None:
                break
        text = "".join(output)
        assert "Hub is running" in text, text
        creds = json.loads((tmp_path / "var" / "dev-credentials.json").read_text())
        assert creds["client_id"] in text and creds["client_secret"] in text
        base = f"http://127.0.0.1:{port}"
        token = httpx.post(f"{base}/v1/demo/oauth/token", data={
            "grant_type": "client_credentials", **creds}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        user = httpx.get(f"{base}/v1/demo/users/demo-user", headers=headers)
        assert user.status_code == 200 and user.json()["fields"]["tier"] == "gold"
        assert (tmp_path / "var" / "hub.db").exists()
        assert httpx.get(f"{base}/readyz").json()["checks"] == {"database": "ok", "redis": "ok"}
        # The SDK demo page is on, and signs in as the demo's test user with the seeded key.
        assert f"{base}/sdk/demo" in text
        assert httpx.get(f"{base}/sdk/demo").status_code == 200
        user_token = httpx.post(f"{base}/sdk/demo/token", json={"userId": "demo-user"}).json()["token"]
        feed = httpx.get(f"{base}/v1/demo/sdk/streams/default/cards",
                         headers={"Authorization": f"Bearer {user_token}"})
        assert feed.status_code == 200, feed.text
        assert httpx.post(f"{base}/sdk/demo/token", json={"userId": "customer-3"}).status_code == 403
        # The staff UI signs in with the printed administrator's password.
        assert creds["staff_email"] in text and creds["staff_password"] in text
        with httpx.Client(base_url=base) as staff:
            form = staff.get("/ui/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
            signed = staff.post("/ui/login", data={"email": creds["staff_email"], "csrf_token": csrf,
                                                   "password": creds["staff_password"]})
            assert signed.status_code == 303, signed.text
            assert staff.get("/ui/demo/flows").status_code == 200
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(60)
        except subprocess.TimeoutExpired:
            dev.kill()
            raise
    # Ctrl-C stops the API, the worker and the embedded Redis.
    time.sleep(0.5)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    assert not (tmp_path / "var" / "redis" / "redis.sock").exists() or not _redis_alive(tmp_path)


def _redis_alive(tmp_path: Path) -> bool:
    from hub.embedded_redis import _alive

    return _alive(tmp_path / "var" / "redis" / "redis.sock")

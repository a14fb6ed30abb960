import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import msgspec
import pytest

from hub.app import Hub, create_app
from hub.embedded_redis import EmbeddedRedis


async def test_healthz_is_public_and_ok(hub_client):
    response = await hub_client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_readyz_checks_database_and_redis(hub_client):
    response = await hub_client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_readyz_is_503_naming_redis_when_redis_is_down(hub_settings, tmp_path):
    server = EmbeddedRedis(tmp_path / "r", persist=False)
    url = server.start()
    hub = Hub(msgspec.structs.replace(hub_settings, redis_url=url))
    await hub.start()
    try:
        server.stop()
        transport = httpx.ASGITransport(app=create_app(hub=hub))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["database"] == "ok"
        assert response.json()["checks"]["redis"].startswith("error")
    finally:
        await hub.close()


async def test_metrics_count_requests_by_route_template(hub_client, hub_env):
    await hub_client.get(f"/v1/{hub_env.id}/users/nobody", headers=hub_env.headers())
    text = (await hub_client.get("/metrics")).text
    assert 'route="/v1/{env:str}/users/{user_id:str}",status="404"' in text
    assert "hub_outbox_pending" in text and "hub_queue_depth" in text


async def test_metrics_token_protects_metrics_when_set(hub_settings):
    hub = Hub(msgspec.structs.replace(hub_settings, metrics_token="s3cret"))
    await hub.start()
    try:
        transport = httpx.ASGITransport(app=create_app(hub=hub))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/metrics")).status_code == 401
            ok = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
            assert ok.status_code == 200
    finally:
        await hub.close()


async def test_request_id_is_echoed_or_generated(hub_client):
    given = await hub_client.get("/healthz", headers={"X-Request-Id": "req-123"})
    assert given.headers["x-request-id"] == "req-123"
    generated = await hub_client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert len(generated.headers["x-request-id"]) == 32


async def test_plugins_endpoint_needs_a_token(hub_client, hub_env):
    assert (await hub_client.get("/-/plugins")).status_code == 401
    response = await hub_client.get("/-/plugins", headers=hub_env.headers(roles=["read"]))
    assert response.status_code == 200
    names = {p["name"] for p in response.json()}
    assert "hub.api.customers" in names


def test_log_processor_redacts_secrets():
    from hub.logging import _redact

    event = _redact(None, "info", {"event": "x", "client_secret": "abc", "api_key": "k",
                                   "authorization": "Bearer t", "user": "u"})
    assert event["client_secret"] == event["api_key"] == event["authorization"] == "[redacted]"
    assert event["user"] == "u"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_hub_serve_logs_json_with_request_ids_and_shuts_down_gracefully(hub_settings, tmp_path):
    port = _free_port()
    env = {**os.environ, "HUB_DATABASE_URL": hub_settings.database_url,
           "HUB_REDIS_URL": hub_settings.redis_url, "HUB_SECRET_KEY": "k" * 32,
           "HUB_LOG_FORMAT": "json", "HUB_LOG_LEVEL": "INFO", "HUB_VAR_DIR": str(tmp_path)}
    server = subprocess.Popen([sys.executable, "-m", "hub", "serve", "--port", str(port)],
                              env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        response = httpx.get(f"http://127.0.0.1:{port}/v1/acme/users",
                             headers={"X-Request-Id": "trace-42"})
        assert response.status_code == 401
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=40)
    # uvicorn finishes in-flight work, runs the shutdown hooks, then re-raises the signal.
    assert server.returncode in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete" in stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    request_lines = [line for line in lines if line.get("request_id") == "trace-42"]
    assert request_lines and request_lines[0]["status"] == 401
    assert all("timestamp" in line and "level" in line for line in lines)
    assert any("shutdown" in line.get("event", "").lower() for line in lines)

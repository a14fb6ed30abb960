"""``hub dev``: the whole platform on one machine, on embedded defaults.

Starts the embedded Redis, applies migrations to SQLite under ``./var``, seeds a demo
environment (API client, custom fields, customers), then runs ``hub serve`` and ``hub worker``
as child processes and prints where everything is. Ctrl-C stops the lot.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from hub.settings import Settings

DEMO_ENV = "demo"

DEMO_FIELDS = [("tier", "text"), ("balance", "number"), ("birthday", "date"),
               ("marketingOptIn", "boolean")]

DEMO_USERS: list[dict[str, Any]] = [
    {"userId": "demo-user", "fields": {"name": "Dana Demo", "email": "dana@example.com",
                                       "tier": "gold", "balance": 1520.5},
     "tags": ["demo", "gold"], "isTestUser": True,
     "preferences": {"timezone": "Europe/London", "notificationsEnabled": True}},
    {"userId": "test-user-2", "fields": {"name": "Theo Test", "tier": "silver"},
     "tags": ["demo"], "isTestUser": True},
    {"userId": "customer-3", "fields": {"name": "Casey Customer", "tier": "bronze"},
     "tags": ["demo"]},
]


DEMO_FLOW_ID = "fraud-alert"
DEMO_DIR = Path(__file__).resolve().parent / "demo"
DEMO_FLOW_FILE = DEMO_DIR / "fraud_alert.json"
# The second demo flow is enabled for the Customer Center: support staff send it from there.
DEMO_FLOWS = {DEMO_FLOW_ID: DEMO_FLOW_FILE, "caller-verification": DEMO_DIR / "caller_verification.json"}
DEMO_STAFF = "admin@hub.local"


async def _seed_flow(hub: Any) -> None:
    """Publish the example flows once (later runs leave the demo's edits alone)."""
    from hub.services import flows

    for flow_id, path in DEMO_FLOWS.items():
        try:
            await flows.get_flow(hub, DEMO_ENV, flow_id)
        except flows.FlowNotFound:
            await flows.apply_flow(hub, DEMO_ENV, json.loads(path.read_text()), flow_id)


async def _seed_staff(hub: Any, known: dict[str, Any]) -> dict[str, Any]:
    """A staff administrator for the Workbench and the Customer Center, once; a password kept
    in ``var/dev-credentials.json`` like the API client's secret."""
    import secrets

    from hub_plugins.workbench import staff

    await staff.save_group(hub, "admins", ["workbench:admin", "customer_center:edit"], ["*"],
                           "Everything, in every environment")
    await staff.save_group(hub, "support", ["customer_center:edit"], [DEMO_ENV],
                           "Customer Center: find customers and send them flows")
    if known.get("staff_email") == DEMO_STAFF and await staff.staff_by_email(hub, DEMO_STAFF):
        return known
    password = secrets.token_urlsafe(12)
    if await staff.staff_by_email(hub, DEMO_STAFF) is None:
        await staff.create_staff(hub, DEMO_STAFF, name="Hub admin", password=password, groups=["admins"])
    else:
        await staff.set_staff(hub, DEMO_STAFF, password=password, groups=["admins"], disabled=False)
    return {**known, "staff_email": DEMO_STAFF, "staff_password": password}


async def _seed_sdk_demo_key(hub: Any, settings: Settings) -> str:
    """Make the SDK demo page's signing key once and register its public half for the demo
    environment (as a customer's backend would); returns the private key's file."""
    from joserfc.jwk import ECKey

    from hub_plugins.sdk_streams import auth, demo

    key_file = Path(settings.var_dir) / "sdk-demo-key.pem"
    if not key_file.exists():
        key_file.touch(mode=0o600)
        key_file.write_bytes(ECKey.generate_key("P-256").as_pem(private=True))
    public_pem = ECKey.import_key(key_file.read_bytes()).as_pem(private=False).decode()
    registered = await auth.list_keys(hub, DEMO_ENV)
    if not any(k["issuer"] == demo.DEMO_ISSUER and (k["publicKeyPem"] or "").strip() == public_pem.strip()
               for k in registered):
        for stale in (k for k in registered if k["issuer"] == demo.DEMO_ISSUER):
            await auth.delete_key(hub, DEMO_ENV, stale["keyId"])
        await auth.add_key(hub, DEMO_ENV, issuer=demo.DEMO_ISSUER, audience=demo.DEMO_AUDIENCE,
                           pem=public_pem, name="hub dev: SDK demo page")
    return str(key_file.resolve())


async def seed(settings: Settings) -> dict[str, Any]:
    """Create the demo environment once; return its API client credentials."""
    from hub.app import Hub
    from hub.services import customers, environments

    credentials_file = Path(settings.var_dir) / "dev-credentials.json"
    hub = Hub(settings)
    try:
        await hub.start()
        if await environments.get_environment(hub.db, DEMO_ENV) is None:
            await environments.create_environment(hub.db, DEMO_ENV, "Demo")
        clients = await environments.list_clients(hub.db, DEMO_ENV)
        known = json.loads(credentials_file.read_text()) if credentials_file.exists() else {}
        if not any(c["client_id"] == known.get("client_id") and not c["revoked_at"]
                   for c in clients):
            created = await environments.create_client(hub.db, DEMO_ENV, ["admin"], "demo admin")
            known = {"client_id": created["client_id"],
                     "client_secret": created["client_secret"]}
            credentials_file.touch(mode=0o600)
            credentials_file.write_text(json.dumps(known))
        for name, type_ in DEMO_FIELDS:
            await customers.define_field(hub, DEMO_ENV, name, type_)
        await customers.upsert_customers(hub, DEMO_ENV, DEMO_USERS)
        await _seed_flow(hub)
        if "sdk_streams" in hub.plugin_settings:
            known = {**known, "sdk_demo_key_file": await _seed_sdk_demo_key(hub, settings)}
        if "workbench" in hub.plugin_settings:
            known = await _seed_staff(hub, known)
        credentials_file.touch(mode=0o600)
        credentials_file.write_text(json.dumps(known))
        return known
    finally:
        await hub.close()


def _banner(settings: Settings, base: str, credentials: dict[str, Any]) -> str:
    cid, secret = credentials["client_id"], credentials["client_secret"]
    sdk_demo = (f"  SDK demo       {base}/sdk/demo (demo-user's cards, live)\n"
                f"  JS SDK         {base}/sdk/hub-sdk.js\n" if credentials.get("sdk_demo_key_file") else "")
    staff = (f"  Staff UI       {base}/ui/ (Workbench and Customer Center)\n"
             f"  staff sign-in  {credentials['staff_email']} / {credentials['staff_password']}\n"
             if credentials.get("staff_email") else "")
    return f"""
  Hub is running (Ctrl-C stops everything)

  API            {base}
  API docs       {base}/schema/swagger
  Health         {base}/readyz
  Metrics        {base}/metrics
  Database       {settings.database_url}
  Redis          {os.environ.get("HUB_REDIS_URL")}

  Environment    {DEMO_ENV}
  client_id      {cid}
  client_secret  {secret}

  Flows          {DEMO_FLOW_ID} (published; the fraud alert from examples/flows)
                 caller-verification (published; enabled for the Customer Center)
{staff}{sdk_demo}
  Try it:
    TOKEN=$(curl -s -d grant_type=client_credentials -d client_id={cid} \\
      -d client_secret={secret} {base}/v1/{DEMO_ENV}/oauth/token \\
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    curl -s -H "Authorization: Bearer $TOKEN" {base}/v1/{DEMO_ENV}/users/demo-user
    curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
      {base}/v1/{DEMO_ENV}/action-flow/{DEMO_FLOW_ID}/start -d '{{"flows": [{{
      "target": {{"usersById": ["demo-user"]}}, "payload": {{"variables": {{"amount": "$249.99",
      "merchant": "ACME Online", "cardLast4": "4242", "paymentId": "pay-1"}}}}}}]}}'
    .venv/bin/hub cards list --env {DEMO_ENV} --user demo-user
    .venv/bin/hub cards submit CARD_ID --env {DEMO_ENV} --values '{{"recognised": "yes"}}'
"""


def _wait_ready(base: str, children: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            raise SystemExit("hub dev: a child process exited during start-up (see the log above)")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"hub dev: the API did not become ready at {base}")


def run_dev(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    from hub.db import Database
    from hub.db import migrate as migrations
    from hub.embedded_redis import ensure_redis_url

    Path(settings.var_dir).mkdir(parents=True, exist_ok=True)
    url, redis_server = ensure_redis_url(settings.redis_url, settings.var_dir,
                                         settings.embedded_redis_port)
    os.environ["HUB_REDIS_URL"] = url
    children: list[subprocess.Popen[bytes]] = []
    try:
        async def prepare() -> dict[str, Any]:
            db = Database(settings)
            try:
                await migrations.upgrade(db.engine)
            finally:
                await db.dispose()
            return await seed(settings)

        credentials = asyncio.run(prepare())
        host, port = host or settings.host, port or settings.port
        base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        env = {**os.environ, "HUB_LOG_FORMAT": os.environ.get("HUB_LOG_FORMAT", "console")}
        if credentials.get("sdk_demo_key_file"):
            env["HUB_SDK_STREAMS_DEMO_KEY_FILE"] = credentials["sdk_demo_key_file"]
            env.setdefault("HUB_SDK_STREAMS_DEMO_ENV", DEMO_ENV)
        children.append(subprocess.Popen(
            [sys.executable, "-m", "hub", "serve", "--host", host, "--port", str(port)], env=env))
        children.append(subprocess.Popen([sys.executable, "-m", "hub", "worker"], env=env))
        _wait_ready(base, children)
        print(_banner(settings, base, credentials), flush=True)
        stop = False

        def handle(signum: int, _frame: Any) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
        while not stop and all(child.poll() is None for child in children):
            time.sleep(0.2)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(35)
            except subprocess.TimeoutExpired:
                child.kill()
        if redis_server is not None:
            redis_server.stop()

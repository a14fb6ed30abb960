"""``hub dev`` with the FCM and APNs fakes, configured: push end to end on one machine.

    ./scripts/dev-push [--port 8000] [--send]

Starts the fake FCM (with its Google OAuth token endpoint) and the fake APNs (HTTP/2 over TLS,
certificates from ``trustme``) in this process, then ``hub dev`` as a child process pointed at
them (``HUB_PUSH_FCM_BASE_URL``, ``HUB_PUSH_APNS_BASE_URL``, ``HUB_PUSH_APNS_CA_FILE``,
``HUB_ALLOW_PRIVATE_URLS=true``). Once the API answers it saves the fakes' credentials for the
``demo`` environment through the API (``PUT /v1/demo/push/providers/fcm``,
``PUT /v1/demo/push/providers/apns``) and
registers an Android and an iOS device for ``demo-user`` through the SDK route, signed in with the
SDK demo page's key. Every notification a fake accepts is printed (``FCM <- ...``, ``APNs <-
...``). ``--send`` also starts the demo fraud-alert flow for ``demo-user`` once, whose first card
has a push template. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.fakes import apns as apns_fake
from tests.fakes import fcm as fcm_fake

DEMO = "demo"
USER = "demo-user"


def _say(line: str) -> None:
    print(line, flush=True)


async def _wait_ready(base: str, dev: subprocess.Popen[bytes], limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if dev.poll() is not None:
                raise SystemExit(f"hub dev exited with {dev.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.3)
    raise SystemExit(f"hub dev did not answer {base}/readyz within {limit:.0f}s")


async def configure(base: str, var_dir: Path, google: fcm_fake.FakeGoogle, apple: apns_fake.FakeApns
                    ) -> dict[str, Any]:
    """Save both fakes' credentials for ``demo`` and register ``demo-user``'s two devices."""
    credentials = json.loads((var_dir / "dev-credentials.json").read_text())
    key = apple.make_key("com.example.hub.demo")
    android_token, ios_token = fcm_fake.device_token(), os.urandom(32).hex()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        token = (await client.post(f"/v1/{DEMO}/oauth/token", data={
            "grant_type": "client_credentials",
            **{k: credentials[k] for k in ("client_id", "client_secret")}})).json()["access_token"]
        admin = {"Authorization": f"Bearer {token}"}
        answers = [
            await client.put(f"/v1/{DEMO}/push/providers/fcm", headers=admin, json={
                "serviceAccount": google.oauth.service_account("hub-demo-project")}),
            await client.put(f"/v1/{DEMO}/push/providers/apns", headers=admin, json={
                "keyP8": key.key_p8, "keyId": key.key_id, "teamId": key.team_id, "topic": key.topic,
                "environment": "sandbox"}),
        ]
        user_token = (await client.post("/sdk/demo/token", json={"userId": USER})).json()["token"]
        user = {"Authorization": f"Bearer {user_token}"}
        answers += [
            await client.post(f"/v1/{DEMO}/sdk/devices", headers=user, json={
                "platform": "android", "token": android_token, "appId": "com.example.hub.demo"}),
            await client.post(f"/v1/{DEMO}/sdk/devices", headers=user,
                              json={"platform": "ios", "token": ios_token, "apnsTopic": key.topic}),
        ]
        for answer in answers:
            if answer.status_code >= 300:
                raise SystemExit(f"{answer.request.method} {answer.request.url.path} answered "
                                 f"{answer.status_code}: {answer.text}")
    return {"admin": admin, "android": android_token, "ios": ios_token}


async def send(base: str, admin: dict[str, str]) -> None:
    """Start the demo fraud alert for ``demo-user`` (its first card has a push template)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        started = await client.post(f"/v1/{DEMO}/action-flow/fraud-alert/start", headers=admin, json={
            "flows": [{"target": {"usersById": [USER]}, "payload": {"variables": {
                "amount": "$1,249.00", "merchant": "ACME Online", "cardLast4": "4242",
                "paymentId": "pay-8812"}}}]})
    if started.status_code != 202:
        raise SystemExit(f"starting the demo flow answered {started.status_code}: {started.text}")


async def _watch(google: fcm_fake.FakeGoogle, apple: apns_fake.FakeApns, stop: asyncio.Event) -> None:
    shown_fcm = shown_apns = 0
    while not stop.is_set():
        for received in google.fcm.messages[shown_fcm:]:
            note = received.message.get("notification", {})
            _say(f"FCM <- {received.message['token'][:16]}...: {note.get('title')!r} / {note.get('body')!r}")
        shown_fcm = len(google.fcm.messages)
        for got in apple.notifications[shown_apns:]:
            alert = got.payload.get("aps", {}).get("alert", {})
            _say(f"APNs <- {got.token[:16]}...: {alert.get('title')!r} / {alert.get('body')!r}")
        shown_apns = len(apple.notifications)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)


async def run(args: argparse.Namespace, var_dir: Path, hub_bin: str) -> int:
    async with fcm_fake.running() as google, apns_fake.running() as apple:
        env = {**os.environ, "HUB_PUSH_FCM_BASE_URL": google.fcm.url, "HUB_PUSH_APNS_BASE_URL": apple.url,
               "HUB_PUSH_APNS_CA_FILE": apple.ca_file, "HUB_ALLOW_PRIVATE_URLS": "true"}
        # Started once, before this loop has anything else to do.
        dev = subprocess.Popen([hub_bin, "dev", "--port", str(args.port)], env=env,  # noqa: ASYNC220
                               start_new_session=True)
        base = f"http://127.0.0.1:{args.port}"
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await _wait_ready(base, dev)
            done = await configure(base, var_dir, google, apple)
            _say(f"\nPush fakes ready: FCM at {google.fcm.url}, APNs at {apple.url}.\n"
                 f"demo-user has an Android device ({done['android'][:16]}...) and an iOS device "
                 f"({done['ios'][:16]}...).\nSend the demo card with push:\n"
                 f"  curl -s -X POST {base}/v1/{DEMO}/action-flow/fraud-alert/start "
                 "-H 'Authorization: Bearer ...' -H 'Content-Type: application/json' "
                 "-d '{\"flows\": [{\"target\": {\"usersById\": [\"demo-user\"]}, \"payload\": "
                 "{\"variables\": {\"amount\": \"$42\", \"merchant\": \"ACME\", "
                 "\"cardLast4\": \"4242\", \"paymentId\": \"p-1\"}}}]}'\n"
                 "Each notification the fakes accept is printed below. Ctrl-C stops.")
            if args.send:
                await send(base, done["admin"])
            watcher = asyncio.create_task(_watch(google, apple, stop))
            while not stop.is_set() and dev.poll() is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
            stop.set()
            await watcher
        finally:
            if dev.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(dev.pid, signal.SIGINT)
                try:
                    dev.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(dev.pid, signal.SIGKILL)
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="scripts/dev-push", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("HUB_PORT", "8000")))
    parser.add_argument("--send", action="store_true", help="start the demo flow for demo-user once")
    var_dir = Path(os.environ.get("HUB_VAR_DIR", "var")).resolve()
    hub_bin = str(Path(sys.executable).parent / "hub")
    raise SystemExit(asyncio.run(run(parser.parse_args(argv), var_dir, hub_bin)))


if __name__ == "__main__":
    main()

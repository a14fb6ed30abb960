"""``scripts/dev-push``: ``hub dev`` with the push fakes; the demo card's push reaches both."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_dev_push_sends_the_demo_card_to_the_fake_fcm_and_apns(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["PYTHONPATH"] = str(ROOT)
    argv = [sys.executable, "-m", "tests.fakes.push_dev", "--port", str(_free_port()), "--send"]
    dev = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True,
                           start_new_session=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 150
        assert dev.stdout is not None
        while time.monotonic() < deadline and dev.poll() is None:
            lines.append(dev.stdout.readline())
            if any(x.startswith("FCM <- ") for x in lines) and any(x.startswith("APNs <- ") for x in lines):
                break
        text = "".join(lines)
        assert "Push fakes ready" in text, text
        fcm = next(x for x in lines if x.startswith("FCM <- "))
        apns = next(x for x in lines if x.startswith("APNs <- "))
        assert "'Did you spend $1,249.00?'" in fcm and "ACME Online" in fcm
        assert "'Did you spend $1,249.00?'" in apns
    finally:
        os.killpg(dev.pid, signal.SIGINT)
        try:
            dev.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
            raise

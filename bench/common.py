"""What the benchmarks share: processes in their own group, a private Hub set-up, wrk, the report.

Used by ``bench/api.py`` and ``bench/engine.py``. Every process a benchmark starts is a
:class:`Server` (its own process group, stopped by group, then the embedded Redis if it owns it);
:func:`stopping` stops them all in reverse order, also on Ctrl-C or SIGTERM. The report is a
table printed on stdout and a block between two markers of ``docs/benchmarks.md``
(:func:`write_doc`), each benchmark with its own markers.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/hub_d"
HUB_BIN = str(Path(sys.executable).parent / "hub")


class BenchError(RuntimeError):
    """Printed as one line; the command exits non-zero."""


# --- processes -------------------------------------------------------------------------------


class Server:
    """A process in its own process group, so stopping it stops its workers and children too.

    ``port`` is the HTTP port it serves (``None`` for a process that serves nothing, such as
    ``hub worker``); ``owns_redis``: stopping it also shuts down the embedded Redis in
    ``cwd/var`` (give it to the one process that started that Redis).
    """

    def __init__(self, name: str, argv: list[str], port: int | None, cwd: Path, env: dict[str, str],
                 *, owns_redis: bool = True):
        self.name, self.port, self.cwd, self.owns_redis = name, port, cwd, owns_redis
        self.log_path = cwd / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
            with contextlib.suppress(OSError):
                status, _ = http("GET", self.url + "/healthz", timeout=2)
                if status == 200:
                    return
            time.sleep(0.2)
        raise BenchError(f"{self.name} did not answer /healthz within {timeout:.0f}s: {self.tail()}")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")

    def tail(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left in the group (a uvicorn worker, an embedded redis) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._log.close()
        if self.owns_redis:
            stop_embedded_redis(self.cwd)


def stop_embedded_redis(workdir: Path) -> None:
    """Shut down the embedded Redis a Hub server started in ``workdir/var`` (its own session, so
    the process-group kill does not reach it, and uvicorn re-raises SIGTERM before `hub serve`'s
    ``finally`` can stop it)."""
    sock = workdir / "var" / "redis" / "redis.sock"
    if not sock.exists():
        return
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(5)
        conn.connect(str(sock))
        conn.sendall(b"SHUTDOWN NOSAVE\r\n")
        conn.recv(64)  # the server closes the connection as it exits


@contextlib.contextmanager
def stopping(servers: list[Server]) -> Iterator[None]:
    """Stop every server in ``servers`` (last started first) on the way out, also on SIGTERM."""
    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        yield
    finally:
        for server in reversed(servers):
            server.stop()
        signal.signal(signal.SIGTERM, previous)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def run_cmd(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise BenchError(f"{shlex.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-1500:]}")
    return done.stdout


# --- Hub set-up ------------------------------------------------------------------------------


def reset_postgres(url: str) -> None:
    """Empty the benchmark's own database (it must be one nobody else uses)."""
    import asyncio

    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def go() -> None:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
        finally:
            await conn.close()

    asyncio.run(go())


def postgres_version(url: str) -> str:
    import asyncio

    import asyncpg

    async def go() -> str:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1), timeout=10)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    try:
        return asyncio.run(go())
    except Exception as exc:  # the version is a nicety; the benchmark itself reports real failures
        return f"unknown ({type(exc).__name__})"


def hub_env(database_url: str, redis_url: str, extra: list[str]) -> dict[str, str]:
    """Hub's settings: only what the benchmark sets (``HUB_*`` of the caller's shell are dropped)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATABASE_URL=database_url, HUB_REDIS_URL=redis_url,
               HUB_SECRET_KEY="bench-" + os.urandom(16).hex(), HUB_LOG_LEVEL="WARNING",
               PYTHONUNBUFFERED="1")
    for item in extra:
        name, _, value = item.partition("=")
        env[name if name.startswith("HUB_") else "HUB_" + name.upper()] = value
    return env


def database_url(backend: str, pg_url: str, workdir: Path) -> str:
    """SQLite: a file in ``workdir``; PostgreSQL: ``pg_url``, emptied first."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{workdir / 'hub.db'}"
    reset_postgres(pg_url)
    return pg_url


def prepare_hub(workdir: Path, env: dict[str, str], hub_env_name: str) -> dict[str, str]:
    """``hub migrate``, ``hub env create``, an admin API client; returns its credentials."""
    run_cmd([HUB_BIN, "migrate"], workdir, env)
    run_cmd([HUB_BIN, "env", "create", hub_env_name], workdir, env)
    out = run_cmd([HUB_BIN, "client", "create", "--env", hub_env_name, "--roles", "admin", "--json"],
                  workdir, env)
    return dict(json.loads(out.strip().splitlines()[-1]))


def serve(name: str, workdir: Path, env: dict[str, str], workers: int = 1) -> Server:
    """``hub serve`` on a free port, ready (it owns the embedded Redis when there is one)."""
    port = free_port()
    server = Server(name, [HUB_BIN, "serve", "--host", "127.0.0.1", "--port", str(port),
                           "--workers", str(workers)], port, workdir, env)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


def token(server: Server, hub_env_name: str, client: dict[str, str]) -> str:
    """A bearer token for ``client`` (client-credentials grant)."""
    form = urllib.parse.urlencode({"grant_type": "client_credentials", **client}).encode()
    status, body = http("POST", f"{server.url}/v1/{hub_env_name}/oauth/token", data=form,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    if status != 200:
        raise BenchError(f"token request answered {status}: {body[:300]!r}")
    return str(json.loads(body)["access_token"])


# --- wrk -------------------------------------------------------------------------------------


def parse_wrk(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The ``WRKJSON {...}`` line a benchmark's Lua ``done`` hook prints."""
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout[-500:]}")
    return dict(json.loads(line[len("WRKJSON "):]))


# --- reporting -------------------------------------------------------------------------------


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def machine() -> dict[str, str]:
    def lscpu_model() -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
            for line in out.splitlines():
                if line.startswith("Model name:"):
                    return line.split(":", 1)[1].strip()
        return platform.processor() or "unknown"

    def mem() -> str:
        with contextlib.suppress(OSError):
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
        return "unknown"

    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
    wrk_line = (wrk_version.stdout + wrk_version.stderr).strip().splitlines()
    return {
        "cpus (nproc)": str(os.cpu_count()),
        "cpu model": lscpu_model(),
        "memory": mem(),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "os": platform.platform(),
        "python": platform.python_version(),
        "litestar": version("litestar"),
        "uvicorn": version("uvicorn"),
        "sqlalchemy": version("sqlalchemy"),
        "uvloop / httptools": f"{version('uvloop')} / {version('httptools')}",
        "aiosqlite / asyncpg": f"{version('aiosqlite')} / {version('asyncpg')}",
        "msgspec / structlog / prometheus_client":
            f"{version('msgspec')} / {version('structlog')} / {version('prometheus_client')}",
        "wrk": wrk_line[0] if wrk_line else "unknown",
    }


def print_table(cells: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    for n, r in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def markdown(cells: list[list[str]]) -> str:
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "|".join("---" for _ in cells[0]) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells[1:]]
    return "\n".join(lines)


def write_doc(path: Path, block: str, begin: str, end: str) -> None:
    """Replace what is between ``begin`` and ``end`` in ``path`` (appended when missing)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    generated = f"{begin}\n{block.rstrip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + generated + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + generated + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def command_line() -> str:
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(Path.cwd())
    script = Path(sys.argv[0])
    with contextlib.suppress(ValueError):
        script = script.resolve().relative_to(Path.cwd())
    return shlex.join([str(python), str(script), *sys.argv[1:]])

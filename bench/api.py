"""Requests/s of Hub's authenticated customer GET against a bare Litestar endpoint, in one run.

Starts ``hub serve`` (per backend, in a private temp dir) and ``bench/baseline_app.py`` (the same
uvicorn call, the same number of worker processes, the same host), then drives both with ``wrk``
in rounds that alternate baseline and Hub, and reports the median of the rounds::

    .venv/bin/python bench/api.py [--backend sqlite|postgres|both] [--duration 10] [--rounds 3]

Every wrk run is bounded in time and every non-2xx answer is counted (a benchmark of 401s is
worthless): the run fails if any response was not 200, and Hub's ``/metrics`` is read after the
rounds to check that the requests it counted on the route were 200s. The table is printed and,
unless ``--no-write``, written between the markers of ``docs/benchmarks.md`` with the date, the
machine, the versions and the exact command. The target: Hub reaches at least 40% of the baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN = "<!-- bench/api.py:begin (generated; edit outside the markers) -->"
END = "<!-- bench/api.py:end -->"
TARGET = 0.40
ENV = "bench"
USER = "bench-user"
HUB_ROUTE = f"/v1/{ENV}/users/{USER}"
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/hub_d"

# wrk prints this line from its `done` hook; parsed instead of wrk's human-readable summary.
WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


class BenchError(RuntimeError):
    """Printed as one line; the command exits non-zero."""


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


@dataclass
class Row:
    backend: str
    endpoint: str
    runs: list[Run] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return statistics.median(r.rps for r in self.runs)

    @property
    def p50(self) -> float:
        return statistics.median(r.p50_ms for r in self.runs)

    @property
    def p99(self) -> float:
        return statistics.median(r.p99_ms for r in self.runs)


# --- processes -------------------------------------------------------------------------------


class Server:
    """A server in its own process group, so stopping it stops its workers and children too."""

    def __init__(self, name: str, argv: list[str], port: int, cwd: Path, env: dict[str, str]):
        self.name, self.port, self.cwd = name, port, cwd
        self.log_path = cwd / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

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


def start_hub(backend: str, args: argparse.Namespace, workdir: Path) -> tuple[Server, str]:
    """Migrate, create the environment, a client and a customer; return the server and a token."""
    hub_bin = str(Path(sys.executable).parent / "hub")
    if backend == "sqlite":
        database_url = f"sqlite+aiosqlite:///{workdir / 'hub.db'}"
    else:
        database_url = args.pg_url
        reset_postgres(database_url)
    env = hub_env(database_url, args.redis_url, args.hub_env)
    run_cmd([hub_bin, "migrate"], workdir, env)
    run_cmd([hub_bin, "env", "create", ENV], workdir, env)
    client = json.loads(run_cmd([hub_bin, "client", "create", "--env", ENV, "--roles", "admin",
                                 "--json"], workdir, env).strip().splitlines()[-1])
    port = free_port()
    server = Server(f"hub-{backend}", [hub_bin, "serve", "--host", "127.0.0.1", "--port", str(port),
                                       "--workers", str(args.workers)], port, workdir, env)
    try:
        server.wait_ready()
        form = urllib.parse.urlencode({"grant_type": "client_credentials", **client}).encode()
        status, body = http("POST", f"{server.url}/v1/{ENV}/oauth/token", data=form,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        if status != 200:
            raise BenchError(f"token request answered {status}: {body[:300]!r}")
        token = json.loads(body)["access_token"]
        payload = {"users": [{"userId": USER, "fields": {"name": "B"}, "tags": ["t"]}]}
        status, body = http("PUT", f"{server.url}/v1/{ENV}/users", data=json.dumps(payload).encode(),
                            headers={"Content-Type": "application/json",
                                     "Authorization": f"Bearer {token}"})
        if status != 200 or json.loads(body).get("failed"):
            raise BenchError(f"customer upsert answered {status}: {body[:300]!r}")
        check_once(server.url + HUB_ROUTE, {"Authorization": f"Bearer {token}"}, USER)
    except BaseException:
        server.stop()
        raise
    return server, token


def check_once(url: str, headers: dict[str, str], user_id: str) -> None:
    status, body = http("GET", url, headers=headers)
    if status != 200 or json.loads(body).get("userId") != user_id:
        raise BenchError(f"GET {url} answered {status}: {body[:300]!r}")


def route_counts(server: Server) -> dict[str, float]:
    """``hub_http_requests_total`` of the customer GET route, by status (this process's count)."""
    status, body = http("GET", server.url + "/metrics")
    if status != 200:
        raise BenchError(f"/metrics answered {status}")
    counts: dict[str, float] = {}
    for line in body.decode().splitlines():
        if line.startswith("hub_http_requests_total{") and 'method="GET"' in line \
                and "/users/{user_id" in line:
            match = re.search(r'status="(\d+)"\}\s+([0-9.e+]+)', line)
            if match:
                counts[match[1]] = counts.get(match[1], 0.0) + float(match[2])
    return counts


# --- wrk -------------------------------------------------------------------------------------


def wrk(url: str, headers: dict[str, str], args: argparse.Namespace, lua: Path,
        duration: float | None = None) -> Run:
    seconds = duration or args.duration
    argv = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds:g}s",
            "--timeout", "5s", "-s", str(lua)]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {seconds + 30:g}s: {url}") from exc
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout[-500:]}")
    data = json.loads(line[len("WRKJSON "):])
    errors = data["connect"] + data["read"] + data["write"] + data["timeout"]
    if data["non2xx"] or errors:
        raise BenchError(f"{url}: {data['non2xx']} non-2xx answers and {errors} socket errors "
                         f"out of {data['requests']} requests; not a benchmark of the endpoint")
    return Run(rps=data["requests"] / (data["duration_us"] / 1e6), p50_ms=data["p50_us"] / 1000,
               p99_ms=data["p99_us"] / 1000, requests=data["requests"], errors=errors)


# --- reporting -------------------------------------------------------------------------------


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

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "-"

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


def table(rows: list[Row], baselines: dict[str, Row]) -> list[list[str]]:
    out = [["backend", "endpoint", "req/s (median)", "p50 ms", "p99 ms", "ratio to baseline",
            "req/s per round"]]
    for row in rows:
        base = baselines[row.backend]
        out.append([row.backend, row.endpoint, f"{row.rps:,.0f}", f"{row.p50:.2f}", f"{row.p99:.2f}",
                    f"{row.rps / base.rps:.0%}", " / ".join(f"{r.rps:,.0f}" for r in row.runs)])
    return out


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


def write_doc(path: Path, block: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    generated = f"{BEGIN}\n{block.rstrip()}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + generated + rest.split(END, 1)[1]
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


# --- main ------------------------------------------------------------------------------------


@contextlib.contextmanager
def stopping(servers: list[Server]) -> Iterator[None]:
    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        yield
    finally:
        for server in reversed(servers):
            server.stop()
        signal.signal(signal.SIGTERM, previous)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Hub's authenticated GET /v1/{env}/users/{userId} against a bare Litestar endpoint.")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run (max 15)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds alternating baseline and Hub")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of unrecorded load per server")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=1, help="server processes each (max 2)")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG),
                        help="a PostgreSQL database for the benchmark alone: it is emptied")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", ""),
                        help="HUB_REDIS_URL for Hub (empty: the embedded Redis)")
    parser.add_argument("--hub-env", action="append", default=[], metavar="NAME=VALUE",
                        help="another Hub setting, e.g. HUB_LOG_LEVEL=INFO (repeatable)")
    parser.add_argument("--no-write", action="store_true", help=f"do not update {DOC.relative_to(ROOT)}")
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 15:
        parser.error("--duration must be in (0, 15] seconds")
    if not 1 <= args.workers <= 2:
        parser.error("--workers must be 1 or 2 (the machine has 2 cores)")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench/api.py needs wrk (https://github.com/wg/wrk). Install it with:\n"
              "  apt-get update && apt-get install -y wrk     # Debian/Ubuntu\n"
              "  brew install wrk                             # macOS", file=sys.stderr)
        return 2
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    started = dt.datetime.now(dt.UTC)
    info = machine()
    if "postgres" in backends:
        info["postgresql server"] = postgres_version(args.pg_url)
    servers: list[Server] = []
    rows: list[Row] = []
    baselines: dict[str, Row] = {}
    hub_total: dict[str, int] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp, stopping(servers):
            workdir = Path(tmp)
            lua = workdir / "report.lua"
            lua.write_text(WRK_LUA)
            port = free_port()
            baseline = Server("baseline", [sys.executable, str(ROOT / "bench" / "baseline_app.py"),
                                           "--port", str(port), "--workers", str(args.workers)],
                              port, workdir, {**os.environ, "PYTHONUNBUFFERED": "1"})
            servers.append(baseline)
            baseline.wait_ready()
            check_once(baseline.url + HUB_ROUTE, {}, USER)
            wrk(baseline.url + HUB_ROUTE, {}, args, lua, args.warmup)
            for backend in backends:
                print(f"[{backend}] setting up Hub...", file=sys.stderr, flush=True)
                backend_dir = workdir / backend
                backend_dir.mkdir()
                hub, token = start_hub(backend, args, backend_dir)
                servers.append(hub)
                auth = {"Authorization": f"Bearer {token}"}
                before = route_counts(hub)
                wrk(hub.url + HUB_ROUTE, auth, args, lua, args.warmup)
                base_row, hub_row = Row(backend, "bare Litestar (baseline)"), Row(backend, "Hub GET user")
                for n in range(args.rounds):
                    order = [(base_row, baseline, {}), (hub_row, hub, auth)]
                    for row, server, headers in (order if n % 2 == 0 else order[::-1]):
                        run = wrk(server.url + HUB_ROUTE, headers, args, lua)
                        row.runs.append(run)
                        print(f"[{backend}] round {n + 1}/{args.rounds} {row.endpoint}: {run.rps:,.0f} req/s "
                              f"p50 {run.p50_ms:.2f} ms p99 {run.p99_ms:.2f} ms",
                              file=sys.stderr, flush=True)
                after = route_counts(hub)
                counted = {k: after.get(k, 0) - before.get(k, 0) for k in after}
                wrk_total = sum(r.requests for r in hub_row.runs)
                non_200 = sum(v for k, v in counted.items() if k != "200")
                if non_200:
                    raise BenchError(f"Hub counted {counted} on the route; some answers were not 200")
                # With one worker /metrics sees every request (wrk may stop before a last answer).
                if args.workers == 1 and counted.get("200", 0) < wrk_total:
                    raise BenchError(f"Hub counted {counted.get('200', 0):.0f} 200s for {wrk_total} "
                                     "requests wrk saw answered")
                hub_total[backend] = int(counted.get("200", 0))
                rows += [base_row, hub_row]
                baselines[backend] = base_row
                hub.stop()
                servers.remove(hub)
    except BenchError as exc:
        print(f"bench/api.py: {exc}", file=sys.stderr)
        return 1

    cells = table(rows, baselines)
    print()
    print_table(cells)
    verdicts = []
    for backend in backends:
        hub_row = next(r for r in rows if r.backend == backend and r.endpoint.startswith("Hub"))
        ratio = hub_row.rps / baselines[backend].rps
        verdicts.append(f"{backend}: {ratio:.0%} of the baseline "
                        f"({'meets' if ratio >= TARGET else 'misses'} the {TARGET:.0%} target)")
    print("\n" + "; ".join(verdicts))

    if not args.no_write:
        lines = [
            f"Run on {started:%Y-%m-%d %H:%M} UTC with:",
            "",
            "```",
            command_line(),
            "```",
            "",
            f"wrk `-t{args.threads} -c{args.connections} -d{args.duration:g}s`, {args.rounds} rounds "
            f"alternating baseline and Hub after a {args.warmup:g} s warm-up of each, median shown; "
            f"{args.workers} server process(es) each, `hub serve` and the baseline on the same uvicorn "
            "call; every answer checked to be a 200 (wrk's count and Hub's `hub_http_requests_total`: "
            + ", ".join(f"{b} {n:,}" for b, n in hub_total.items()) + " 200s on the route).",
            "",
            markdown(cells),
            "",
            "; ".join(verdicts) + ".",
            "",
            "| machine | |",
            "|---|---|",
            *[f"| {k} | {v} |" for k, v in info.items()],
        ]
        write_doc(args.output, "\n".join(lines))
        print(f"written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

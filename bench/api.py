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
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    DEFAULT_PG,
    DOC,
    ROOT,
    BenchError,
    Server,
    command_line,
    database_url,
    free_port,
    http,
    hub_env,
    machine,
    markdown,
    parse_wrk,
    postgres_version,
    prepare_hub,
    print_table,
    serve,
    stopping,
    token,
    write_doc,
)

BEGIN = "<!-- bench/api.py:begin (generated; edit outside the markers) -->"
END = "<!-- bench/api.py:end -->"
TARGET = 0.40
ENV = "bench"
USER = "bench-user"
HUB_ROUTE = f"/v1/{ENV}/users/{USER}"

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


# --- Hub set-up ------------------------------------------------------------------------------


def start_hub(backend: str, args: argparse.Namespace, workdir: Path) -> tuple[Server, str]:
    """Migrate, create the environment, a client and a customer; return the server and a token."""
    env = hub_env(database_url(backend, args.pg_url, workdir), args.redis_url, args.hub_env)
    client = prepare_hub(workdir, env, ENV)
    server = serve(f"hub-{backend}", workdir, env, args.workers)
    try:
        bearer = token(server, ENV, client)
        payload = {"users": [{"userId": USER, "fields": {"name": "B"}, "tags": ["t"]}]}
        status, body = http("PUT", f"{server.url}/v1/{ENV}/users", data=json.dumps(payload).encode(),
                            headers={"Content-Type": "application/json",
                                     "Authorization": f"Bearer {bearer}"})
        if status != 200 or json.loads(body).get("failed"):
            raise BenchError(f"customer upsert answered {status}: {body[:300]!r}")
        check_once(server.url + HUB_ROUTE, {"Authorization": f"Bearer {bearer}"}, USER)
    except BaseException:
        server.stop()
        raise
    return server, bearer


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
    data = parse_wrk(done)
    errors = data["connect"] + data["read"] + data["write"] + data["timeout"]
    if data["non2xx"] or errors:
        raise BenchError(f"{url}: {data['non2xx']} non-2xx answers and {errors} socket errors "
                         f"out of {data['requests']} requests; not a benchmark of the endpoint")
    return Run(rps=data["requests"] / (data["duration_us"] / 1e6), p50_ms=data["p50_us"] / 1000,
               p99_ms=data["p99_us"] / 1000, requests=data["requests"], errors=errors)


# --- reporting -------------------------------------------------------------------------------


def table(rows: list[Row], baselines: dict[str, Row]) -> list[list[str]]:
    out = [["backend", "endpoint", "req/s (median)", "p50 ms", "p99 ms", "ratio to baseline",
            "req/s per round"]]
    for row in rows:
        base = baselines[row.backend]
        out.append([row.backend, row.endpoint, f"{row.rps:,.0f}", f"{row.p50:.2f}", f"{row.p99:.2f}",
                    f"{row.rps / base.rps:.0%}", " / ".join(f"{r.rps:,.0f}" for r in row.runs)])
    return out


# --- main ------------------------------------------------------------------------------------


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
                hub, bearer = start_hub(backend, args, backend_dir)
                servers.append(hub)
                auth = {"Authorization": f"Bearer {bearer}"}
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
        write_doc(args.output, "\n".join(lines), BEGIN, END)
        print(f"written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

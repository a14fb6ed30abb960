"""How fast a list upload turns rows into invocations: a 100,000-row CSV, with two workers.

Per backend, in a private temp dir, the benchmark sets Hub up (migrate, an environment, an admin
client, a one-card flow with two variables), starts ``hub serve`` and two ``hub worker``
processes, writes a CSV of ``--rows`` new customers (user id, a number, a string), and::

    .venv/bin/python bench/uploads.py [--backend postgres|sqlite|both] [--rows 100000]

1. ``POST /v1/bench/uploads`` with the file streamed from disk (``Content-Length`` set): the
   time to the 202, when every row is checked and stored durably and the upload is queued.
2. The time from sending the request until ``GET /v1/bench/uploads/{id}`` reports
   ``completed`` with every row started: each row's invocation is recorded (with its customer's
   profile and its fan-out job) by the workers, a chunk per transaction. This is the figure the
   target is about (≤ 30 s); it is cross-checked with ``count(*)`` of the upload's invocations.
3. What the engine has done with those invocations ``--fanout-seconds`` after that (each one a
   flow instance and a card, run by the same two workers): the count of completed invocations.

Every process started is stopped by process group, also on Ctrl-C. The table is printed and,
unless ``--no-write``, written between this benchmark's markers in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    DOC,
    HUB_BIN,
    BenchError,
    Server,
    command_line,
    database_url,
    http,
    hub_env,
    machine,
    markdown,
    postgres_version,
    prepare_hub,
    print_table,
    run_cmd,
    serve,
    stopping,
    token,
    write_doc,
)
from engine import cpu_seconds, git_commit, proc_status

BEGIN = "<!-- bench/uploads.py:begin (generated; edit outside the markers) -->"
END = "<!-- bench/uploads.py:end -->"
ENV = "bench"
FLOW_ID = "promo"
FLOW = {"id": FLOW_ID, "name": "Promo",
        "variables": [{"name": "amount", "type": "number", "required": True},
                      {"name": "shop", "type": "string", "required": True}],
        "cardTemplates": [{"id": "offer", "name": "Offer",
                           "elements": [{"type": "headline",
                                         "text": "{{variables.amount}} at {{variables.shop}}"}]}],
        "steps": [{"id": "send", "type": "card", "template": "offer"}]}
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/hub_d"
PG_REDIS = "redis://127.0.0.1:6379/6"
TARGET_S = 30.0
WORKERS = 2


@dataclass
class Result:
    backend: str
    rows: int = 0
    file_mib: float = 0.0
    accepted_s: float = 0.0
    started_s: float | None = None
    invocations: int = 0
    fanned_out: int = 0
    fanout_window_s: float = 0.0
    serve_cpu_s: float = 0.0
    worker_cpu_s: list[float] = field(default_factory=list)
    worker_hwm_mib: list[float] = field(default_factory=list)
    serve_hwm_mib: float = 0.0
    notes: list[str] = field(default_factory=list)


def log(backend: str, message: str) -> None:
    print(f"[{backend}] {message}", file=sys.stderr, flush=True)


def write_csv(path: Path, rows: int) -> None:
    with path.open("w") as out:
        out.write("customer,amount,shop\n")
        for n in range(1, rows + 1):
            out.write(f"list-{n:07d},{n % 977}.5,Shop {n % 31}\n")


def post_file(url: str, bearer: str, path: Path) -> dict[str, Any]:
    query = urllib.parse.urlencode({"flowConfigId": FLOW_ID, "userColumn": "customer",
                                    "variable": ["amount:amount", "shop:shop"]}, doseq=True)
    with path.open("rb") as body:
        request = urllib.request.Request(
            f"{url}/v1/{ENV}/uploads?{query}", data=body, method="POST",
            headers={"Content-Type": "text/csv", "Content-Length": str(path.stat().st_size),
                     "Authorization": f"Bearer {bearer}"})
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            raise BenchError(f"upload answered {exc.code}: {exc.read()[:300]!r}") from None


def get_upload(url: str, bearer: str, upload_id: str) -> dict[str, Any]:
    status, body = http("GET", f"{url}/v1/{ENV}/uploads/{upload_id}",
                        headers={"Authorization": f"Bearer {bearer}"})
    if status != 200:
        raise BenchError(f"GET upload answered {status}: {body[:300]!r}")
    return dict(json.loads(body))


async def count_invocations(db_url: str, upload_id: str, completed: bool) -> int:
    from sqlalchemy import func, select

    from hub.db import make_engine, tables

    engine = make_engine(db_url, pool_size=1)
    v = tables.invocation.c
    query = select(func.count()).where(v.environment_id == ENV, v.id.like(f"list:{upload_id}:%"))
    if completed:
        query = query.where(v.status == "completed")
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(query)).scalar() or 0)
    finally:
        await engine.dispose()


def run_backend(backend: str, args: argparse.Namespace, workdir: Path, servers: list[Server]) -> Result:
    res = Result(backend, rows=args.rows)
    db_url = database_url(backend, args.pg_url, workdir)
    redis_url = args.redis_url if backend == "postgres" else ""
    if redis_url:
        from redis import Redis

        with Redis.from_url(redis_url) as r:
            r.flushdb()
    env = hub_env(db_url, redis_url, args.hub_env)
    client = prepare_hub(workdir, env, ENV)
    flow_file = workdir / "flow.json"
    flow_file.write_text(json.dumps(FLOW))
    run_cmd([HUB_BIN, "flows", "apply", str(flow_file), "--env", ENV], workdir, env)
    server = serve(f"serve-{backend}", workdir, env)
    servers.append(server)
    workers = []
    for n in range(WORKERS):
        worker = Server(f"worker{n + 1}-{backend}", [HUB_BIN, "worker"], None, workdir, env, owns_redis=False)
        servers.append(worker)
        workers.append(worker)
    bearer = token(server, ENV, client)
    csv_path = workdir / "list.csv"
    write_csv(csv_path, args.rows)
    res.file_mib = csv_path.stat().st_size / 1024 / 1024
    time.sleep(2.0)  # the workers are up and idle
    pids = [server.pid] + [w.pid for w in workers]
    cpu0 = [cpu_seconds(p) for p in pids]
    log(backend, f"uploading {args.rows:,} rows ({res.file_mib:.1f} MiB)...")
    sent = time.monotonic()
    created = post_file(server.url, bearer, csv_path)
    res.accepted_s = time.monotonic() - sent
    upload_id = created["uploadId"]
    log(backend, f"202 after {res.accepted_s:.1f}s: {created['rowsValid']:,} valid rows")
    if created["rowsValid"] != args.rows:
        raise BenchError(f"{created['rowsValid']} valid rows of {args.rows}: {created}")
    deadline = sent + args.timeout
    current = created
    while current["state"] in ("queued", "running") and time.monotonic() < deadline:
        for w in workers:
            w.check_alive()
        time.sleep(0.1)
        current = get_upload(server.url, bearer, upload_id)
    done_at = time.monotonic()
    if current["state"] == "completed":
        res.started_s = done_at - sent
    else:
        res.notes.append(f"upload {current['state']} at the {args.timeout:g} s bound with "
                         f"{current['rowsStarted']:,} rows started")
    res.invocations = asyncio.run(count_invocations(db_url, upload_id, completed=False))
    if current["state"] == "completed" and res.invocations != args.rows:
        raise BenchError(f"upload completed with {res.invocations} invocations for {args.rows} rows")
    log(backend, f"all rows started after {res.started_s}s; fan-out for {args.fanout_seconds:g}s more")
    time.sleep(max(0.0, done_at + args.fanout_seconds - time.monotonic()))
    res.fanout_window_s = time.monotonic() - done_at
    res.fanned_out = asyncio.run(count_invocations(db_url, upload_id, completed=True))
    cpu1 = [cpu_seconds(p) for p in pids]
    res.serve_cpu_s = cpu1[0] - cpu0[0]
    res.worker_cpu_s = [b - a for a, b in zip(cpu0[1:], cpu1[1:], strict=True)]
    res.serve_hwm_mib = proc_status(server.pid).get("VmHWM", 0) / 1024
    res.worker_hwm_mib = [proc_status(w.pid).get("VmHWM", 0) / 1024 for w in workers]
    return res


def table(results: list[Result]) -> list[list[str]]:
    cells = [["backend", "measure", "result", "target"]]
    for r in results:
        ok = r.started_s is not None and r.started_s <= TARGET_S
        cells += [
            [r.backend, f"upload of {r.rows:,} rows ({r.file_mib:.1f} MiB): 202 (stored, queued)",
             f"{r.accepted_s:.1f} s ({r.rows / r.accepted_s:,.0f} rows/s)", ""],
            [r.backend, "  request sent → every row's invocation recorded",
             f"{r.started_s:.1f} s, {r.invocations:,} invocations" if r.started_s is not None
             else f"not done: {r.invocations:,} invocations",
             f"≤ {TARGET_S:g} s: " + ("meets" if ok else "**misses**")],
            [r.backend, f"  fan-out done {r.fanout_window_s:.0f} s later (instance + card each)",
             f"{r.fanned_out:,} of {r.invocations:,} invocations", ""],
            [r.backend, "  CPU during upload and window: serve / workers",
             f"{r.serve_cpu_s:.1f} s / " + " + ".join(f"{c:.1f}" for c in r.worker_cpu_s) + " s", ""],
            [r.backend, "  peak RSS (VmHWM): serve / workers",
             f"{r.serve_hwm_mib:.0f} / " + " / ".join(f"{m:.0f}" for m in r.worker_hwm_mib) + " MiB", ""],
        ]
    return cells


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="List upload: rows to invocations.")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=300, help="bound on the upload (s)")
    parser.add_argument("--fanout-seconds", type=float, default=30,
                        help="how long to let the engine run the invocations afterwards (s)")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG),
                        help="a PostgreSQL database for the benchmark alone: it is emptied")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", PG_REDIS),
                        help="Redis for the PostgreSQL run, flushed first (SQLite uses the embedded one)")
    parser.add_argument("--hub-env", action="append", default=[], metavar="NAME=VALUE",
                        help="another Hub setting, e.g. HUB_LIST_UPLOAD_CHUNK_ROWS=5000 (repeatable)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args(argv)
    if args.timeout > 900 or args.fanout_seconds > 600:
        parser.error("--timeout is at most 900 s, --fanout-seconds at most 600 s")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    started = dt.datetime.now(dt.UTC)
    info = machine()
    if "postgres" in backends:
        info["postgresql server"] = postgres_version(args.pg_url)
    info["hub commit"] = git_commit()
    results: list[Result] = []
    servers: list[Server] = []
    try:
        with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp, stopping(servers):
            for backend in backends:
                log(backend, "setting up Hub...")
                workdir = Path(tmp) / backend
                workdir.mkdir()
                here = len(servers)
                results.append(run_backend(backend, args, workdir, servers))
                for server in reversed(servers[here:]):
                    server.stop()
                del servers[here:]
    except BenchError as exc:
        print(f"bench/uploads.py: {exc}", file=sys.stderr)
        return 1
    cells = table(results)
    print()
    print_table(cells)
    notes = [f"{r.backend}: {n}" for r in results for n in r.notes]
    for note in notes:
        print("note:", note)
    if not args.no_write:
        lines = [
            f"Run on {started:%Y-%m-%d %H:%M} UTC with:", "", "```", command_line(), "```", "",
            f"`hub serve` (1 process) and {WORKERS} `hub worker` processes per backend; PostgreSQL with "
            "Redis on 127.0.0.1, SQLite with the embedded Redis. The CSV names new customers (their "
            "profiles are created as their rows start) and maps two typed variables. Times are from "
            "the moment the request is sent; the end is the upload's `completed` state, every row's "
            "invocation counted in the database. The fan-out row is the engine running those "
            "invocations on the same two workers afterwards, for information.",
            "", markdown(cells), "", *([f"- {n}" for n in notes] + [""] if notes else []),
            "| machine | |", "|---|---|", *[f"| {k} | {v} |" for k, v in info.items()],
        ]
        write_doc(args.output, "\n".join(lines), BEGIN, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())

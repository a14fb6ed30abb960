"""A 1,000-lead Marketo batch, end to end: the 201, every lead's flow started, the callback accepted.

On PostgreSQL, in a private temp dir, the benchmark sets Hub up (``hub migrate``, an environment,
an admin client, ``hub flows apply`` of a flow with a card and three variables, ``hub marketo
set`` for the API key), starts ``hub serve`` (one process), ``hub worker`` (one process) and the
fake Marketo (``python -m tests.fakes.marketo``, its own process, which makes the invocation
bodies and checks the callbacks as Marketo does). Then, per round, a fresh 1,000-lead invocation
(each lead a new customer, the flow-step fields set) is sent to ``submitAsyncAction``::

    .venv/bin/python bench/marketo.py [--rounds 3] [--leads 1000]

Measured from the moment the request is sent: the **201** (the batch and its job committed);
**every lead's flow started** (its invocation recorded through the core, then its flow instance
created and its card sent by the fan-out); the **callback accepted** by the fake Marketo, with
every lead reported successful. End to end is the later of the last two. A warm-up batch of 10
leads runs first. Target: end to end within 5 s.

PostgreSQL: ``--pg-url`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/hub_bench_mkto``,
created when missing) is **emptied** first; Redis: ``--redis-url`` (default
``redis://127.0.0.1:6379/11``) is **flushed** first. The table is printed and, unless
``--no-write``, written between this benchmark's markers in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    DOC,
    HUB_BIN,
    ROOT,
    BenchError,
    Server,
    command_line,
    free_port,
    http,
    hub_env,
    machine,
    markdown,
    postgres_version,
    prepare_hub,
    print_table,
    reset_postgres,
    run_cmd,
    serve,
    stopping,
    write_doc,
)

BEGIN = "<!-- bench/marketo.py begin -->"
END = "<!-- bench/marketo.py end -->"
ENV = "bench"
FLOW_ID = "welcome"
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/hub_bench_mkto"
DEFAULT_REDIS = "redis://127.0.0.1:6379/11"
TARGET_SECONDS = 5.0
FLOW = {
    "name": "Welcome",
    "variables": [
        {"name": "offer", "type": "string", "default": "a welcome gift"},
        {"name": "amount", "type": "number"},
        {"name": "vip", "type": "boolean"},
    ],
    "cardTemplates": [
        {
            "id": "hello",
            "name": "Hello",
            "elements": [{"type": "headline", "text": "{{variables.offer}}: {{variables.amount}}"}],
        }
    ],
    "steps": [{"id": "send", "type": "card", "template": "hello"}],
}


def ensure_database(url: str) -> None:
    """Create the benchmark's database when it does not exist yet."""
    import asyncpg

    name = url.rsplit("/", 1)[1]
    server = url.replace("postgresql+asyncpg://", "postgresql://", 1).rsplit("/", 1)[0] + "/postgres"

    async def go() -> None:
        conn = await asyncpg.connect(server)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(go())


def set_up(args: argparse.Namespace, workdir: Path, servers: list[Server]) -> tuple[Server, Server, str]:
    """Hub (serve + worker) and the fake Marketo: (hub, fake, API key)."""
    import redis as redis_sync

    with redis_sync.Redis.from_url(args.redis_url) as conn:
        conn.flushdb()
    ensure_database(args.pg_url)
    reset_postgres(args.pg_url)
    env = hub_env(args.pg_url, args.redis_url, ["ALLOW_PRIVATE_URLS=true"])  # the fake is on loopback
    prepare_hub(workdir, env, ENV)
    flow_file = workdir / "flow.json"
    flow_file.write_text(json.dumps(FLOW))
    run_cmd([HUB_BIN, "flows", "apply", str(flow_file), "--env", ENV, "--id", FLOW_ID], workdir, env)
    shown = run_cmd([HUB_BIN, "marketo", "set", "--env", ENV], workdir, env)
    key = next(line for line in shown.splitlines() if line.startswith("apiKey=")).split()[0][len("apiKey=") :]
    port = free_port()
    fake = Server(
        "marketo-fake",
        [sys.executable, "-m", "tests.fakes.marketo", "--port", str(port)],
        port,
        workdir,
        {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        owns_redis=False,
    )
    servers.append(fake)
    fake.wait_ready()
    hub = serve("hub", workdir, env)
    servers.append(hub)
    worker = Server("worker", [HUB_BIN, "worker"], None, workdir, env, owns_redis=False)
    servers.append(worker)
    time.sleep(2)
    worker.check_alive()
    return hub, fake, key


class Progress:
    """Counts in the database of a batch's invocations and flow instances."""

    def __init__(self, url: str) -> None:
        self.url = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.loop = asyncio.new_event_loop()
        self.conn: Any = None

    def __enter__(self) -> Progress:
        import asyncpg

        self.conn = self.loop.run_until_complete(asyncpg.connect(self.url))
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()

    def counts(self, batch_id: str) -> tuple[int, int]:
        like = f"mkto:{batch_id}:%"

        async def go() -> tuple[int, int]:
            invocations = await self.conn.fetchval(
                "SELECT count(*) FROM hub_invocation WHERE environment_id = $1 AND id LIKE $2", ENV, like
            )
            instances = await self.conn.fetchval(
                "SELECT count(*) FROM hub_flow_instance WHERE environment_id = $1 AND invocation_id LIKE $2",
                ENV,
                like,
            )
            return int(invocations), int(instances)

        return self.loop.run_until_complete(go())


def one_batch(
    hub: Server, fake: Server, key: str, progress: Progress, leads: int, round_no: int, timeout: float = 60.0
) -> dict[str, float]:
    """Send one batch and wait for everything; seconds from the send to each milestone."""
    first_lead = 10_000_000 * round_no
    ask = {
        "flowConfigId": FLOW_ID,
        "step": {"offer": "Your welcome offer", "amount": "25", "vip": "true"},
        "leads": [{"id": first_lead + i, "email": f"lead{first_lead + i}@example.com"} for i in range(leads)],
    }
    status, raw = http(
        "POST",
        f"{fake.url}/_fake/invocation",
        data=json.dumps(ask).encode(),
        headers={"Content-Type": "application/json"},
    )
    if status != 200:
        raise BenchError(f"the fake Marketo answered {status} for an invocation")
    seen = len(json.loads(http("GET", f"{fake.url}/_fake/callbacks")[1]))
    t0 = time.time()
    status, answer = http(
        "POST",
        f"{hub.url}/marketo/{ENV}/submitAsyncAction",
        data=raw,
        headers={"Content-Type": "application/json", "x-api-key": key},
        timeout=30,
    )
    accepted = time.time() - t0
    if status != 201:
        raise BenchError(f"submitAsyncAction answered {status}: {answer[:300]!r}")
    batch_id = json.loads(answer)["batchId"]
    marks: dict[str, float] = {"accepted": accepted}
    deadline = time.monotonic() + timeout
    while len(marks) < 4:
        if time.monotonic() > deadline:
            raise BenchError(f"batch {batch_id} not done within {timeout:.0f} s: {marks}")
        invocations, instances = progress.counts(batch_id)
        stamp = time.time() - t0
        if "invocations" not in marks and invocations >= leads:
            marks["invocations"] = stamp
        if "instances" not in marks and instances >= leads:
            marks["instances"] = stamp
        if "callback" not in marks:
            arrived = json.loads(http("GET", f"{fake.url}/_fake/callbacks")[1])[seen:]
            done = [c for c in arrived if c["answered"] == "200"]
            if done:
                if done[0]["leads"] != leads or done[0]["succeeded"] != leads:
                    raise BenchError(
                        f"the callback reported {done[0]['succeeded']} of {done[0]['leads']} leads "
                        f"successful, expected {leads}"
                    )
                marks["callback"] = done[0]["at"] - t0
        hub.check_alive()
        time.sleep(0.01)
    marks["end"] = max(marks["instances"], marks["callback"])
    return marks


def table(rounds: list[dict[str, float]], leads: int) -> list[list[str]]:
    def cell(name: str) -> str:
        values = [r[name] for r in rounds]
        return f"{statistics.median(values):.2f} s"

    def each(name: str) -> str:
        return " / ".join(f"{r[name]:.2f}" for r in rounds)

    end = statistics.median(r["end"] for r in rounds)
    verdict = "meets" if end <= TARGET_SECONDS else "**misses**"
    return [
        ["measure (from the request sent)", "median", "per round (s)", "target"],
        [
            f"201: the batch of {leads:,} leads and its job committed",
            cell("accepted"),
            each("accepted"),
            "≤ 1 s",
        ],
        ["every lead's invocation recorded (flow started)", cell("invocations"), each("invocations"), ""],
        ["every lead's flow instance created, card sent", cell("instances"), each("instances"), ""],
        ["callback accepted by Marketo, every lead successful", cell("callback"), each("callback"), ""],
        [
            "end to end (the later of the two above)",
            cell("end"),
            each("end"),
            f"≤ {TARGET_SECONDS:g} s: {verdict}",
        ],
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="measured batches (after a warm-up)")
    parser.add_argument("--leads", type=int, default=1000, help="leads per batch (Marketo sends up to 1,000)")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", DEFAULT_PG),
        help="a PostgreSQL database for the benchmark alone: it is emptied",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS),
        help="Redis for the benchmark alone: it is flushed",
    )
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.rounds < 1 or not 1 <= args.leads <= 1000:
        parser.error("--rounds must be at least 1 and --leads from 1 to 1000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    info = machine()
    servers: list[Server] = []
    try:
        info["postgresql server"] = postgres_version(args.pg_url.rsplit("/", 1)[0] + "/postgres")
        with tempfile.TemporaryDirectory(prefix="hub-bench-mkto-") as tmp, stopping(servers):
            hub, fake, key = set_up(args, Path(tmp), servers)
            with Progress(args.pg_url) as progress:
                one_batch(hub, fake, key, progress, 10, 0)  # warm-up: connections, the flow's definition
                rounds = [
                    one_batch(hub, fake, key, progress, args.leads, n) for n in range(1, args.rounds + 1)
                ]
    except BenchError as exc:
        print(f"bench/marketo.py: {exc}", file=sys.stderr)
        return 1
    cells = table(rounds, args.leads)
    print()
    print_table(cells)
    if not args.no_write:
        lines = [
            f"Run on {started:%Y-%m-%d %H:%M} UTC with:",
            "",
            "```",
            command_line(),
            "```",
            "",
            f"PostgreSQL and Redis on 127.0.0.1; one `hub serve` process, one `hub worker` process and the "
            f"fake Marketo (`python -m tests.fakes.marketo`) as a process of its own. Each round sends a new "
            f"{args.leads:,}-lead `submitAsyncAction` invocation (new customers, the flow-step fields set) "
            f"after a 10-lead warm-up; {args.rounds} rounds, median shown. The callback is checked to report "
            "every lead successful.",
            "",
            markdown(cells),
            "",
            "| machine | |",
            "|---|---|",
            *[f"| {k} | {v} |" for k, v in info.items()],
        ]
        write_doc(DOC, "\n".join(lines), BEGIN, END)
        print(f"written to {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The baseline of ``bench/api.py``: a bare Litestar endpoint, served the way ``hub serve`` serves Hub.

``GET /v1/{env}/users/{user_id}`` with the same path parameters as Hub's customer GET, returning a
small msgspec Struct: no middleware, no guard, no dependency, no database. Whatever Hub costs on top
of this is Hub's own doing (middleware, auth, the query, the encoding of a full profile).

Run: ``python bench/baseline_app.py --host 127.0.0.1 --port 8001 [--workers 1]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec
import uvicorn
from litestar import Litestar, get


class User(msgspec.Struct, rename="camel"):
    user_id: str
    env: str


@get("/v1/{env:str}/users/{user_id:str}")
async def get_user(env: str, user_id: str) -> User:
    return User(user_id, env)


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def create_app() -> Litestar:
    return Litestar(route_handlers=[get_user, healthz], debug=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    # The same uvicorn.run call as `hub serve` (hub/cli.py), so the server is not the difference.
    uvicorn.run("bench.baseline_app:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_config=None, access_log=False, server_header=False,
                proxy_headers=True, timeout_graceful_shutdown=30, lifespan="on",
                app_dir=str(Path(__file__).resolve().parent.parent))


if __name__ == "__main__":
    sys.exit(main())

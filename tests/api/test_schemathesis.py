"""Property-based run of schemathesis over the app's own OpenAPI document, in process.

Every operation gets positive and negative examples (bounded, derandomized) with a valid admin token
of a real environment and the ``env`` path parameter pinned to it, so requests reach the handlers.
Checks: no 5xx, and every 4xx is ``application/problem+json`` with fields and reasons.

The app runs on the test's event loop (its database and Redis connections live there), while
hypothesis drives schemathesis from a worker thread and hands each request back to the loop.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from hub.api.problems import PROBLEM_JSON

MAX_EXAMPLES = 25
BASE_URL = "http://testserver"
HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failing example
    suppress_health_check=list(HealthCheck),
)


def problem_json_for_every_4xx(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 4xx is RFC 9457 problem+json with type/title/status/detail and named fields."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith(PROBLEM_JSON), (
        f"{response.status_code} answered with content-type {content_type!r}")
    body = json.loads(response.content)
    for member in ("type", "title", "status", "detail", "errors", "requestId"):
        assert member in body, f"problem document lacks {member!r}: {body}"
    assert body["status"] == response.status_code, body
    assert body["errors"] and all(e.get("field") and e.get("reason") for e in body["errors"]), body
    return True


def _to_httpx(kwargs: dict[str, Any]) -> dict[str, Any]:
    """schemathesis serializes a case for ``requests``; the same request for httpx."""
    request: dict[str, Any] = {"method": kwargs["method"], "url": kwargs["url"],
                               "headers": dict(kwargs.get("headers") or {})}
    if kwargs.get("params"):
        request["params"] = kwargs["params"]
    if "json" in kwargs:
        request["content"] = json.dumps(kwargs["json"]).encode()
        request["headers"].setdefault("Content-Type", "application/json")
    elif isinstance(kwargs.get("data"), (bytes, str)):
        request["content"] = kwargs["data"]
    elif kwargs.get("data") is not None:
        request["data"] = kwargs["data"]
    if kwargs.get("files"):
        request["files"] = kwargs["files"]
    if kwargs.get("cookies"):
        request["headers"]["Cookie"] = "; ".join(f"{k}={v}" for k, v in kwargs["cookies"].items())
    return request


async def test_the_openapi_document_survives_schemathesis(hub, hub_client, hub_env):
    from hub_plugins.sdk_streams.testing import make_signer

    raw = (await hub_client.get("/schema/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(raw)
    loop = asyncio.get_running_loop()
    auth = hub_env.headers()["Authorization"]
    # End-user SDK routes take a customer's JWT (signed by the bank's backend), not a client token.
    signer = await make_signer(hub, hub_env.id)
    end_user = f"Bearer {signer.token('fuzz-user', expires_in=3600)}"

    def send(case: Any) -> httpx.Response:
        if "env" in (case.path_parameters or {}):
            case.path_parameters["env"] = hub_env.id
        token = end_user if "/sdk/" in case.path else auth
        kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers={"Authorization": token})
        request = _to_httpx(kwargs)
        future = asyncio.run_coroutine_threadsafe(hub_client.request(**request), loop)
        return future.result(timeout=60)

    statuses: Counter[tuple[str, int]] = Counter()

    def run() -> tuple[list[str], int]:
        failures: list[str] = []
        calls = 0
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @HYPOTHESIS
                @given(case=operation.as_strategy(generation_mode=mode))
                def check(case: Any) -> None:
                    nonlocal calls
                    calls += 1
                    response = send(case)
                    statuses[(case.operation.label, response.status_code)] += 1
                    case.validate_response(response, checks=[not_a_server_error,
                                                              problem_json_for_every_4xx])

                try:
                    check()
                except Unsatisfiable:
                    pass  # nothing about this operation can be invalid (e.g. free-text path parameters only)
                except Exception as exc:  # collect every operation's failure, then report them all
                    failures.append(f"{operation.label} [{mode.value}]: {exc}")
        return failures, calls

    started = time.perf_counter()
    failures, calls = await asyncio.to_thread(run)
    elapsed = time.perf_counter() - started
    print(f"schemathesis: {calls} calls in {elapsed:.1f}s")
    for (label, status), count in sorted(statuses.items()):
        print(f"  {label:40} {status} x{count}")
    # The token and the pinned environment got requests through to the handlers.
    assert statuses[("GET /v1/{env}/users", 200)] > 0
    assert statuses[("PUT /v1/{env}/users", 200)] > 0
    assert not any(status in (401, 403) for (label, status) in statuses if "oauth" not in label)
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)

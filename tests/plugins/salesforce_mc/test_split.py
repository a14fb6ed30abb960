"""The decision split: ``{decisionUrl}/execute`` answers ``{"branchResult": ...}`` on what Hub knows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.core.clock import now
from hub.db import tables
from hub.services import customers as customer_service
from hub_plugins.sdk_streams import devices
from tests.plugins.salesforce_mc.conftest import Journey, lifecycle_body


@pytest.fixture
async def ready(journey: Journey) -> Journey:
    await journey.install()
    await journey.publish()
    return journey


async def branch(journey: Journey, user: str, **arguments: str) -> str:
    in_arguments = [{"flowConfigId": "order"}, {"seenWithinDays": "30"}, arguments]
    response = await journey.execute(journey.payload(in_arguments, keyValue=user), split=True)
    assert response.status_code == 200, response.text
    return str(response.json()["branchResult"])


async def test_each_outcome(ready, hub, hub_env, run_jobs):
    assert await branch(ready, "nobody") == "not_reachable"

    await customer_service.mark_seen(hub, hub_env.id, "app-user")
    assert await branch(ready, "app-user") == "seen_recently"
    from sqlalchemy import update
    async with hub.db.begin() as conn:
        await conn.execute(update(tables.customer).where(tables.customer.c.user_id == "app-user").values(
            last_seen_at=now() - timedelta(days=40)))
    assert await branch(ready, "app-user") == "not_reachable"
    assert await branch(ready, "app-user", seenWithinDays="60") == "seen_recently"

    await devices.register_device(hub, hub_env.id, "push-user", platform="ios", token="a" * 64)
    assert await branch(ready, "push-user") == "push_device"

    started = await ready.execute(ready.payload([{"flowConfigId": "order", "amount": "1"}],
                                                keyValue="push-user"))
    assert started.status_code == 200
    await run_jobs()
    assert await branch(ready, "push-user") == "open_card"
    no_flow = await ready.execute(ready.payload([{"seenWithinDays": "30"}], keyValue="push-user"), split=True)
    assert no_flow.json()["branchResult"] == "push_device"


async def test_split_requires_a_signed_jwt_and_a_valid_day_count(ready):
    plain = await ready.client.post(ready.path("execute", split=True), json=ready.payload())
    assert plain.status_code == 415
    forged = await ready.execute(raw=ready.jwt(ready.payload(), secret="x" * 40).encode(), split=True)
    assert forged.status_code == 401
    bad = await ready.execute(ready.payload([{"seenWithinDays": "0"}]), split=True)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "inArguments.seenWithinDays"


async def test_split_lifecycle_validates_its_arguments(ready):
    body = {**lifecycle_body("split-1"), "inArguments": [{"flowConfigId": "order"}, {"seenWithinDays": "7"}]}
    assert (await ready.lifecycle("save", body, split=True)).status_code == 200
    assert (await ready.lifecycle("validate", lifecycle_body("split-1"), split=True)).status_code == 200
    bad = {**lifecycle_body("split-2"), "inArguments": [{"flowConfigId": "missing"}, {"seenWithinDays": "x"}]}
    await ready.lifecycle("save", bad, split=True)
    response = await ready.lifecycle("validate", lifecycle_body("split-2"), split=True)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["inArguments.flowConfigId",
                                                               "inArguments.seenWithinDays"]

"""``save``, ``validate``, ``publish`` and ``stop``: plain JSON or JWT; bindings recorded."""

from __future__ import annotations

import pytest

from hub_plugins.salesforce_mc import bindings
from tests.plugins.salesforce_mc.conftest import ORDER_FLOW, Journey, lifecycle_body


@pytest.fixture
async def ready(journey: Journey) -> Journey:
    await journey.install()
    await journey.publish()
    return journey


def configured(activity: str = "act-1", **arguments: str) -> dict:
    return {**lifecycle_body(activity), "inArguments": [{"flowConfigId": "order"}, arguments]}


async def test_plain_json_lifecycle_calls_record_a_binding_from_save_to_stop(ready, hub, hub_env):
    for action, state in (("save", "saved"), ("validate", "validated"), ("publish", "published"),
                          ("stop", "stopped")):
        response = await ready.lifecycle(action, lifecycle_body())
        assert response.status_code == 200, (action, response.text)
        assert response.json()["state"] == state
    row = await bindings.get(hub, hub_env.id, "act-1")
    assert row["interaction_id"] == "c84b8fb2-bb59-4402-b878-f28fa263e8d7"
    assert row["interaction_version"] == "1" and row["published_at"] and row["stopped_at"]


async def test_the_ui_stores_the_arguments_and_validate_checks_them(ready, hub, hub_env):
    saved = await ready.lifecycle("save", configured(amount="{{Contact.Attribute.Orders.Amount}}"))
    assert saved.status_code == 200 and saved.json()["flowConfigId"] == "order"
    validated = await ready.lifecycle("validate", lifecycle_body())
    assert validated.status_code == 200, validated.text
    assert validated.json()["configurationChecked"] is True
    published = await ready.lifecycle("publish", lifecycle_body())
    assert published.status_code == 200 and published.json()["state"] == "published"
    # A later save of the published activity does not move it back.
    again = await ready.lifecycle("save", lifecycle_body())
    assert again.json()["state"] == "published"


async def test_an_activity_hub_never_saw_configured_is_not_blocked(ready):
    response = await ready.lifecycle("validate", lifecycle_body("never-configured"))
    assert response.status_code == 200
    assert response.json()["configurationChecked"] is False


@pytest.mark.parametrize(("arguments", "field", "reason"), [
    ([{"flowConfigId": ""}], "inArguments.flowConfigId", "no flow chosen"),
    ([{"flowConfigId": "missing", "amount": "1"}], "inArguments.flowConfigId", "no flow 'missing'"),
    ([{"flowConfigId": "draft", "amount": "1"}], "inArguments.flowConfigId", "no published version"),
    ([{"flowConfigId": "no-sfmc", "amount": "1"}], "inArguments.flowConfigId", "does not allow SFMC"),
    ([{"flowConfigId": "order"}], "inArguments.amount", "required"),
    ([{"flowConfigId": "order", "amount": ""}], "inArguments.amount", "required"),
])
async def test_validate_and_publish_answer_4xx_for_a_configuration_that_cannot_run(
        ready, hub_client, hub_env, arguments, field, reason):
    await hub_client.post(f"/v1/{hub_env.id}/flows", headers=hub_env.headers(),
                          json={"id": "draft", "definition": ORDER_FLOW})
    await ready.publish("no-sfmc", {**ORDER_FLOW, "triggers": {"sfmc": False}})
    assert (await ready.lifecycle("save", {**lifecycle_body(), "inArguments": arguments})).status_code == 200
    for action in ("validate", "publish"):
        response = await ready.lifecycle(action, lifecycle_body())
        assert response.status_code == 422, response.text
        error = response.json()["errors"][0]
        assert error["field"] == field and reason in error["reason"]


async def test_jwt_lifecycle_calls_are_verified(ready):
    good = await ready.lifecycle("validate", configured(amount="5"), jwt=True)
    assert good.status_code == 200, good.text
    forged = await ready.lifecycle("publish", lifecycle_body(), jwt=True,
                                   secret="not-the-package-secret-0123456789abcdef")
    assert forged.status_code == 401
    assert forged.json()["errors"][0]["field"] == "body"


async def test_the_full_activity_as_journey_builder_stores_it_is_read_too(ready):
    from tests.plugins.salesforce_mc.conftest import INIT_ACTIVITY
    activity = {**INIT_ACTIVITY, **lifecycle_body("from-ui")}
    activity["arguments"] = {**INIT_ACTIVITY["arguments"],
                             "execute": {"inArguments": [{"flowConfigId": "order"}, {"amount": "3"}]}}
    response = await ready.lifecycle("save", activity)
    assert response.status_code == 200 and response.json()["flowConfigId"] == "order"


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"interactionId": "x"}, 400, "activityObjectID"),
    ({"activityObjectID": "a", "interactionVersion": ["1"]}, 400, "interactionVersion"),
    ({"activityObjectID": "a", "inArguments": "x"}, 400, "inArguments"),
])
async def test_malformed_lifecycle_bodies_are_4xx(ready, body, status, field):
    response = await ready.lifecycle("save", body)
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["field"] == field


async def test_lifecycle_calls_start_nothing(ready, hub):
    await ready.lifecycle("publish", configured(amount="5"))
    from sqlalchemy import func, select

    from hub.db import tables
    async with hub.db.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(tables.invocation))).scalar_one() == 0


async def test_other_content_types_and_unknown_calls_are_refused(ready, hub_client):
    xml = await hub_client.post(ready.path("save"), content=b"<a/>", headers={"Content-Type": "text/xml"})
    assert xml.status_code == 415
    assert (await ready.lifecycle("unpublish", lifecycle_body())).status_code == 404

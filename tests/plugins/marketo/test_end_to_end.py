"""From Marketo's call to cards for the leads' users and the callback Marketo accepts."""

from sqlalchemy import func, select

from hub.db import tables
from tests.plugins.marketo.conftest import leads, sample


async def _cards(hub, env) -> dict[str, str]:
    c = tables.card.c
    async with hub.db.connect() as conn:
        rows = (await conn.execute(select(c.user_id, c.content).where(c.environment_id == env))).all()
    return {r.user_id: r.content["elements"][0]["text"] for r in rows}


async def test_the_sample_invocation_starts_the_flow_and_calls_back(ready, fake, hub, hub_env, run_jobs):
    body = sample(fake)
    accepted = await ready.submit(body)
    assert accepted.status_code == 201, accepted.text
    await run_jobs()
    assert await _cards(hub, hub_env.id) == {"1000000": "Hello: 10% off"}
    (callback,) = fake.accepted
    assert callback.headers["x-api-key"] == fake.callback_key
    assert callback.headers["x-callback-token"] == body["token"]
    invocation = f"mkto:{accepted.json()['batchId']}:1000000"
    assert callback.body == {
        "munchkinId": "AAA-999-ZZZ",
        "objectData": [
            {
                "leadData": {"id": 1000000},
                "activityData": {"success": True, "hubInvocationId": invocation, "hubUserId": "1000000"},
            }
        ],
    }


async def test_a_batch_of_leads_gets_a_card_each_and_one_callback_with_every_lead(
    ready, fake, hub, hub_env, run_jobs
):
    await ready.configure(status=200, writeBack=["hubInvocationId", "hubLastStatus", "hubStartedAt"])
    body = fake.invocation(leads(120), "welcome", step={"offer": "free shipping"})
    accepted = await ready.submit(body)
    assert accepted.status_code == 201, accepted.text
    await run_jobs()
    cards = await _cards(hub, hub_env.id)
    assert len(cards) == 120 and set(cards.values()) == {"Hello: free shipping"}
    (callback,) = fake.accepted
    data = callback.body["objectData"]
    assert [d["leadData"]["id"] for d in data] == [lead["id"] for lead in leads(120)]
    assert all(d["activityData"]["success"] for d in data)
    first = data[0]["leadData"]
    assert first["hubLastStatus"] == "started" and first["hubInvocationId"].startswith("mkto:")
    assert first["hubStartedAt"].endswith("Z") and "." not in first["hubStartedAt"]
    batch = await ready.batch(accepted.json()["batchId"])
    assert batch["state"] == "completed" and batch["leadsStarted"] == 120
    assert batch["callback"] == {
        "status": "sent",
        "attempts": 1,
        "lastStatusCode": 200,
        "lastError": None,
        "nextAttemptAt": None,
    }
    async with hub.db.connect() as conn:
        sources = (
            await conn.execute(
                select(tables.invocation.c.source, func.count()).group_by(tables.invocation.c.source)
            )
        ).all()
    assert [tuple(s) for s in sources] == [("marketo", 120)]


async def test_variables_come_from_the_flow_step_else_from_mapped_lead_fields(
    ready, fake, hub, hub_env, run_jobs
):
    people = [{"id": 7, "offer": "a lead's own offer", "amount": "12.5"}, {"id": 8}]
    body = fake.invocation(people, "welcome", step={"vip": "true"})
    body["objectData"][1]["flowStepContext"]["offer"] = "the step's offer"
    assert (await ready.submit(body)).status_code == 201
    await run_jobs()
    i = tables.flow_instance.c
    async with hub.db.connect() as conn:
        rows = {r.user_id: r.variables for r in await conn.execute(select(i.user_id, i.variables))}
    assert rows["7"]["offer"] == "a lead's own offer" and rows["7"]["amount"] == 12.5
    assert rows["7"]["vip"] is True and rows["7"]["fixed"] == "always"
    assert rows["8"]["offer"] == "the step's offer" and rows["8"]["amount"] is None


async def test_users_by_email_and_leads_without_one_fail_alone(ready, fake, hub, hub_env, run_jobs):
    await ready.configure(status=200, userIdFrom="email", writeBack=["hubUserId", "hubLastStatus"])
    body = fake.invocation(
        [
            {"id": 1, "email": "ada@example.com"},
            {"id": 2, "email": ""},
            {"id": 3, "email": "bad/id@example.com"},
        ],
        "welcome",
    )
    assert (await ready.submit(body)).status_code == 201
    await run_jobs()
    assert set(await _cards(hub, hub_env.id)) == {"ada@example.com"}
    data = {d["leadData"]["id"]: d for d in fake.accepted[0].body["objectData"]}
    assert data[1]["leadData"] == {"id": 1, "hubUserId": "ada@example.com", "hubLastStatus": "started"}
    assert data[2]["activityData"]["errorCode"] == "EMAIL_MISSING"
    assert data[2]["leadData"] == {"id": 2, "hubLastStatus": "EMAIL_MISSING"}
    assert data[3]["activityData"]["success"] is False
    assert data[3]["activityData"]["errorCode"] == "INVALID_USER_ID"
    assert "errorCode" not in fake.accepted[0].body


async def test_a_variable_hub_cannot_read_fails_that_lead_only(ready, fake, hub, hub_env, run_jobs):
    body = fake.invocation([{"id": 1}, {"id": 2}], "welcome")
    body["objectData"][1]["flowStepContext"]["amount"] = "twelve"
    assert (await ready.submit(body)).status_code == 201
    await run_jobs()
    data = fake.accepted[0].body["objectData"]
    assert data[0]["activityData"]["success"] is True
    assert data[1]["activityData"]["success"] is False
    assert data[1]["activityData"]["errorCode"] == "INVALID_VARIABLE"
    assert "amount" in data[1]["activityData"]["reason"]


async def test_a_flow_archived_after_the_batch_came_is_a_batch_level_error(
    ready, fake, hub, hub_env, run_jobs
):
    body = fake.invocation(leads(3), "welcome")
    accepted = await ready.submit(body)
    assert accepted.status_code == 201
    archived = await ready.client.post(f"/v1/{hub_env.id}/flows/welcome/archive", headers=hub_env.headers())
    assert archived.status_code == 200, archived.text
    await run_jobs()
    assert await _cards(hub, hub_env.id) == {}
    callback = fake.accepted[0].body
    assert callback["errorCode"] == "HUB_BATCH_FLOW_UNAVAILABLE"
    assert "archived" in callback["errorMessage"]
    assert {d["activityData"]["errorCode"] for d in callback["objectData"]} == {"FLOW_UNAVAILABLE"}
    batch = await ready.batch(accepted.json()["batchId"])
    assert batch["state"] == "completed" and batch["leadsFailed"] == 3 and "archived" in batch["error"]

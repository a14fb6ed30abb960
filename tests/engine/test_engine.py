import asyncio
import copy

import pytest

from hub.services import cards as card_service
from hub.services.outbox import transaction
from tests.engine.conftest import CARD_FLOW, FORM_FLOW


async def complete(hub, env, card_id, values):
    async with transaction(hub) as tx:
        await card_service.transition(hub, tx, env, card_id, "complete", source="user", values=values)


async def test_a_single_user_start_sends_one_card_with_every_event(flows, hub_env, run_jobs):
    await flows.users({"userId": "ana", "fields": {"name": "Ana"}})
    await flows.publish("welcome", CARD_FLOW)
    started = (await flows.start("welcome", target={"usersById": ["ana"]},
                                 payload={"metadata": {"campaign": "c1"}}))["flows"][0]
    assert started["created"] is True and started["status"] == "pending"
    await run_jobs()
    [card] = await flows.cards(userId="ana")
    assert card["status"] == "active" and card["priority"] == 7
    assert card["content"]["elements"][0]["text"] == "Hi Ana"
    assert card["content"]["elements"][1]["text"] == "Your offer: 10% off"
    assert card["flowInvocationId"] == started["flowInvocationId"]
    names = [e["analyticsEvent"] for e in await flows.events(userId="ana")]
    for name in ("action-flow-started", "card-published", "action-flow-step-completed",
                 "action-flow-completed"):
        assert names.count(name) == 1, names
    published = next(e for e in await flows.events(userId="ana")
                     if e["analyticsEvent"] == "card-published")
    chain = published["platformContext"]
    assert chain["flowConfigId"] == "welcome" and chain["flowInvocationId"] == started["flowInvocationId"]
    assert chain["flowInstanceId"] == card["flowInstanceId"] and chain["metadata"] == {"campaign": "c1"}
    assert published["cardContext"]["cardInstanceId"] == card["cardInstanceId"]
    assert chain["triggerEventSource"] == "live"


async def test_the_same_invocation_id_starts_one_invocation(flows, run_jobs):
    await flows.publish("welcome", CARD_FLOW)
    first = await flows.start("welcome", flowInvocationId="inv-1", target={"usersById": ["bo"]})
    again = await flows.start("welcome", flowInvocationId="inv-1", target={"usersById": ["bo"]})
    assert first["flows"][0]["created"] and not again["flows"][0]["created"]
    await run_jobs()
    assert len(await flows.cards(userId="bo")) == 1


async def test_concurrent_starts_with_one_invocation_id_start_it_once(flows, run_jobs):
    await flows.publish("welcome", CARD_FLOW)
    results = await asyncio.gather(*[
        flows.start("welcome", flowInvocationId="race", target={"usersById": ["cy"]}) for _ in range(4)])
    assert sum(r["flows"][0]["created"] for r in results) == 1
    await run_jobs()
    assert len(await flows.cards(userId="cy")) == 1


async def test_concurrent_starts_share_transactions_and_each_gets_its_own_invocation(
        flows, hub, hub_client, hub_env, run_jobs):
    from sqlalchemy import event

    await flows.publish("welcome", CARD_FLOW)
    commits = []

    def count(_conn):
        commits.append(1)

    event.listen(hub.db.engine.sync_engine, "commit", count)
    try:
        results = await asyncio.gather(*[
            flows.start("welcome", target={"usersById": [f"user-{n}", "shared"]}) for n in range(30)])
    finally:
        event.remove(hub.db.engine.sync_engine, "commit", count)
    ids = [r["flows"][0]["flowInvocationId"] for r in results]
    assert len(set(ids)) == 30 and all(r["flows"][0]["created"] for r in results)
    assert len(commits) < 30  # group commit: starts that arrive together share a transaction
    for n in (0, 29):
        profile = await hub_client.get(f"/v1/{hub_env.id}/users/user-{n}", headers=hub_env.headers())
        assert profile.status_code == 200
    await run_jobs()
    assert len(await flows.cards(userId="shared")) == 30


async def test_a_start_that_fails_in_a_shared_transaction_fails_alone(flows, hub, run_jobs, monkeypatch):
    from hub.services import triggers

    await flows.publish("welcome", CARD_FLOW)
    real = triggers.ensure_customers

    async def refuse_boom(conn, env, users, **kwargs):
        if "boom" in users:
            raise RuntimeError("the database refused this one")
        return await real(conn, env, users, **kwargs)

    monkeypatch.setattr(triggers, "ensure_customers", refuse_boom)
    item = {"target": {"usersById": ["x"]}, "payload": {}}
    results = await asyncio.gather(*[
        triggers.start_flows(hub, flows.env.id, "welcome",
                             [{**item, "target": {"usersById": [user]}}]) for user in ("a", "boom", "b")],
        return_exceptions=True)
    assert isinstance(results[1], RuntimeError)
    assert results[0][0]["created"] and results[2][0]["created"]
    await run_jobs()
    assert len(await flows.cards(userId="a")) == 1 and len(await flows.cards(userId="b")) == 1
    assert await flows.cards(userId="boom") == []


async def test_a_single_customer_start_runs_the_others_waiting_for_their_jobs(flows, hub, run_jobs):
    from hub.services import fanout, triggers

    await flows.publish("welcome", CARD_FLOW)
    started = [(await triggers.start_flows(hub, flows.env.id, "welcome",
                                           [{"target": {"usersById": [f"w{n}"]}}]))[0] for n in range(5)]
    await hub.redis.flushdb()  # their jobs are gone: only the first one will be run, by hand
    assert await fanout.run_invocation({"hub": hub}, flows.env.id, started[0]["flowInvocationId"]) == 5
    for n in range(5):
        assert len(await flows.cards(userId=f"w{n}")) == 1
    for invocation in started[1:]:  # their own jobs, run late, find nothing to do
        assert await fanout.run_invocation({"hub": hub}, flows.env.id, invocation["flowInvocationId"]) == 0
    for n in range(5):
        assert len(await flows.cards(userId=f"w{n}")) == 1


async def test_unknown_users_get_a_profile(flows, hub_client, hub_env, run_jobs):
    await flows.publish("welcome", CARD_FLOW)
    await flows.start("welcome", target={"usersById": ["new-user"]})
    profile = await hub_client.get(f"/v1/{hub_env.id}/users/new-user", headers=hub_env.headers())
    assert profile.status_code == 200
    await run_jobs()
    assert len(await flows.cards(userId="new-user")) == 1


async def test_variables_are_checked_against_the_flow(flows):
    await flows.publish("pay", FORM_FLOW)
    missing = await flows.start("pay", target={"usersById": ["u"]}, status=422)
    assert missing["errors"][0]["field"] == "flows[0].payload.variables.amount"
    wrong = await flows.start("pay", target={"usersById": ["u"]},
                              payload={"variables": {"amount": "lots"}}, status=422)
    assert wrong["errors"][0]["field"] == "flows[0].payload.variables.amount"
    unknown = await flows.start("pay", target={"usersById": ["u"]},
                                payload={"variables": {"amount": 5, "nope": 1}}, status=422)
    assert any(e["field"] == "flows[0].payload.variables.nope" for e in unknown["errors"])


async def test_a_variable_that_is_not_overridable_cannot_be_given(flows):
    definition = copy.deepcopy(CARD_FLOW)
    definition["variables"][0]["overridable"] = False
    await flows.publish("fixed", definition)
    body = await flows.start("fixed", target={"usersById": ["u"]},
                             payload={"variables": {"offer": "free"}}, status=422)
    assert body["errors"][0]["field"] == "flows[0].payload.variables.offer"


async def test_bad_targets_and_card_options_name_the_field(flows):
    await flows.publish("welcome", CARD_FLOW)
    for item, field in [
        ({"target": {}}, "flows[0].target"),
        ({"target": {"usersById": []}}, "flows[0].target.usersById"),
        ({"target": {"tags": ["a"], "match": "some"}}, "flows[0].target.match"),
        ({"target": {"usersById": ["u"]}, "payload": {"cardOptions": {"priority": 11}}},
         "flows[0].payload.cardOptions.priority"),
        ({"target": {"usersById": ["u"]}, "payload": {"cardOptions": {"targetStreamIds": ["nope"]}}},
         "flows[0].payload.cardOptions.targetStreamIds"),
        ({"target": {"usersById": ["u"]}, "payload": {"cardOptions": {"expiresInterval": "soon"}}},
         "flows[0].payload.cardOptions.expiresInterval"),
        ({"target": {"usersById": ["u"]}, "surprise": 1}, "flows[0].surprise"),
    ]:
        body = await flows.start("welcome", status=422, **item)
        assert body["errors"][0]["field"] == field, (item, body)


async def test_unknown_and_unpublished_flows(flows, hub_client, hub_env):
    await flows.start("ghost", target={"usersById": ["u"]}, status=404)
    created = await hub_client.post(f"/v1/{hub_env.id}/flows", headers=hub_env.headers(),
                                    json={"id": "draft-only", "definition": CARD_FLOW})
    assert created.status_code == 201
    await flows.start("draft-only", target={"usersById": ["u"]}, status=409)


async def test_a_test_start_reaches_test_users_only_and_says_so(flows, run_jobs):
    await flows.users({"userId": "tester", "isTestUser": True, "tags": ["t"]},
                      {"userId": "real", "tags": ["t"]})
    await flows.publish("welcome", CARD_FLOW)
    await flows.start("welcome", test=True, target={"tags": ["t"]})
    await run_jobs()
    assert len(await flows.cards(userId="tester")) == 1
    assert await flows.cards(userId="real") == []
    published = [e for e in await flows.events(userId="tester") if e["analyticsEvent"] == "card-published"]
    assert published[0]["platformContext"]["triggerEventSource"] == "test"


async def test_targets_by_tags_any_and_all_filter_and_all_test_users(flows, run_jobs):
    await flows.users({"userId": "a", "tags": ["x", "y"], "fields": {"city": "Oslo"}},
                      {"userId": "b", "tags": ["x"], "fields": {"city": "Rome"}, "isTestUser": True},
                      {"userId": "c", "tags": ["z"], "fields": {"city": "Oslo"}})
    await flows.publish("welcome", CARD_FLOW)

    async def reached(target):
        invocation = (await flows.start("welcome", target=target))["flows"][0]["flowInvocationId"]
        await run_jobs()
        return sorted(c["userId"] for c in await flows.cards(flowInvocationId=invocation))

    assert await reached({"tags": ["x", "z"]}) == ["a", "b", "c"]
    assert await reached({"tags": ["x", "y"], "match": "all"}) == ["a"]
    assert await reached({"filter": {"city": "Oslo"}}) == ["a", "c"]
    assert await reached({"filter": [{"field": "city", "op": "ne", "value": "Oslo"}]}) == ["b"]
    assert await reached({"allTestUsers": True}) == ["b"]


async def test_a_large_fan_out_runs_in_chunks_and_reaches_everyone_once(flows, run_jobs, hub_client, hub_env):
    users = [{"userId": f"user-{i:05d}", "tags": ["all"]} for i in range(1200)]
    for start in range(0, 1200, 600):
        await flows.users(*users[start:start + 600])
    await flows.publish("welcome", CARD_FLOW)
    invocation = (await flows.start("welcome", target={"tags": ["all"]}))["flows"][0]["flowInvocationId"]
    await run_jobs()
    status = (await hub_client.get(f"/v1/{hub_env.id}/action-flow/invocations/{invocation}",
                                   headers=hub_env.headers())).json()
    assert status["status"] == "completed"
    assert status["targeted"] == status["started"] == 1200
    from sqlalchemy import func, select

    from hub.db import tables

    async with flows.hub.db.connect() as conn:
        k = tables.card.c
        total, distinct = (await conn.execute(select(func.count(), func.count(k.user_id.distinct()))
                                              .where(k.invocation_id == invocation))).one()
    assert total == distinct == 1200


async def test_a_form_card_waits_for_completion_then_branches(flows, hub, hub_env, run_jobs):
    await flows.publish("pay", FORM_FLOW)
    await flows.start("pay", target={"usersById": ["dee"]}, payload={"variables": {"amount": 42}})
    await run_jobs()
    [ask] = await flows.cards(userId="dee")
    assert ask["content"]["elements"][0]["text"] == "Did you pay 42?"
    await complete(hub, hub_env.id, ask["cardInstanceId"], {"mine": False})
    await run_jobs()
    cards = {c["templateId"]: c for c in await flows.cards(userId="dee")}
    assert set(cards) == {"ask", "blocked"}
    assert cards["ask"]["status"] == "completed" and cards["ask"]["values"] == {"mine": False}
    instance = (await flows.client.get(
        f"/v1/{hub_env.id}/action-flow/instances/{ask['flowInstanceId']}", headers=hub_env.headers())).json()
    assert instance["status"] == "completed"
    assert instance["steps"]["wait"]["event"] == "card-completed"


async def test_the_branch_reads_the_submitted_values(flows, hub, hub_env, run_jobs):
    await flows.publish("pay", FORM_FLOW)
    await flows.start("pay", target={"usersById": ["dot"]}, payload={"variables": {"amount": 7}})
    await run_jobs()
    [ask] = await flows.cards(userId="dot")
    await complete(hub, hub_env.id, ask["cardInstanceId"], {"mine": True})
    await run_jobs()
    assert {c["templateId"] for c in await flows.cards(userId="dot")} == {"ask", "thanks"}
    instance = (await flows.client.get(
        f"/v1/{hub_env.id}/action-flow/instances/{ask['flowInstanceId']}", headers=hub_env.headers())).json()
    assert instance["steps"]["ask"]["values"] == {"mine": True}
    assert instance["steps"]["ask"]["status"] == "completed"


async def test_invalid_submitted_values_are_refused(flows, hub, hub_env, run_jobs):
    import pytest

    await flows.publish("pay", FORM_FLOW)
    await flows.start("pay", target={"usersById": ["eve"]}, payload={"variables": {"amount": 1}})
    await run_jobs()
    [ask] = await flows.cards(userId="eve")
    with pytest.raises(card_service.CardActionError) as error:
        await complete(hub, hub_env.id, ask["cardInstanceId"], {"mine": "yes"})
    assert error.value.issues[0].field == "values.mine"
    assert (await flows.cards(userId="eve"))[0]["status"] == "active"


async def test_a_wait_times_out_onto_its_timeout_path(flows, clock, run_jobs):
    await flows.publish("pay", FORM_FLOW)
    await flows.start("pay", target={"usersById": ["fay"]}, payload={"variables": {"amount": 1}})
    await run_jobs()
    clock.advance(minutes=59)
    await flows.fire_due_timers(clock)
    assert {c["templateId"] for c in await flows.cards(userId="fay")} == {"ask"}
    clock.advance(minutes=2)
    await flows.fire_due_timers(clock)
    assert {c["templateId"] for c in await flows.cards(userId="fay")} == {"ask", "late"}


async def test_instances_finish_on_the_version_they_started_with(flows, hub, hub_env, run_jobs):
    await flows.publish("pay", FORM_FLOW)
    await flows.start("pay", target={"usersById": ["gus"]}, payload={"variables": {"amount": 3}})
    await run_jobs()
    v2 = copy.deepcopy(FORM_FLOW)
    v2["cardTemplates"][2]["elements"][0]["text"] = "Version two"
    await flows.publish("pay", v2)
    [ask] = await flows.cards(userId="gus")
    await complete(hub, hub_env.id, ask["cardInstanceId"], {"mine": False})
    await run_jobs()
    blocked = next(c for c in await flows.cards(userId="gus") if c["templateId"] == "blocked")
    assert blocked["content"]["elements"][0]["text"] == "Card blocked"
    assert blocked["flowVersion"] == 1


async def test_a_snooze_moved_later_is_not_ended_by_its_first_timer(flows, hub, hub_env, clock, run_jobs):
    from datetime import timedelta

    await flows.publish("welcome", CARD_FLOW)
    await flows.start("welcome", target={"usersById": ["ned"]})
    await run_jobs()
    [card] = await flows.cards(userId="ned")
    for minutes in (10, 60):
        async with transaction(hub) as tx:
            await card_service.transition(hub, tx, hub_env.id, card["cardInstanceId"], "snooze",
                                          source="user", until=clock.current + timedelta(minutes=minutes))
    clock.advance(minutes=11)
    await flows.fire_due_timers(clock)
    assert (await flows.cards(userId="ned"))[0]["status"] == "snoozed"
    clock.advance(minutes=50)
    await flows.fire_due_timers(clock)
    assert (await flows.cards(userId="ned"))[0]["status"] == "active"


async def test_embargo_expiry_and_snooze_follow_the_clock(flows, hub, hub_env, clock, run_jobs):
    from datetime import timedelta

    await flows.publish("welcome", CARD_FLOW)
    embargo = (clock.current + timedelta(hours=1)).isoformat()
    await flows.start("welcome", target={"usersById": ["hal"]},
                      payload={"cardOptions": {"embargo": embargo, "expiresInterval": "PT3H"}})
    await run_jobs()
    [card] = await flows.cards(userId="hal")
    assert card["status"] == "embargoed"
    clock.advance(hours=1, seconds=1)
    await flows.fire_due_timers(clock)
    assert (await flows.cards(userId="hal"))[0]["status"] == "active"
    async with transaction(hub) as tx:
        await card_service.transition(hub, tx, hub_env.id, card["cardInstanceId"], "snooze",
                                      source="user", until=clock.current + timedelta(minutes=30))
    await run_jobs()
    assert (await flows.cards(userId="hal"))[0]["status"] == "snoozed"
    clock.advance(minutes=31)
    await flows.fire_due_timers(clock)
    assert (await flows.cards(userId="hal"))[0]["status"] == "active"
    clock.advance(hours=3)
    await flows.fire_due_timers(clock)
    assert (await flows.cards(userId="hal"))[0]["status"] == "expired"
    names = [e["analyticsEvent"] for e in await flows.events(userId="hal")]
    for name in ("card-embargoed", "card-published", "card-snoozed", "card-unsnoozed", "card-expired"):
        assert names.count(name) == 1, names
    history = (await flows.client.get(f"/v1/{hub_env.id}/cards/{card['cardInstanceId']}",
                                      headers=hub_env.headers())).json()["history"]
    assert [h["to"] for h in history] == ["embargoed", "active", "snoozed", "active", "expired"]


async def test_cancelling_cards(flows, hub_client, hub_env, run_jobs):
    await flows.publish("welcome", CARD_FLOW)
    await flows.start("welcome", target={"usersById": ["ida", "jon"]})
    await run_jobs()
    ida, jon = sorted(await flows.cards(), key=lambda c: c["userId"])
    url = f"/v1/{hub_env.id}/cards/cancel"
    refused = await hub_client.post(url, headers=hub_env.headers(), json={
        "cardInstanceIds": [ida["cardInstanceId"], jon["cardInstanceId"]]})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "multiple"
    one = await hub_client.post(url, headers=hub_env.headers(), json={
        "cardInstanceIds": [ida["cardInstanceId"]], "reason": "sent in error"})
    assert one.json()["results"] == [{"cardInstanceId": ida["cardInstanceId"], "status": "cancelled"}]
    again = await hub_client.post(url, headers=hub_env.headers(), json={
        "cardInstanceIds": [ida["cardInstanceId"], "no-such-card"], "multiple": True})
    assert [r["status"] for r in again.json()["results"]] == ["unchanged", "not_found"]
    card_url = f"/v1/{hub_env.id}/cards/{ida['cardInstanceId']}"
    history = (await hub_client.get(card_url, headers=hub_env.headers())).json()
    assert history["status"] == "cancelled"
    assert history["history"][-1]["detail"] == {"reason": "sent in error"}
    for bad, field in (({"cardInstanceIds": ["a\x00b"]}, "cardInstanceIds[0]"),
                       ({"cardInstanceIds": [ida["cardInstanceId"]], "reason": "x\x00"}, "reason")):
        refused = await hub_client.post(url, headers=hub_env.headers(), json=bad)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == field


async def test_cancelling_an_invocation_cancels_its_instances_and_open_cards(flows, hub_client, hub_env,
                                                                               run_jobs):
    await flows.publish("pay", FORM_FLOW)
    started = await flows.start("pay", target={"usersById": ["kai", "lou"]},
                                payload={"variables": {"amount": 1}})
    await run_jobs()
    invocation = started["flows"][0]["flowInvocationId"]
    cancelled = await hub_client.post(f"/v1/{hub_env.id}/action-flow/invocations/{invocation}/cancel",
                                      headers=hub_env.headers(), json={"reason": "campaign stopped"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    await run_jobs()
    cards = await flows.cards()
    assert len(cards) == 2 and {c["status"] for c in cards} == {"cancelled"}
    instance = (await hub_client.get(f"/v1/{hub_env.id}/action-flow/instances/{cards[0]['flowInstanceId']}",
                                     headers=hub_env.headers())).json()
    assert instance["status"] == "cancelled" and instance["waitingAt"] == []

async def test_unknown_invocations_and_instances_are_404_naming_the_path(hub_client, hub_env):
    for path, field in [("invocations/nope", "path.invocationId"),
                        ("invocations/nope/cancel", "path.invocationId"),
                        ("instances/nope", "path.instanceId"), ("instances/nope/cancel", "path.instanceId")]:
        method = hub_client.post if path.endswith("cancel") else hub_client.get
        response = await method(f"/v1/{hub_env.id}/action-flow/{path}", headers=hub_env.headers())
        assert response.status_code == 404, path
        assert response.json()["errors"][0]["field"] == field


async def test_stream_containers_start_with_default_and_cards_target_them(
        flows, hub_client, hub_env, run_jobs):
    url = f"/v1/{hub_env.id}/stream-containers"
    listed = (await hub_client.get(url, headers=hub_env.headers())).json()["containers"]
    assert [c["id"] for c in listed] == ["default"]
    created = await hub_client.post(url, headers=hub_env.headers(), json={"id": "offers", "name": "Offers"})
    assert created.status_code == 201
    again = await hub_client.post(url, headers=hub_env.headers(), json={"id": "offers", "name": "Offers"})
    assert again.status_code == 200
    bad = await hub_client.post(url, headers=hub_env.headers(), json={"id": "no spaces", "name": "x"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "id"
    await flows.publish("welcome", CARD_FLOW)
    await flows.start("welcome", target={"usersById": ["zed"]},
                      payload={"cardOptions": {"targetStreamIds": ["offers"], "targetPlatforms": ["ios"]}})
    await run_jobs()
    [card] = await flows.cards(userId="zed")
    assert card["targetStreamIds"] == ["offers"] and card["targetPlatforms"] == ["ios"]


async def test_a_large_fan_out_on_postgresql_analyzes_customer_tables_whose_statistics_are_stale(
        flows, run_jobs, hub):
    """A fan-out bigger than what the statistics say the customer table holds (a fresh import,
    autovacuum not run yet) gets them refreshed before its chunks run."""
    from sqlalchemy import text

    if hub.db.dialect != "postgresql":
        pytest.skip("PostgreSQL statistics")
    users = [{"userId": f"user-{i:05d}", "tags": ["all"]} for i in range(1200)]
    for start in range(0, 1200, 600):
        await flows.users(*users[start:start + 600])
    await flows.publish("welcome", CARD_FLOW)
    estimate = text("SELECT reltuples FROM pg_class WHERE oid = 'hub_customer'::regclass")
    async with hub.db.begin() as conn:  # as right after a large import: nothing analysed yet
        await conn.execute(text("UPDATE pg_class SET reltuples = -1 WHERE oid = 'hub_customer'::regclass"))
    async with hub.db.connect() as conn:
        assert (await conn.execute(estimate)).scalar() == -1
    await flows.start("welcome", target={"tags": ["all"]})
    await run_jobs()
    async with hub.db.connect() as conn:
        assert (await conn.execute(estimate)).scalar() >= 1200

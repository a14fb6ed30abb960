"""HTTP, customer-update, push, delay and parallel steps, and the fraud alert example end to end."""

import copy
import json
from pathlib import Path

import msgspec
import pytest

from hub.services import cards as card_service
from tests.fakes.http_recorder import http_recorder

EXAMPLE = json.loads((Path(__file__).resolve().parents[2] / "examples/flows/fraud_alert.json").read_text())
FRAUD_VARIABLES = {"amount": "$1,249.00", "merchant": "ACME Online", "cardLast4": "4242",
                   "paymentId": "pay-8812"}


@pytest.fixture
def hub_settings(hub_settings):
    # The fake servers of these tests listen on loopback.
    return msgspec.structs.replace(hub_settings, allow_private_urls=True)


@pytest.fixture
def fraud_api():
    with http_recorder() as recorder:
        yield recorder


def fraud_flow(api_url: str) -> dict:
    definition = copy.deepcopy(EXAMPLE)
    for variable in definition["variables"]:
        if variable["name"] == "fraudApiUrl":
            variable["default"] = api_url
    return definition


async def instance(flows, env, instance_id):
    url = f"/v1/{env.id}/action-flow/instances/{instance_id}"
    response = await flows.client.get(url, headers=env.headers())
    return response.json()


async def test_fraud_alert_not_recognised_blocks_the_card_tags_the_customer_and_says_so(
        flows, hub, hub_env, run_jobs, fraud_api):
    await flows.users({"userId": "ola", "fields": {"name": "Ola"}})
    await flows.publish("fraud-alert", fraud_flow(fraud_api.url))
    await flows.start("fraud-alert", target={"usersById": ["ola"]}, payload={"variables": FRAUD_VARIABLES})
    await run_jobs()
    [ask] = await flows.cards(userId="ola")
    assert ask["templateId"] == "fraud-check" and ask["priority"] == 10
    assert "$1,249.00 at ACME Online" in ask["content"]["elements"][1]["text"]
    await card_service.act(hub, hub_env.id, ask["cardInstanceId"], "submit", user_id="ola",
                           values={"recognised": "no", "note": "stolen wallet"})
    await run_jobs()
    [call] = fraud_api.requests
    assert call.method == "POST" and call.path == "/blocks"
    assert call.body == {"paymentId": "pay-8812", "userId": "ola", "reason": "customer-reported",
                         "note": "stolen wallet"}
    profile = (await flows.client.get(f"/v1/{hub_env.id}/users/ola", headers=hub_env.headers())).json()
    assert "fraud-reported" in profile["tags"]
    templates = {c["templateId"]: c for c in await flows.cards(userId="ola")}
    assert templates["card-blocked"]["status"] == "active"
    assert templates["fraud-check"]["status"] == "completed"
    done = await instance(flows, hub_env, ask["flowInstanceId"])
    assert done["status"] == "completed" and done["steps"]["block_card"]["response"]["status"] == 200


async def test_fraud_alert_recognised_thanks_the_customer_by_name(flows, hub, hub_env, run_jobs, fraud_api):
    await flows.users({"userId": "pia", "fields": {"name": "Pia"}})
    await flows.publish("fraud-alert", fraud_flow(fraud_api.url))
    await flows.start("fraud-alert", target={"usersById": ["pia"]}, payload={"variables": FRAUD_VARIABLES})
    await run_jobs()
    [ask] = await flows.cards(userId="pia")
    await card_service.act(hub, hub_env.id, ask["cardInstanceId"], "submit", values={"recognised": "yes"})
    await run_jobs()
    thanks = next(c for c in await flows.cards(userId="pia") if c["templateId"] == "thanks")
    assert thanks["content"]["elements"][0]["text"] == "Thanks, Pia"
    assert fraud_api.requests == []


async def test_fraud_alert_without_an_answer_reminds_then_escalates(
        flows, hub_env, run_jobs, clock, fraud_api):
    await flows.publish("fraud-alert", fraud_flow(fraud_api.url))
    await flows.start("fraud-alert", target={"usersById": ["quin"]}, payload={"variables": FRAUD_VARIABLES})
    await run_jobs()
    [ask] = await flows.cards(userId="quin")
    clock.advance(minutes=31)
    await flows.fire_due_timers(clock)
    state = await instance(flows, hub_env, ask["flowInstanceId"])
    assert state["waitingAt"] == ["await_late_answer"]
    assert state["steps"]["remind"]["sent"] == 0  # no push provider installed: recorded, not failed
    clock.advance(minutes=91)
    await flows.fire_due_timers(clock)
    await run_jobs()
    assert [r.path for r in fraud_api.requests] == ["/reviews"]
    assert (await instance(flows, hub_env, ask["flowInstanceId"]))["status"] == "completed"


HTTP_FLOW = {
    "name": "Call out",
    "variables": [{"name": "url", "type": "string", "required": True}],
    "cardTemplates": [{"id": "said", "name": "Said", "elements": [
        {"type": "text", "text": "Server says {{steps.call.response.body.word}}"}]}],
    "steps": [
        {"id": "call", "type": "http_request", "method": "POST", "url": "{{variables.url}}/x",
         "body": {"user": "{{customer.userId}}"}, "retries": 2, "next": "show"},
        {"id": "show", "type": "card", "template": "said"},
    ],
}


async def test_http_step_output_feeds_later_steps_and_5xx_is_retried(flows, hub_env, run_jobs):
    await flows.publish("call", HTTP_FLOW)
    with http_recorder() as server:
        server.script = [503]
        server.reply = {"word": "hello"}
        await flows.start("call", target={"usersById": ["ray"]}, payload={"variables": {"url": server.url}})
        await run_jobs()
        assert len(server.requests) == 2 and server.requests[0].body == {"user": "ray"}
    [card] = await flows.cards(userId="ray")
    assert card["content"]["elements"][0]["text"] == "Server says hello"


async def test_a_non_2xx_answer_fails_the_instance_unless_allowed(flows, hub_env, run_jobs):
    failing = copy.deepcopy(HTTP_FLOW)
    failing["steps"][0]["retries"] = 0
    await flows.publish("call", failing)
    with http_recorder() as server:
        server.script = [404]
        started = await flows.start("call", target={"usersById": ["sam"]},
                                    payload={"variables": {"url": server.url}})
        await run_jobs()
    assert await flows.cards(userId="sam") == []
    invocation = started["flows"][0]["flowInvocationId"]
    [row] = await _instances(flows.hub, invocation)
    assert row["status"] == "failed" and "404" in row["error"]
    allowed = copy.deepcopy(failing)
    allowed["steps"][0]["allowFailure"] = True
    await flows.publish("call", allowed)
    with http_recorder() as server:
        server.script = [404]
        await flows.start("call", target={"usersById": ["sam"]}, payload={"variables": {"url": server.url}})
        await run_jobs()
    assert len(await flows.cards(userId="sam")) == 1


async def _instances(hub, invocation_id):
    from sqlalchemy import select

    from hub.db import tables

    async with hub.db.connect() as conn:
        return (await conn.execute(select(tables.flow_instance).where(
            tables.flow_instance.c.invocation_id == invocation_id))).mappings().all()


async def test_private_addresses_are_refused_unless_allowed(flows, hub, hub_env, run_jobs):
    hub.settings = msgspec.structs.replace(hub.settings, allow_private_urls=False)
    failing = copy.deepcopy(HTTP_FLOW)
    await flows.publish("call", failing)
    with http_recorder() as server:
        started = await flows.start("call", target={"usersById": ["tia"]},
                                    payload={"variables": {"url": server.url}})
        await run_jobs()
        assert server.requests == []
    [row] = await _instances(hub, started["flows"][0]["flowInvocationId"])
    assert row["status"] == "failed" and "private or local address" in row["error"]


async def test_delay_and_parallel_branches_join_before_going_on(flows, run_jobs, clock):
    definition = {
        "name": "Parallel",
        "cardTemplates": [{"id": t, "name": t, "elements": [{"type": "headline", "text": t}]}
                          for t in ("a", "b", "after")],
        "steps": [
            {"id": "fork", "type": "parallel", "branches": ["send_a", "wait"], "next": "send_after"},
            {"id": "send_a", "type": "card", "template": "a"},
            {"id": "wait", "type": "delay", "duration": "PT10M", "next": "send_b"},
            {"id": "send_b", "type": "card", "template": "b"},
            {"id": "send_after", "type": "card", "template": "after"},
        ],
    }
    await flows.publish("par", definition)
    await flows.start("par", target={"usersById": ["uma"]})
    await run_jobs()
    assert {c["templateId"] for c in await flows.cards(userId="uma")} == {"a"}
    clock.advance(minutes=11)
    await flows.fire_due_timers(clock)
    assert {c["templateId"] for c in await flows.cards(userId="uma")} == {"a", "b", "after"}


async def test_votes_are_recorded_as_events_without_changing_the_card(flows, hub, hub_env, run_jobs):
    from tests.engine.conftest import CARD_FLOW

    await flows.publish("welcome", CARD_FLOW)
    await flows.start("welcome", target={"usersById": ["val"]})
    await run_jobs()
    [card] = await flows.cards(userId="val")
    await card_service.vote(hub, hub_env.id, card["cardInstanceId"], up=False, message="not for me")
    with pytest.raises(card_service.CardNotFound):
        await card_service.vote(hub, hub_env.id, card["cardInstanceId"], up=True, user_id="someone-else")
    [voted] = [e for e in await flows.events(userId="val") if e["analyticsEvent"] == "card-voted-down"]
    assert voted["properties"] == {"message": "not for me"}
    assert (await flows.cards(userId="val"))[0]["status"] == "active"


class ScoreStep:
    """A plugin's own step type: it reads the context and chooses where the flow goes."""

    @staticmethod
    def run(ctx, step, instance):
        score = len(ctx["context"]["customer"]["userId"]) * step.config["factor"]
        return {"output": {"score": score}, "next": step.next if score > 5 else None}


class StepPlugin:
    from hub.hookspecs import hookimpl

    @hookimpl
    def hub_register_step_types(self, register):
        from hub.registry import StepType

        register(StepType(name="score", run=ScoreStep.run, schema={
            "type": "object", "required": ["factor"], "properties": {"factor": {"type": "number"}}}))


@pytest.fixture
def hub_plugins():
    return [StepPlugin()]


async def test_a_plugin_step_type_runs_in_the_engine_and_steers_the_flow(flows, run_jobs, hub_env):
    definition = {
        "name": "Scored",
        "cardTemplates": [{"id": "hi", "name": "Hi", "elements": [
            {"type": "text", "text": "Score {{steps.rate.score}}"}]}],
        "steps": [{"id": "rate", "type": "score", "factor": 2, "next": "send"},
                  {"id": "send", "type": "card", "template": "hi"}],
    }
    await flows.publish("scored", definition)
    await flows.start("scored", target={"usersById": ["abc", "x"]})
    await run_jobs()
    [card] = await flows.cards()
    assert card["userId"] == "abc" and card["content"]["elements"][0]["text"] == "Score 6"

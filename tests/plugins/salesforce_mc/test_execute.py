"""``{activityUrl}/execute``: one contact, a JWT signed with the package's secret, one flow start."""

from __future__ import annotations

import asyncio

import pytest

from hub.services import customers as customer_service
from tests.plugins.salesforce_mc.conftest import EXECUTE_BODY, ORDER_FLOW, Journey, expired


@pytest.fixture
async def ready(journey: Journey) -> Journey:
    await journey.install()
    await journey.publish()
    return journey


def order_args(**extra: str) -> list[dict[str, str]]:
    # Keys spread over several objects, as Journey Builder sends them; the example's own
    # "discount" argument is a flow variable here too.
    return [{"flowConfigId": "order"}, {"amount": "42.50", **extra}, EXECUTE_BODY["inArguments"][0]]


async def test_the_official_example_body_starts_the_flow_and_answers_flat_out_arguments(
        ready, hub_client, hub_env, run_jobs, hub):
    response = await ready.execute(ready.payload(order_args()))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"flowInvocationId", "reachable"}
    assert body["flowInvocationId"].startswith("sfmc-") and body["reachable"] is False
    await run_jobs()
    from sqlalchemy import select

    from hub.db import tables
    async with hub.db.connect() as conn:
        row = (await conn.execute(select(tables.invocation).where(
            tables.invocation.c.id == body["flowInvocationId"]))).mappings().one()
        instance = (await conn.execute(select(tables.flow_instance).where(
            tables.flow_instance.c.invocation_id == body["flowInvocationId"]))).mappings().one()
    assert row["source"] == "sfmc" and row["flow_id"] == "order"
    assert row["target"] == {"usersById": [EXECUTE_BODY["keyValue"]]}
    assert instance["user_id"] == EXECUTE_BODY["keyValue"]
    assert instance["variables"] == {"amount": 42.5, "vip": False, "due": None, "discount": "15"}


async def test_strings_are_read_as_each_variables_type(ready, hub):
    response = await ready.execute(ready.payload(
        [{"flowConfigId": "order", "amount": "7", "vip": "true", "due": "2027-01-31"}]))
    assert response.status_code == 200, response.text
    from sqlalchemy import select

    from hub.db import tables
    async with hub.db.connect() as conn:
        variables = (await conn.execute(select(tables.invocation.c.payload).where(
            tables.invocation.c.id == response.json()["flowInvocationId"]))).scalar_one()
    assert variables["variables"]["amount"] == 7 and variables["variables"]["vip"] is True
    assert variables["variables"]["due"] == "2027-01-31"
    assert variables["metadata"] == {"journeyId": EXECUTE_BODY["journeyId"],
                                     "activityId": EXECUTE_BODY["activityId"],
                                     "definitionInstanceId": EXECUTE_BODY["definitionInstanceId"]}


@pytest.mark.parametrize(("arguments", "field"), [
    ([{"flowConfigId": "order", "amount": "lots"}], "inArguments.amount"),
    ([{"flowConfigId": "order", "amount": "1", "vip": "perhaps"}], "inArguments.vip"),
    ([{"flowConfigId": "order", "amount": "1", "due": "tomorrow"}], "inArguments.due"),
    ([{"flowConfigId": "order"}], "inArguments.amount"),
])
async def test_invalid_variables_eject_the_contact_naming_the_argument(ready, arguments, field):
    response = await ready.execute(ready.payload(arguments))
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_unknown_arguments_are_ignored(ready):
    response = await ready.execute(ready.payload(order_args(somethingElse="x")))
    assert response.status_code == 200, response.text


async def test_a_retry_of_the_same_contact_starts_one_invocation(ready, hub):
    claims = ready.payload(order_args())
    answers = await asyncio.gather(*(ready.execute(claims) for _ in range(5)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["flowInvocationId"] for a in answers}) == 1
    other = await ready.execute(ready.payload(order_args(), keyValue="another-contact"))
    assert other.json()["flowInvocationId"] != answers[0].json()["flowInvocationId"]
    later = await ready.execute(ready.payload(order_args(), definitionInstanceId="next-run"))
    assert later.json()["flowInvocationId"] != answers[0].json()["flowInvocationId"]
    from sqlalchemy import func, select

    from hub.db import tables
    async with hub.db.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(tables.invocation))).scalar_one()
    assert count == 3


@pytest.mark.parametrize(("flow", "status"), [("nope", 404), ("draft-only", 409)])
async def test_an_unknown_or_unpublished_flow_is_a_4xx_naming_flow_config_id(ready, hub_client, hub_env,
                                                                             flow, status):
    await hub_client.post(f"/v1/{hub_env.id}/flows", headers=hub_env.headers(),
                          json={"id": "draft-only", "definition": ORDER_FLOW})
    response = await ready.execute(ready.payload([{"flowConfigId": flow, "amount": "1"}]))
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["field"] == "inArguments.flowConfigId"


async def test_a_flow_that_refuses_sfmc_is_403(ready):
    await ready.publish("no-sfmc", {**ORDER_FLOW, "triggers": {"sfmc": False}})
    response = await ready.execute(ready.payload([{"flowConfigId": "no-sfmc", "amount": "1"}]))
    assert response.status_code == 403, response.text


@pytest.mark.parametrize(("claims", "field"), [
    ({"inArguments": [{"amount": "1"}]}, "inArguments.flowConfigId"),
    ({"inArguments": "nope"}, "inArguments"),
    ({"inArguments": ["nope"]}, "inArguments[0]"),
    ({"keyValue": None}, "keyValue"),
    ({"keyValue": "  "}, "keyValue"),
    ({"activityId": None, "activityObjectID": None}, "activityId"),
    ({"definitionInstanceId": None, "activityInstanceId": None}, "definitionInstanceId"),
])
async def test_missing_arguments_are_400_naming_the_field(ready, claims, field):
    body = ready.payload(order_args())
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    response = await ready.execute(body)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == field


async def test_the_user_id_can_come_from_a_mapped_argument(ready, hub_client, hub_env, hub):
    await ready.install(userIdFrom="customerId")
    response = await ready.execute(ready.payload(order_args(customerId="cust-9")))
    assert response.status_code == 200, response.text
    assert await customer_service.get_customer(hub, hub_env.id, "cust-9") is not None
    missing = await ready.execute(ready.payload(order_args()))
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["field"] == "inArguments.customerId"


# --- the JWT --------------------------------------------------------------------------------


async def test_a_good_jwt_is_accepted_and_plain_json_is_not(ready):
    assert (await ready.execute(ready.payload(order_args()))).status_code == 200
    plain = await ready.client.post(ready.path("execute"), json=ready.payload(order_args()))
    assert plain.status_code == 415
    assert plain.json()["errors"][0]["field"] == "header.content-type"


@pytest.mark.parametrize("case", ["wrong secret", "alg none", "HS512", "tampered", "expired", "garbage",
                                  "not a jwt"])
async def test_bad_jwts_are_401_problems(ready, case):
    claims = ready.payload(order_args())
    token = ready.jwt(claims)
    if case == "wrong secret":
        token = ready.jwt(claims, secret="another-secret-of-enough-length-0123456789")
    elif case == "alg none":
        import base64
        import json
        header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=")
        token = header.decode() + "." + token.split(".")[1] + "."
    elif case == "HS512":
        from joserfc import jws
        from joserfc.jwk import OctKey
        token = jws.serialize_compact({"alg": "HS512"}, json_bytes(claims),
                                      OctKey.import_key(b"x" * 64), algorithms=["HS512"])
    elif case == "tampered":
        head, _, sig = token.split(".")
        other = ready.jwt({**claims, "keyValue": "someone-else"}).split(".")[1]
        token = f"{head}.{other}.{sig}"
    elif case == "expired":
        token = ready.jwt({**claims, "exp": expired()})
    elif case == "garbage":
        token = "a.b.c"
    elif case == "not a jwt":
        token = "hello"
    response = await ready.execute(raw=token.encode())
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == "body"


def json_bytes(claims):
    import json
    return json.dumps(claims).encode()


async def test_an_unexpired_exp_is_fine(ready):
    import time
    response = await ready.execute(ready.payload(order_args(), exp=int(time.time()) + 60))
    assert response.status_code == 200, response.text


async def test_an_unknown_token_is_404(ready, hub_client):
    response = await hub_client.post("/sfmc/" + "x" * 32 + "/execute", content=b"a.b.c",
                                     headers={"Content-Type": "application/jwt"})
    assert response.status_code == 404


# --- reachable ------------------------------------------------------------------------------


async def test_reachable_when_seen_by_the_sdk_or_with_a_valid_push_device(ready, hub, hub_env):
    await customer_service.mark_seen(hub, hub_env.id, "seen-user")
    seen = await ready.execute(ready.payload(order_args(), keyValue="seen-user"))
    assert seen.json()["reachable"] is True
    from hub_plugins.sdk_streams import devices
    await devices.register_device(hub, hub_env.id, "push-user", platform="android", token="t" * 40)
    pushed = await ready.execute(ready.payload(order_args(), keyValue="push-user"))
    assert pushed.json()["reachable"] is True
    unknown = await ready.execute(ready.payload(order_args(), keyValue="stranger"))
    assert unknown.json()["reachable"] is False

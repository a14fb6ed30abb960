"""Managing triggers: create, list, get, update, rotate, delete, dry-run; permissions, tenants."""

import pytest

from hub.testing import make_environment
from tests.plugins.webhooks.test_inbound_hooks import EVENT, TRIGGER, problem


@pytest.fixture
async def flow(inbound):
    return await inbound.publish()


def base(hub_env):
    return f"/v1/{hub_env.id}/triggers"


async def test_a_trigger_shows_its_url_and_secret_once(inbound, flow, hub_client, hub_env):
    created = await inbound.create(**TRIGGER)
    assert (
        created["url"].startswith("http://testserver/hooks/") and len(created["url"].rsplit("/", 1)[1]) >= 43
    )
    assert created["secret"].startswith("whsec_") and created["signed"] is True
    assert created["mapping"] == TRIGGER["mapping"] and created["flowConfigId"] == "fraud-alert"
    shown = (await hub_client.get(f"{base(hub_env)}/{created['id']}", headers=hub_env.headers())).json()
    assert "url" not in shown and "secret" not in shown
    assert shown["name"] == TRIGGER["name"]
    page = (await hub_client.get(base(hub_env), headers=hub_env.headers())).json()
    assert [t["id"] for t in page["triggers"]] == [created["id"]] and page["nextCursor"] is None
    assert "secret" not in page["triggers"][0]


async def test_the_public_url_setting_makes_the_trigger_urls(inbound_public_url, inbound, flow):
    created = await inbound.create()
    assert created["url"].startswith("https://hooks.example.com/base/hooks/")


@pytest.fixture
def inbound_public_url(monkeypatch):
    monkeypatch.setenv("HUB_WEBHOOKS_INBOUND_PUBLIC_URL", "https://hooks.example.com/base/")


async def test_listing_pages_with_a_cursor_and_filters_by_flow(inbound, flow, hub_client, hub_env):
    ids = [(await inbound.create(name=f"t{i}"))["id"] for i in range(3)]
    first = (await hub_client.get(base(hub_env), headers=hub_env.headers(), params={"limit": 2})).json()
    rest = (
        await hub_client.get(
            base(hub_env), headers=hub_env.headers(), params={"limit": 2, "cursor": first["nextCursor"]}
        )
    ).json()
    assert [t["id"] for t in first["triggers"] + rest["triggers"]] == ids and rest["nextCursor"] is None
    none = (
        await hub_client.get(base(hub_env), headers=hub_env.headers(), params={"flowConfigId": "other"})
    ).json()
    assert none["triggers"] == []
    bad = await hub_client.get(base(hub_env), headers=hub_env.headers(), params={"cursor": "nope"})
    problem(bad, 422, "query.cursor")


async def test_a_trigger_needs_an_existing_flow_and_a_valid_mapping(inbound, flow):
    body = await inbound.create(status=422, flowConfigId="missing")
    assert body["errors"][0]["field"] == "flowConfigId"
    body = await inbound.create(status=422, mapping={"userId": "data.customer.id", "colour": "$.c"})
    fields = {e["field"]: e["reason"] for e in body["errors"]}
    assert "JSON Pointer" in fields["mapping.userId"] and "mapping.colour" in fields
    body = await inbound.create(status=422, mapping={"variables": {"amount": "$.a"}})
    assert body["errors"][0]["field"] == "mapping"  # neither userId nor userIds
    body = await inbound.create(status=422, mapping={"userId": "$.items[*].id"})
    assert "[*]" in body["errors"][0]["reason"]
    body = await inbound.create(status=422, mapping={"userId": "$.u", "idempotencyKey": {"const": "k"}})
    assert body["errors"][0]["field"] == "mapping.idempotencyKey.const"


async def test_update_changes_the_mapping_name_and_signing(inbound, flow, hub_client, hub_env):
    created = await inbound.create(**TRIGGER)
    url = f"{base(hub_env)}/{created['id']}"
    changed = await hub_client.patch(
        url,
        headers=hub_env.headers(),
        json={"name": "renamed", "signed": False, "mapping": {"userId": "/user"}},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "renamed" and changed.json()["signed"] is False
    assert changed.json()["mapping"] == {"userId": "/user"}
    removed = await hub_client.patch(url, headers=hub_env.headers(), json={"mapping": {}})
    assert removed.json()["mapping"] is None
    bad = await hub_client.patch(url, headers=hub_env.headers(), json={"mapping": {"userId": 5}})
    problem(bad, 422, "mapping.userId")
    unknown = await hub_client.patch(url, headers=hub_env.headers(), json={"colour": "red"})
    problem(unknown, 422, "colour")
    missing = await hub_client.patch(f"{base(hub_env)}/trg_nope", headers=hub_env.headers(), json={})
    problem(missing, 404, "path.triggerId")


async def test_rotating_the_token_retires_the_old_url_at_once(inbound, flow, hub_client, hub_env):
    created = await inbound.create(**{**TRIGGER, "signed": False})
    rotated = await hub_client.post(
        f"{base(hub_env)}/{created['id']}/rotate", headers=hub_env.headers(), json={"secret": False}
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["url"] != created["url"] and "secret" not in rotated.json()
    problem(await inbound.hook(created, EVENT), 404, "path.token")
    assert (await inbound.hook(rotated.json(), EVENT)).status_code == 202
    both = await hub_client.post(f"{base(hub_env)}/{created['id']}/rotate", headers=hub_env.headers())
    assert both.json()["url"] and both.json()["secret"]
    neither = await hub_client.post(
        f"{base(hub_env)}/{created['id']}/rotate",
        headers=hub_env.headers(),
        json={"token": False, "secret": False},
    )
    problem(neither, 422, "body")
    too_long = await hub_client.post(
        f"{base(hub_env)}/{created['id']}/rotate",
        headers=hub_env.headers(),
        json={"previousSecretValidSeconds": 10**9},
    )
    problem(too_long, 422, "previousSecretValidSeconds")


async def test_delete_then_get_is_404(inbound, flow, hub_client, hub_env):
    created = await inbound.create()
    url = f"{base(hub_env)}/{created['id']}"
    assert (await hub_client.delete(url, headers=hub_env.headers())).status_code == 204
    problem(await hub_client.get(url, headers=hub_env.headers()), 404, "path.triggerId")
    problem(await hub_client.delete(url, headers=hub_env.headers()), 404, "path.triggerId")


async def test_permissions_follow_the_flow_roles(inbound, flow, hub_client, hub_env):
    created = await inbound.create()
    url = f"{base(hub_env)}/{created['id']}"
    reader = hub_env.headers(roles=["read"])
    assert (await hub_client.get(url, headers=reader)).status_code == 200
    problem(await hub_client.delete(url, headers=reader), 403, "header.authorization")
    problem(
        await hub_client.post(base(hub_env), headers=reader, json={"flowConfigId": "fraud-alert"}),
        403,
        "header.authorization",
    )
    problem(
        await hub_client.post(f"{url}/rotate", headers=hub_env.headers(roles=["cards"])),
        403,
        "header.authorization",
    )
    problem(await hub_client.get(base(hub_env)), 401, "header.authorization")
    writer = hub_env.headers(roles=["flows"])
    assert (await hub_client.post(f"{url}/rotate", headers=writer)).status_code == 200


async def test_another_environment_cannot_see_or_manage_the_trigger(inbound, flow, hub, hub_client, hub_env):
    created = await inbound.create()
    other = await make_environment(hub, "globex")
    theirs = f"/v1/{other.id}/triggers"
    assert (await hub_client.get(theirs, headers=other.headers())).json()["triggers"] == []
    for method, suffix in (
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/rotate"),
        ("POST", "/dry-run"),
    ):
        response = await hub_client.request(
            method,
            f"{theirs}/{created['id']}{suffix}",
            headers=other.headers(),
            json={"body": {}} if suffix == "/dry-run" else {},
        )
        problem(response, 404, "path.triggerId")
    # Their token on our paths is refused outright.
    response = await hub_client.get(f"{base(hub_env)}/{created['id']}", headers=other.headers())
    problem(response, 403, "header.authorization")
    assert (
        await hub_client.get(f"{base(hub_env)}/{created['id']}", headers=hub_env.headers())
    ).status_code == 200


# --- dry-run ---------------------------------------------------------------------------------


async def dry_run(hub_client, hub_env, trigger_id, **body):
    response = await hub_client.post(
        f"{base(hub_env)}/{trigger_id}/dry-run", headers=hub_env.headers(), json=body
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_dry_run_shows_what_a_body_starts_and_starts_nothing(inbound, flow, hub, hub_client, hub_env):
    from tests.plugins.webhooks.test_inbound_hooks import invocations

    created = await inbound.create(**TRIGGER)
    result = await dry_run(hub_client, hub_env, created["id"], body=EVENT)
    assert result["valid"] is True and result["errors"] == [] and result["flowVersion"] == 1
    [start] = result["flows"]
    assert start["target"] == {"usersById": ["cust-100234"]}
    variables = start["payload"]["variables"]
    assert variables["amount"] == "$1,249.00" and variables["cardLast4"] == "4821"
    assert variables["fraudApiUrl"] == "https://bank.example.com/api/fraud"  # the flow's default
    assert start["payload"]["metadata"]["source"] == "core-banking"
    assert start["flowInvocationId"].startswith(created["id"] + ":")
    assert await invocations(hub) == 0


async def test_dry_run_names_every_path_that_does_not_map(inbound, flow, hub_client, hub_env):
    created = await inbound.create(**TRIGGER)
    event = {
        "eventId": "e1",
        "eventType": "x",
        "data": {
            "customer": {"id": "c1"},
            "risk": {"score": 1, "rules": []},
            "transaction": {"id": "t1", "amount": {"formatted": "$1"}, "merchant": [], "card": {}},
        },
    }
    result = await dry_run(hub_client, hub_env, created["id"], body=event)
    assert result["valid"] is False and result["flows"] == []
    errors = {e["field"]: e["reason"] for e in result["errors"]}
    assert set(errors) == {"body.data.transaction.merchant", "body.data.transaction.card.last4"}
    assert "is an array" in errors["body.data.transaction.merchant"]
    assert "not found" in errors["body.data.transaction.card.last4"]
    assert "variables.cardLast4" in errors["body.data.transaction.card.last4"]


async def test_dry_run_checks_values_against_the_flow(inbound, flow, hub_client, hub_env):
    created = await inbound.create(**TRIGGER)
    event = {
        **EVENT,
        "data": {
            **EVENT["data"],
            "transaction": {**EVENT["data"]["transaction"], "amount": {"formatted": 12}},
        },
    }
    result = await dry_run(hub_client, hub_env, created["id"], body=event)
    assert [e["field"] for e in result["errors"]] == ["body.data.transaction.amount.formatted"]
    assert "variables.amount" in result["errors"][0]["reason"]


async def test_dry_run_tries_a_candidate_mapping(inbound, flow, hub_client, hub_env):
    created = await inbound.create()
    result = await dry_run(
        hub_client,
        hub_env,
        created["id"],
        body={"who": "ana"},
        mapping={"userId": "$.who"},
        headers={"Idempotency-Key": "k"},
    )
    errors = {e["field"]: e["reason"] for e in result["errors"]}
    assert "mapping.variables.amount" in errors and "no value" in errors["mapping.variables.amount"]
    bad = await dry_run(hub_client, hub_env, created["id"], body={}, mapping={"userId": "who"})
    assert bad["errors"][0]["field"] == "mapping.userId"

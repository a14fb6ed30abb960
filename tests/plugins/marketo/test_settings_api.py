"""``PUT/GET/DELETE /v1/{env}/integrations/marketo`` and ``hub marketo``: the API key is
write-only (shown once, when Hub makes it), the answer names the serviceUrl."""

import asyncio

from sqlalchemy import select

from hub_plugins.marketo.tables import config as config_table
from tests.plugins.marketo.conftest import assert_problem
from tests.test_cli import hub_cli

URL = "/v1/{}/integrations/marketo"


async def test_creating_the_integration_shows_a_new_key_once(marketo, hub, hub_env):
    created = await marketo.configure(status=201)
    body = created.json()
    assert body["apiKey"].startswith("hmk_") and len(body["apiKey"]) > 40
    assert body["serviceUrl"] == f"http://testserver/marketo/{hub_env.id}/openapi.json"
    assert (body["userIdFrom"], body["writeBack"], body["flows"]) == ("leadId", [], None)
    assert created.headers["cache-control"] == "no-store"
    shown = await marketo.client.get(URL.format(hub_env.id), headers=hub_env.headers())
    assert shown.status_code == 200 and "apiKey" not in shown.json()
    assert shown.json()["serviceUrl"] == body["serviceUrl"]
    async with hub.db.connect() as conn:
        stored = (await conn.execute(select(config_table.c.api_key))).scalar()
    assert body["apiKey"] not in stored and stored.startswith("v1.")  # sealed
    assert (await marketo.call("GET", "/status")).status_code == 200


async def test_changing_settings_keeps_the_key_and_rotating_replaces_it(marketo):
    await marketo.configure(status=201)
    first = marketo.api_key
    changed = await marketo.configure(status=200, userIdFrom="email", writeBack=["hubUserId"], flows=["a"])
    assert "apiKey" not in changed.json() and changed.json()["userIdFrom"] == "email"
    assert (await marketo.call("GET", "/status", key=first)).status_code == 200
    rotated = await marketo.configure(status=200, rotateApiKey=True)
    assert rotated.json()["apiKey"] != first
    assert rotated.json()["userIdFrom"] == "leadId"  # PUT replaces every setting but the key
    assert_problem(await marketo.call("GET", "/status", key=first), 401, "header.x-api-key")
    assert (await marketo.call("GET", "/status")).status_code == 200


async def test_a_key_of_ones_own_is_taken_and_never_shown(marketo):
    chosen = "my-own-marketo-key-0123456789"
    created = await marketo.configure(status=201, apiKey=chosen)
    assert "apiKey" not in created.json()
    assert (await marketo.call("GET", "/status", key=chosen)).status_code == 200


async def test_invalid_settings_name_the_field(marketo):
    cases = [
        ({"userIdFrom": "cookie"}, "userIdFrom"),
        ({"writeBack": ["password"]}, "writeBack[0]"),
        ({"flows": ["Not A Flow Id"]}, "flows[0]"),
        ({"apiKey": "short"}, "apiKey"),
        ({"apiKey": "a-long-enough-key-1234567", "rotateApiKey": True}, "rotateApiKey"),
    ]
    for body, field in cases:
        assert_problem(await marketo.configure(**body), 422, field)
    assert_problem(await marketo.configure(unknown=1), 422, "unknown")


async def test_removing_the_integration_refuses_marketo_from_then_on(marketo, hub_env):
    await marketo.configure(status=201)
    gone = await marketo.client.delete(URL.format(hub_env.id), headers=hub_env.headers())
    assert gone.status_code == 204
    assert_problem(await marketo.call("GET", "/status"), 401, "header.x-api-key")
    assert_problem(await marketo.client.get(URL.format(hub_env.id), headers=hub_env.headers()), 404, "path")
    again = await marketo.client.delete(URL.format(hub_env.id), headers=hub_env.headers())
    assert_problem(again, 404, "path")


async def test_the_integrations_role_manages_it_and_read_only_clients_cannot(marketo, hub_env):
    url = URL.format(hub_env.id)
    ok = await marketo.client.put(url, json={}, headers=hub_env.headers(["integrations"]))
    assert ok.status_code == 201
    assert (await marketo.client.get(url, headers=hub_env.headers(["read"]))).status_code == 200
    refused = await marketo.client.put(url, json={}, headers=hub_env.headers(["read"]))
    assert_problem(refused, 403, "header.authorization")
    assert_problem(await marketo.client.get(url), 401, "header.authorization")


async def test_batches_are_listed_newest_first_by_pages(ready, fake, hub_env):
    ids = []
    for _ in range(3):
        ids.append((await ready.submit(fake.invocation([{"id": 1}], "welcome"))).json()["batchId"])
    url = URL.format(hub_env.id) + "/batches"
    page = (await ready.client.get(url, params={"limit": 2}, headers=hub_env.headers())).json()
    assert [b["state"] for b in page["batches"]] == ["queued", "queued"]
    rest = await ready.client.get(url, params={"cursor": page["nextCursor"]}, headers=hub_env.headers())
    listed = [b["batchId"] for b in page["batches"] + rest.json()["batches"]]
    assert sorted(listed) == sorted(ids) and rest.json()["nextCursor"] is None
    bad = await ready.client.get(url, params={"cursor": "nope"}, headers=hub_env.headers())
    assert_problem(bad, 422, "query.cursor")
    missing = await ready.client.get(f"{url}/nope", headers=hub_env.headers())
    assert_problem(missing, 404, "path.batchId")


async def test_hub_marketo_set_show_remove(hub, hub_settings, hub_env, marketo):
    def cli(*args, check=True):
        return asyncio.to_thread(
            hub_cli, "marketo", *args, "--env", hub_env.id, settings=hub_settings, check=check
        )

    created = (await cli("set", "--user-id-from", "email", "--write-back", "hubInvocationId")).stdout
    assert f"serviceUrl=http://127.0.0.1:8000/marketo/{hub_env.id}/openapi.json" in created
    assert "userIdFrom=email" in created and "writeBack=hubInvocationId" in created
    key = created.split("apiKey=", 1)[1].split()[0]
    assert (await marketo.call("GET", "/status", key=key)).status_code == 200
    changed = (await cli("set", "--flows", "welcome,birthday")).stdout
    assert "apiKey=" not in changed and "userIdFrom=email" in changed and "flows=welcome,birthday" in changed
    shown = (await cli("show")).stdout
    assert key not in shown and "flows=welcome,birthday" in shown
    bad = await cli("set", "--write-back", "password", check=False)
    assert bad.returncode == 1 and "writeBack[0]" in bad.stderr
    assert "removed" in (await cli("remove")).stdout
    missing = await cli("show", check=False)
    assert missing.returncode == 1 and "no Marketo integration" in missing.stderr

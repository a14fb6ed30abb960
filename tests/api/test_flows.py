"""The Flows API: /v1/{env}/flows, over HTTP, on a real database."""

import copy
import json
from pathlib import Path

import pytest

from hub.testing import make_environment

FRAUD_ALERT = Path(__file__).resolve().parents[2] / "examples" / "flows" / "fraud_alert.json"
HELLO = {
    "name": "Hello",
    "cardTemplates": [{"id": "hi", "name": "Hi", "elements": [
        {"type": "headline", "text": "Hi {{customer.fields.name}}"}]}],
    "steps": [{"id": "send", "type": "card", "template": "hi"}],
}


def hello(name: str = "Hello") -> dict:
    definition = copy.deepcopy(HELLO)
    definition["name"] = name
    return definition


def assert_problem(response, status, field=None):
    """A 4xx answer is problem+json with an ``errors`` list; ``field`` must be among them."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["errors"]
    for error in body["errors"]:
        assert set(error) == {"field", "reason"} and error["reason"]
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body["errors"]
    return body


class Api:
    def __init__(self, client, env, roles=("flows",)):
        self.client, self.env, self.roles = client, env, list(roles)

    def url(self, path: str = "") -> str:
        return f"/v1/{self.env.id}/flows{path}"

    async def request(self, method: str, path: str = "", roles=None, **kwargs):
        headers = {**self.env.headers(roles=list(roles or self.roles)), **kwargs.pop("headers", {})}
        return await self.client.request(method, self.url(path), headers=headers, **kwargs)

    async def get(self, path: str = "", **kwargs):
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str = "", **kwargs):
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str = "", **kwargs):
        return await self.request("PUT", path, **kwargs)

    async def create(self, flow_id: str | None = None, definition=None) -> dict:
        body = {"definition": definition or hello()}
        if flow_id is not None:
            body["id"] = flow_id
        response = await self.post(json=body)
        assert response.status_code == 201, response.text
        return response.json()

    async def ok(self, method: str, path: str, status: int = 200, **kwargs) -> dict:
        response = await self.request(method, path, **kwargs)
        assert response.status_code == status, response.text
        return response.json()


@pytest.fixture
def api(hub_client, hub_env):
    return Api(hub_client, hub_env)


async def test_create_returns_the_flow_with_its_draft(api):
    body = await api.create("welcome", hello("Welcome"))
    assert body["flowConfigId"] == "welcome" and body["name"] == "Welcome"
    assert body["state"] == "draft" and body["draftVersion"] == 1 and body["publishedVersion"] is None
    assert body["draft"]["version"] == 1 and body["draft"]["state"] == "draft"
    assert body["draft"]["definition"]["steps"][0]["template"] == "hi"
    assert body["published"] is None and body["customerCenterEnabled"] is False
    assert body["createdAt"].endswith("Z") or "+00:00" in body["createdAt"]
    assert (await api.get("/welcome")).json() == body
    generated = await api.create()
    assert generated["flowConfigId"].startswith("fl_")


async def test_lifecycle_over_http(api):
    await api.create("welcome", hello("One"))
    assert (await api.ok("PUT", "/welcome/draft", json={"definition": hello("One b")}))["draftVersion"] == 1
    first = await api.ok("POST", "/welcome/publish")
    assert first["publishedVersion"] == 1 and first["draft"] is None and first["state"] == "published"
    second = await api.ok("PUT", "/welcome/draft", json={"definition": hello("Two")})
    assert (second["publishedVersion"], second["draftVersion"]) == (1, 2)
    assert second["published"]["definition"]["name"] == "One b"
    assert second["draft"]["definition"]["name"] == "Two"
    final = await api.ok("POST", "/welcome/publish")
    assert (final["publishedVersion"], final["draftVersion"]) == (2, None)
    listed = await api.ok("GET", "/welcome/versions")
    assert [(v["version"], v["state"]) for v in listed["versions"]] == [(2, "published"), (1, "archived")]
    assert "definition" not in listed["versions"][0] and listed["nextCursor"] is None
    one = await api.ok("GET", "/welcome/versions/1")
    assert one["state"] == "archived" and one["definition"]["name"] == "One b"
    assert one["publishedAt"] is not None


async def test_published_versions_are_immutable(api):
    await api.create("welcome", hello("Live"))
    await api.ok("POST", "/welcome/publish")
    before = await api.ok("GET", "/welcome/versions/1")
    for name in ("Next", "Next again"):
        await api.ok("PUT", "/welcome/draft", json={"definition": hello(name)})
    assert await api.ok("GET", "/welcome/versions/1") == before
    detail = await api.ok("GET", "/welcome")
    assert detail["published"]["definition"]["name"] == "Live" and detail["draftVersion"] == 2


async def test_invalid_definitions_name_every_issue(api):
    broken = {"name": "", "steps": [{"id": "send", "type": "card", "template": "missing"},
                                    {"id": "x", "type": "teleport"}], "colour": "red"}
    body = assert_problem(await api.post(json={"id": "bad", "definition": broken}), 422)
    fields = [e["field"] for e in body["errors"]]
    assert {"definition.name", "definition.colour", "definition.steps[1].type"} <= set(fields)
    assert all(f.startswith("definition.") for f in fields)
    assert "(and" in body["detail"]
    assert (await api.get("/bad")).status_code == 404
    await api.create("good")
    assert_problem(await api.put("/good/draft", json={"definition": broken}), 422, "definition.name")
    assert (await api.ok("GET", "/good"))["draft"]["definition"]["name"] == "Hello"


async def test_request_shape_errors(api):
    assert_problem(await api.post(json={"definition": hello(), "id": "Not Valid"}), 422, "id")
    assert_problem(await api.post(json={"definition": hello(), "id": "schema"}), 422, "id")
    assert_problem(await api.post(json={"id": "x"}), 422, "definition")
    assert_problem(await api.post(json={"definition": "text"}), 422, "definition")
    assert_problem(await api.post(json={"definition": hello(), "extra": 1}), 422, "extra")
    assert_problem(await api.post(content=b"{", headers={"content-type": "application/json"}), 400)
    await api.create("welcome")
    assert_problem(await api.put("/welcome/draft", json={}), 422, "definition")
    assert_problem(await api.get("", params={"state": "live"}), 422, "query.state")
    assert_problem(await api.get("", params={"cursor": "nope"}), 422, "query.cursor")
    assert_problem(await api.get("", params={"limit": 0}), 422, "query.limit")
    assert_problem(await api.get("/welcome/versions", params={"cursor": "nope"}), 422, "query.cursor")


async def test_unknown_flows_are_404_everywhere(api):
    for method, path, kwargs in [
        ("GET", "/nope", {}), ("PUT", "/nope/draft", {"json": {"definition": hello()}}),
        ("POST", "/nope/publish", {}), ("POST", "/nope/archive", {}), ("POST", "/nope/unarchive", {}),
        ("POST", "/nope/clone", {}), ("GET", "/nope/export", {}), ("GET", "/nope/versions", {}),
        ("GET", "/nope/versions/1", {}),
    ]:
        assert_problem(await api.request(method, path, **kwargs), 404, "path.flowConfigId")
    await api.create("welcome")
    assert_problem(await api.get("/welcome/versions/9"), 404, "path.version")
    assert_problem(await api.get("/welcome/export", params={"version": 9}), 404)


async def test_duplicate_ids_are_409(api):
    await api.create("welcome")
    body = assert_problem(await api.post(json={"id": "welcome", "definition": hello()}), 409, "id")
    assert "already exists" in body["detail"]
    assert_problem(await api.post("/welcome/clone", json={"id": "welcome"}), 409, "id")


async def test_publish_without_a_draft_is_422(api):
    await api.create("welcome")
    await api.ok("POST", "/welcome/publish")
    assert_problem(await api.post("/welcome/publish"), 422, "path.flowConfigId")


async def test_archive_blocks_editing_until_unarchived(api):
    await api.create("welcome")
    await api.ok("POST", "/welcome/publish")
    archived = await api.ok("POST", "/welcome/archive")
    assert archived["state"] == "archived" and archived["archivedAt"]
    assert (await api.ok("POST", "/welcome/archive"))["archivedAt"] == archived["archivedAt"]
    assert_problem(await api.put("/welcome/draft", json={"definition": hello("X")}), 409, "path.flowConfigId")
    assert_problem(await api.post("/welcome/publish"), 409, "path.flowConfigId")
    # Reading, exporting and cloning an archived flow still work.
    assert (await api.ok("GET", "/welcome/export"))["flowConfigId"] == "welcome"
    assert (await api.ok("POST", "/welcome/clone", status=201))["state"] == "draft"
    restored = await api.ok("POST", "/welcome/unarchive")
    assert restored["state"] == "published" and restored["archivedAt"] is None
    assert (await api.ok("PUT", "/welcome/draft", json={"definition": hello("X")}))["draftVersion"] == 2


async def test_list_filters_by_state_and_paginates(api):
    for n in range(5):
        await api.create(f"flow-{n}", hello(f"Flow {n}"))
    for n in (1, 2, 3):
        await api.ok("POST", f"/flow-{n}/publish")
    await api.ok("POST", "/flow-3/archive")

    async def ids(**params):
        body = await api.ok("GET", "", params=params)
        return [f["flowConfigId"] for f in body["flows"]], body["nextCursor"]

    assert (await ids(state="draft"))[0] == ["flow-0", "flow-4"]
    assert (await ids(state="published"))[0] == ["flow-1", "flow-2"]
    assert (await ids(state="archived"))[0] == ["flow-3"]
    seen, cursor = [], None
    while True:
        page, cursor = await ids(limit=2, **({"cursor": cursor} if cursor else {}))
        assert len(page) <= 2
        seen += page
        if cursor is None:
            break
    assert seen == [f"flow-{n}" for n in range(5)]
    summary = (await api.ok("GET", "", params={"limit": 1}))["flows"][0]
    assert "draft" not in summary and "published" not in summary


async def test_versions_paginate_newest_first(api):
    await api.create("welcome")
    for n in range(4):
        await api.ok("POST", "/welcome/publish")
        await api.ok("PUT", "/welcome/draft", json={"definition": hello(f"V{n + 2}")})
    seen, params = [], {"limit": 2}
    while True:
        body = await api.ok("GET", "/welcome/versions", params=params)
        seen += [v["version"] for v in body["versions"]]
        if body["nextCursor"] is None:
            break
        params = {"limit": 2, "cursor": body["nextCursor"]}
    assert seen == [5, 4, 3, 2, 1]


async def test_clone_export_import_round_trip(api):
    definition = json.loads(FRAUD_ALERT.read_text())
    await api.create("fraud-alert", definition)
    await api.ok("POST", "/fraud-alert/publish")
    clone = await api.ok("POST", "/fraud-alert/clone", status=201, json={"id": "fraud-copy", "name": "Copy"})
    assert clone["name"] == "Copy" and clone["draftVersion"] == 1 and clone["publishedVersion"] is None
    default_clone = await api.ok("POST", "/fraud-alert/clone", status=201)
    assert default_clone["name"] == definition["name"] + " (copy)"

    exported = await api.ok("GET", "/fraud-alert/export")
    assert set(exported) == {"formatVersion", "flowConfigId", "name", "definition"}
    assert exported["formatVersion"] == 1 and exported["name"] == definition["name"]
    assert_problem(await api.post("/import", json=exported), 409, "flowConfigId")
    replaced = await api.ok("POST", "/import", params={"replace": "true"}, json=exported)
    assert replaced["draftVersion"] == 2 and replaced["publishedVersion"] == 1

    exported["flowConfigId"] = "fraud-imported"
    imported = await api.ok("POST", "/import", status=201, json=exported)
    assert imported["state"] == "draft" and imported["draft"]["definition"] == exported["definition"]
    assert (await api.ok("GET", "/fraud-imported/export")) == exported
    assert_problem(await api.post("/import", json={"formatVersion": 9}), 422, "formatVersion")
    bad = {**exported, "flowConfigId": "other", "definition": {"name": "x", "steps": []}}
    assert_problem(await api.post("/import", json=bad), 422, "definition.steps")


async def test_export_of_a_version(api):
    await api.create("welcome", hello("V1"))
    await api.ok("POST", "/welcome/publish")
    await api.ok("PUT", "/welcome/draft", json={"definition": hello("V2")})
    assert (await api.ok("GET", "/welcome/export"))["name"] == "V2"
    assert (await api.ok("GET", "/welcome/export", params={"version": 1}))["name"] == "V1"


async def test_schema_describes_definitions(api):
    schema = await api.ok("GET", "/schema")
    assert schema["title"] == "Hub flow definition" and "steps" in schema["properties"]


async def test_permissions(api, hub_env):
    await api.create("welcome")
    users_only = {"roles": ["users"]}
    assert_problem(await api.get(**users_only), 403)
    assert_problem(await api.get("/welcome", **users_only), 403)
    assert_problem(await api.post(json={"definition": hello()}, **users_only), 403)
    for path in ("", "/welcome", "/schema", "/welcome/versions", "/welcome/versions/1", "/welcome/export"):
        assert (await api.get(path, roles=["read"])).status_code == 200, path
    assert_problem(await api.post(json={"definition": hello()}, roles=["read"]), 403)
    assert_problem(await api.post("/welcome/publish", roles=["read"]), 403)
    assert_problem(await api.put("/welcome/draft", json={"definition": hello()}, roles=["trigger"]), 403)
    assert (await api.client.get(api.url())).status_code == 401


async def test_environments_are_isolated(api, hub_client, hub):
    await api.create("welcome", hello("Acme's"))
    other = Api(hub_client, await make_environment(hub, "other"))
    assert_problem(await other.get("/welcome"), 404)
    assert (await other.ok("GET", ""))["flows"] == []
    created = await other.create("welcome", hello("Other's"))
    assert created["name"] == "Other's"
    assert (await api.ok("GET", "/welcome"))["name"] == "Acme's"
    # A token of one environment does not open another's flows.
    response = await hub_client.get(other.url("/welcome"), headers=api.env.headers(roles=["flows"]))
    assert response.status_code in (401, 403)


async def test_only_a_published_unarchived_flow_can_be_started(api, hub, hub_env):
    from hub.services import triggers

    await api.create("welcome")
    items = [{"target": {"usersById": ["u1"]}}]
    with pytest.raises(triggers.TriggerError) as caught:
        await triggers.start_flows(hub, hub_env.id, "welcome", items)
    assert caught.value.status == 409
    await api.ok("POST", "/welcome/publish")
    started = await triggers.start_flows(hub, hub_env.id, "welcome", items)
    assert started[0]["flowVersion"] == 1
    await api.ok("PUT", "/welcome/draft", json={"definition": hello("Next")})
    assert (await triggers.start_flows(hub, hub_env.id, "welcome", items))[0]["flowVersion"] == 1
    await api.ok("POST", "/welcome/archive")
    with pytest.raises(triggers.TriggerError) as caught:
        await triggers.start_flows(hub, hub_env.id, "welcome", items)
    assert caught.value.status == 409

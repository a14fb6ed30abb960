"""Flow storage and versions (hub.services.flows), on a real database."""

import asyncio
import copy
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from hub.app import Hub
from hub.core.flows import FlowDefinition
from hub.db import tables
from hub.hookspecs import hookimpl
from hub.registry import StepType
from hub.services import flows
from hub.testing import make_environment

FRAUD_ALERT = Path(__file__).resolve().parents[2] / "examples" / "flows" / "fraud_alert.json"
HELLO = {
    "name": "Hello",
    "cardTemplates": [{"id": "hi", "name": "Hi", "elements": [
        {"type": "headline", "text": "Hi {{customer.fields.name}}"}]}],
    "steps": [{"id": "send", "type": "card", "template": "hi"}],
}


def hello(name: str = "Hello", **extra) -> dict:
    definition = copy.deepcopy(HELLO)
    definition["name"] = name
    definition.update(extra)
    return definition


async def noop_step(ctx, step, instance):
    return {}


class StampStep:
    """A plugin with a step type ``stamp`` whose options need a ``label``."""

    @hookimpl
    def hub_register_step_types(self, register):
        register(StepType("stamp", run=noop_step, schema={
            "type": "object", "required": ["label"],
            "properties": {"label": {"type": "string", "minLength": 1}}}))


@pytest.fixture
def hub_plugins():
    return [StampStep()]


@pytest.fixture
async def env(hub):
    await make_environment(hub, "acme")
    return "acme"


async def versions(hub, env, flow_id):
    v = tables.flow_version.c
    async with hub.db.connect() as conn:
        rows = await conn.execute(select(v.version, v.state).where(
            v.environment_id == env, v.flow_id == flow_id).order_by(v.version))
        return [tuple(r) for r in rows]


async def test_lifecycle_create_edit_publish_edit_publish(hub, env):
    created = await flows.create_flow(hub, env, hello("One"), "welcome")
    assert created["flowConfigId"] == "welcome" and created["state"] == "draft"
    assert (created["draftVersion"], created["publishedVersion"]) == (1, None)
    assert created["draft"]["definition"]["name"] == "One" and created["published"] is None

    edited = await flows.update_draft(hub, env, "welcome", hello("One, edited"))
    assert edited["draftVersion"] == 1 and edited["name"] == "One, edited"
    assert await versions(hub, env, "welcome") == [(1, "draft")]

    published = await flows.publish(hub, env, "welcome")
    assert (published["publishedVersion"], published["draftVersion"]) == (1, None)
    assert published["state"] == "published" and published["draft"] is None
    assert published["published"]["publishedAt"] is not None

    redrafted = await flows.update_draft(hub, env, "welcome", hello("Two"))
    assert (redrafted["publishedVersion"], redrafted["draftVersion"]) == (1, 2)
    assert redrafted["published"]["definition"]["name"] == "One, edited"
    assert redrafted["draft"]["definition"]["name"] == "Two"

    again = await flows.publish(hub, env, "welcome")
    assert (again["publishedVersion"], again["draftVersion"]) == (2, None)
    assert await versions(hub, env, "welcome") == [(1, "archived"), (2, "published")]
    async with hub.db.connect() as conn:
        version, defn = await flows.published_definition(conn, env, "welcome")
    assert version == 2 and isinstance(defn, FlowDefinition) and defn.name == "Two"


async def test_a_new_draft_never_changes_a_published_version(hub, env):
    await flows.create_flow(hub, env, hello("Live"), "welcome")
    await flows.publish(hub, env, "welcome")
    frozen = await flows.get_version(hub, env, "welcome", 1)
    await flows.update_draft(hub, env, "welcome", hello("Next"))
    await flows.update_draft(hub, env, "welcome", hello("Next again"))
    assert await flows.get_version(hub, env, "welcome", 1) == frozen
    async with hub.db.connect() as conn:
        assert (await flows.definition_at(conn, env, "welcome", 1)).name == "Live"
        assert (await flows.definition_at(conn, env, "welcome", 2)).name == "Next again"
        assert (await flows.published_definition(conn, env, "welcome"))[0] == 1
    assert await versions(hub, env, "welcome") == [(1, "published"), (2, "draft")]


async def test_published_definition_says_why_a_flow_cannot_start(hub, env):
    async with hub.db.connect() as conn:
        with pytest.raises(flows.FlowNotFound):
            await flows.published_definition(conn, env, "nope")
    await flows.create_flow(hub, env, hello(), "welcome")
    async with hub.db.connect() as conn:
        with pytest.raises(flows.FlowNotPublished):
            await flows.published_definition(conn, env, "welcome")
    await flows.publish(hub, env, "welcome")
    await flows.set_archived(hub, env, "welcome", True)
    async with hub.db.connect() as conn:
        with pytest.raises(flows.FlowArchived):
            await flows.published_definition(conn, env, "welcome")
        with pytest.raises(flows.FlowNotFound):
            await flows.definition_at(conn, env, "welcome", 7)
    await flows.set_archived(hub, env, "welcome", False)
    async with hub.db.connect() as conn:
        assert (await flows.published_definition(conn, env, "welcome"))[0] == 1


async def test_definition_at_caches_published_versions_but_not_drafts(hub, env):
    await flows.create_flow(hub, env, hello("Live"), "welcome")
    await flows.publish(hub, env, "welcome")
    await flows.update_draft(hub, env, "welcome", hello("Draft"))
    v = tables.flow_version.c
    async with hub.db.connect() as conn:
        first = await flows.definition_at(conn, env, "welcome", 1)
        await flows.definition_at(conn, env, "welcome", 2)
    # Change both rows behind the service's back: only the draft is read again.
    async with hub.db.begin() as conn:
        for version in (1, 2):
            await conn.execute(update(tables.flow_version).where(
                v.environment_id == env, v.flow_id == "welcome", v.version == version,
            ).values(definition=hello("Tampered")))
    async with hub.db.connect() as conn:
        assert await flows.definition_at(conn, env, "welcome", 1) is first
        assert (await flows.definition_at(conn, env, "welcome", 2)).name == "Tampered"
    # Another Hub (another engine, as in another test) has its own cache.
    other = Hub(hub.settings, plugins=[StampStep()])
    try:
        async with other.db.connect() as conn:
            assert (await flows.definition_at(conn, env, "welcome", 1)).name == "Tampered"
    finally:
        await other.close()


async def test_the_cache_is_bounded(hub, env, monkeypatch):
    monkeypatch.setattr(flows, "DEFINITION_CACHE_SIZE", 2)
    for flow_id in ("a", "b", "c"):
        await flows.create_flow(hub, env, hello(flow_id), flow_id)
        await flows.publish(hub, env, flow_id)
    async with hub.db.connect() as conn:
        for flow_id in ("a", "b", "c"):
            await flows.definition_at(conn, env, flow_id, 1)
        assert list(flows._cache(conn)) == [(env, "b", 1), (env, "c", 1)]


async def test_ids_are_generated_or_checked(hub, env):
    created = await flows.create_flow(hub, env, hello())
    assert re.fullmatch(r"fl_[0-9a-f]{16}", created["flowConfigId"])
    for bad in ("Upper", "-dash", "", "a" * 65, "has space", "schema", "import"):
        with pytest.raises(flows.InvalidFlow) as caught:
            await flows.create_flow(hub, env, hello(), bad)
        assert [i.field for i in caught.value.issues] == ["id"], bad
    await flows.create_flow(hub, env, hello(), "taken")
    with pytest.raises(flows.FlowConflict):
        await flows.create_flow(hub, env, hello(), "taken")
    with pytest.raises(flows.EnvironmentNotFound):
        await flows.create_flow(hub, "nowhere", hello(), "x")


async def test_every_issue_is_named_under_definition(hub, env):
    broken = {"name": "", "steps": [{"id": "a", "type": "card", "template": "missing"},
                                    {"id": "b", "type": "nope"}], "extra": 1}
    with pytest.raises(flows.InvalidFlow) as caught:
        await flows.create_flow(hub, env, broken, "Bad Id")
    fields = [i.field for i in caught.value.issues]
    assert fields[0] == "id"
    assert {"definition.name", "definition.extra", "definition.steps[1].type"} <= set(fields)
    assert all(f == "id" or f.startswith("definition.") for f in fields)
    with pytest.raises(flows.InvalidFlow) as caught:
        await flows.create_flow(hub, env, ["not", "an", "object"])
    assert [i.field for i in caught.value.issues] == ["definition"]


async def test_plugin_step_types_are_checked_with_their_schema(hub, env):
    stamp = hello(steps=[{"id": "send", "type": "card", "template": "hi", "next": "mark"},
                         {"id": "mark", "type": "stamp", "label": "sent"}])
    await flows.create_flow(hub, env, stamp, "stamped")
    await flows.publish(hub, env, "stamped")
    bad = copy.deepcopy(stamp)
    del bad["steps"][1]["label"]
    with pytest.raises(flows.InvalidFlow) as caught:
        await flows.update_draft(hub, env, "stamped", bad)
    assert caught.value.issues[0].field.startswith("definition.steps[1]")
    # A process without the plugin still reads the published version (it was checked when saved).
    bare = Hub(hub.settings)
    try:
        async with bare.db.connect() as conn:
            version, defn = await flows.published_definition(conn, env, "stamped")
        assert version == 1 and defn.step("mark").type == "stamp"
        with pytest.raises(flows.InvalidFlow):
            await flows.create_flow(bare, env, stamp, "again")
    finally:
        await bare.close()


async def test_the_example_flow_round_trips(hub, env):
    definition = json.loads(FRAUD_ALERT.read_text())
    await flows.create_flow(hub, env, definition, "fraud-alert")
    published = await flows.publish(hub, env, "fraud-alert")
    assert published["name"] == definition["name"]
    exported = await flows.export_flow(hub, env, "fraud-alert")
    assert exported["formatVersion"] == 1 and exported["flowConfigId"] == "fraud-alert"
    exported["flowConfigId"] = "fraud-alert-2"
    imported, created = await flows.import_flow(hub, env, exported)
    assert created and imported["draft"]["definition"] == published["published"]["definition"]


async def test_customer_center_follows_the_published_version(hub, env):
    await flows.create_flow(hub, env, hello(triggers={"customerCenter": True}), "cc")
    assert (await flows.get_flow(hub, env, "cc"))["customerCenterEnabled"] is False
    assert (await flows.publish(hub, env, "cc"))["customerCenterEnabled"] is True
    await flows.update_draft(hub, env, "cc", hello())
    assert (await flows.get_flow(hub, env, "cc"))["customerCenterEnabled"] is True
    assert (await flows.publish(hub, env, "cc"))["customerCenterEnabled"] is False


async def test_the_customer_center_switch_sets_the_flag_and_the_draft(hub, env):
    await flows.create_flow(hub, env, hello(), "cc")
    enabled = await flows.set_customer_center(hub, env, "cc", True)
    assert enabled["customerCenterEnabled"] is True
    assert enabled["draft"]["definition"]["triggers"]["customerCenter"] is True
    assert (await flows.publish(hub, env, "cc"))["customerCenterEnabled"] is True
    # Switching off with nothing in draft opens one, so the next publish keeps it off.
    disabled = await flows.set_customer_center(hub, env, "cc", False)
    assert disabled["customerCenterEnabled"] is False
    assert disabled["draftVersion"] == 2
    assert disabled["draft"]["definition"]["triggers"]["customerCenter"] is False
    assert disabled["published"]["definition"]["triggers"]["customerCenter"] is True
    assert (await flows.publish(hub, env, "cc"))["customerCenterEnabled"] is False
    # Version 2 does not allow the trigger: switching on waits for the publish of the draft.
    pending = await flows.set_customer_center(hub, env, "cc", True)
    assert pending["customerCenterEnabled"] is False
    assert pending["draftVersion"] == 3
    assert pending["draft"]["definition"]["triggers"]["customerCenter"] is True
    assert (await flows.publish(hub, env, "cc"))["customerCenterEnabled"] is True
    # Already allowed and no draft: only the flag, no new version.
    again = await flows.set_customer_center(hub, env, "cc", True)
    assert again["customerCenterEnabled"] is True and again["draftVersion"] is None
    await flows.set_archived(hub, env, "cc", True)
    with pytest.raises(flows.FlowArchived):
        await flows.set_customer_center(hub, env, "cc", False)
    with pytest.raises(flows.FlowNotFound):
        await flows.set_customer_center(hub, env, "nope", True)


async def test_on_write_runs_in_the_change_s_transaction(hub, env):
    seen = []

    async def note(conn, facts):
        assert conn.in_transaction()
        seen.append(facts)

    await flows.create_flow(hub, env, hello(), "w", on_write=note)
    await flows.update_draft(hub, env, "w", hello("Two"), on_write=note)
    await flows.publish(hub, env, "w", on_write=note)
    await flows.set_customer_center(hub, env, "w", False, on_write=note)
    await flows.set_archived(hub, env, "w", True, on_write=note)
    await flows.set_archived(hub, env, "w", False)
    await flows.clone_flow(hub, env, "w", "w2", on_write=note)
    document = await flows.export_flow(hub, env, "w")
    await flows.import_flow(hub, env, document, replace=True, on_write=note)
    assert seen == [{"flowConfigId": "w", "version": 1}, {"flowConfigId": "w", "version": 1},
                    {"flowConfigId": "w", "version": 1},
                    {"flowConfigId": "w", "customerCenterEnabled": False},
                    {"flowConfigId": "w", "archived": True}, {"flowConfigId": "w2", "version": 1},
                    {"flowConfigId": "w", "version": 2}]

    async def refuse(conn, facts):
        raise RuntimeError("audit store unavailable")

    # What on_write cannot write, the change does not keep either.
    with pytest.raises(RuntimeError):
        await flows.publish(hub, env, "w", on_write=refuse)
    with pytest.raises(RuntimeError):
        await flows.update_draft(hub, env, "w", hello("Three"), on_write=refuse)
    with pytest.raises(RuntimeError):
        await flows.create_flow(hub, env, hello(), "w3", on_write=refuse)
    detail = await flows.get_flow(hub, env, "w")
    assert detail["publishedVersion"] == 1 and detail["draftVersion"] == 2 and detail["name"] == "Two"
    with pytest.raises(flows.FlowNotFound):
        await flows.get_flow(hub, env, "w3")


async def test_publish_needs_a_draft_and_archive_blocks_editing(hub, env):
    await flows.create_flow(hub, env, hello(), "welcome")
    await flows.publish(hub, env, "welcome")
    with pytest.raises(flows.NoDraft):
        await flows.publish(hub, env, "welcome")
    archived = await flows.set_archived(hub, env, "welcome", True)
    assert archived["state"] == "archived" and archived["archivedAt"] is not None
    assert (await flows.set_archived(hub, env, "welcome", True))["archivedAt"] == archived["archivedAt"]
    with pytest.raises(flows.FlowArchived):
        await flows.update_draft(hub, env, "welcome", hello("Edit"))
    with pytest.raises(flows.FlowArchived):
        await flows.publish(hub, env, "welcome")
    assert (await flows.set_archived(hub, env, "welcome", False))["state"] == "published"
    assert (await flows.update_draft(hub, env, "welcome", hello("Edit")))["draftVersion"] == 2
    with pytest.raises(flows.FlowNotFound):
        await flows.set_archived(hub, env, "nope", True)


async def test_clone_copies_the_draft_or_else_the_published_definition(hub, env):
    await flows.create_flow(hub, env, hello("Source"), "source")
    await flows.publish(hub, env, "source")
    copy_one = await flows.clone_flow(hub, env, "source", "copy-one")
    assert copy_one["name"] == "Source (copy)" and copy_one["draftVersion"] == 1
    assert copy_one["publishedVersion"] is None
    await flows.update_draft(hub, env, "source", hello("Source draft"))
    copy_two = await flows.clone_flow(hub, env, "source", name="Renamed")
    assert copy_two["name"] == "Renamed" and copy_two["flowConfigId"].startswith("fl_")
    assert copy_two["draft"]["definition"]["steps"] == copy_one["draft"]["definition"]["steps"]
    with pytest.raises(flows.FlowConflict):
        await flows.clone_flow(hub, env, "source", "copy-one")
    with pytest.raises(flows.FlowNotFound):
        await flows.clone_flow(hub, env, "nope")


async def test_import_conflicts_unless_replacing(hub, env):
    await flows.create_flow(hub, env, hello("Old"), "welcome")
    await flows.publish(hub, env, "welcome")
    document = {"formatVersion": 1, "flowConfigId": "welcome", "name": "New", "definition": hello("New")}
    with pytest.raises(flows.FlowConflict):
        await flows.import_flow(hub, env, document)
    replaced, created = await flows.import_flow(hub, env, document, replace=True)
    assert not created and replaced["draftVersion"] == 2 and replaced["publishedVersion"] == 1
    with pytest.raises(flows.InvalidFlow) as caught:
        await flows.import_flow(hub, env, {"formatVersion": 2, "flowConfigId": "Bad", "x": 1})
    assert {i.field for i in caught.value.issues} == {"x", "formatVersion", "flowConfigId", "definition"}


async def test_list_filters_by_state_and_pages(hub, env):
    for flow_id in ("a-draft", "b-live", "c-gone", "d-live"):
        await flows.create_flow(hub, env, hello(flow_id), flow_id)
    for flow_id in ("b-live", "c-gone", "d-live"):
        await flows.publish(hub, env, flow_id)
    await flows.set_archived(hub, env, "c-gone", True)

    async def ids(**query):
        return [f["flowConfigId"] for f in (await flows.list_flows(hub, env, **query))["flows"]]

    assert await ids() == ["a-draft", "b-live", "c-gone", "d-live"]
    assert await ids(state="draft") == ["a-draft"]
    assert await ids(state="published") == ["b-live", "d-live"]
    assert await ids(state="archived") == ["c-gone"]
    first = await flows.list_flows(hub, env, limit=3)
    rest = await flows.list_flows(hub, env, limit=3, cursor=first["nextCursor"])
    assert [f["flowConfigId"] for f in rest["flows"]] == ["d-live"] and rest["nextCursor"] is None
    with pytest.raises(flows.InvalidFlow):
        await flows.list_flows(hub, env, cursor="garbage")


async def test_concurrent_edits_open_one_draft(hub, env):
    await flows.create_flow(hub, env, hello(), "welcome")
    await flows.publish(hub, env, "welcome")
    await asyncio.gather(*(flows.update_draft(hub, env, "welcome", hello(f"Edit {n}")) for n in range(5)))
    assert await versions(hub, env, "welcome") == [(1, "published"), (2, "draft")]
    results = await asyncio.gather(*(flows.publish(hub, env, "welcome") for _ in range(3)),
                                   return_exceptions=True)
    assert sum(isinstance(r, dict) for r in results) == 1
    assert all(isinstance(r, dict | flows.NoDraft) for r in results)
    assert await versions(hub, env, "welcome") == [(1, "archived"), (2, "published")]


async def test_environments_are_isolated(hub, env):
    await make_environment(hub, "other")
    await flows.create_flow(hub, env, hello("Acme"), "shared-id")
    await flows.create_flow(hub, "other", hello("Other"), "shared-id")
    await flows.publish(hub, "other", "shared-id")
    assert (await flows.get_flow(hub, env, "shared-id"))["name"] == "Acme"
    async with hub.db.connect() as conn:
        with pytest.raises(flows.FlowNotPublished):
            await flows.published_definition(conn, env, "shared-id")
        assert (await flows.published_definition(conn, "other", "shared-id"))[1].name == "Other"
        count = (await conn.execute(select(func.count()).select_from(tables.flow))).scalar()
    assert count == 2

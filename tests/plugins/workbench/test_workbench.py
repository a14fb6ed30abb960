"""The Workbench over HTTP: flows list, editor and actions, share links, customers, analytics."""

from __future__ import annotations

import copy
import json
import re
from html import unescape
from pathlib import Path

from hub.services import analytics as analytics_service
from hub.services import customers as customer_service
from hub.services import flows as flow_service
from hub.testing import make_environment
from hub_plugins.workbench import staff as staff_service
from hub_plugins.workbench.wb_flows import share_token
from tests.plugins.workbench.conftest import csrf_of

FRAUD_ALERT = json.loads((Path(__file__).resolve().parents[3] / "examples" / "flows" / "fraud_alert.json")
                         .read_text())
HELLO = {
    "name": "Hello",
    "variables": [{"name": "who", "type": "string", "default": "Ana"}, {"name": "code", "type": "string"}],
    "cardTemplates": [{"id": "hi", "name": "Hi", "elements": [
        {"type": "headline", "text": "Hello {{variables.who}}"},
        {"type": "text", "text": "Your code is {{variables.code}}"}]}],
    "steps": [{"id": "send", "type": "card", "template": "hi", "next": "done"},
              {"id": "done", "type": "end"}],
}


def hello(name: str = "Hello") -> dict:
    definition = copy.deepcopy(HELLO)
    definition["name"] = name
    return definition


async def editor(signed_in, email="eve@example.com"):
    client = await signed_in(email, ["workbench:edit"])
    page = await client.get("/ui/acme/flows")
    return client, csrf_of(page.text)


def textarea(html: str, name: str = "definition") -> str:
    found = re.search(rf'<textarea id="{name}"[^>]*>(.*?)</textarea>', html, re.S)
    assert found, f"no textarea {name}"
    return unescape(found.group(1))


async def audit_actions(hub, flow_id: str) -> list[str]:
    return [e["action"] for e in await staff_service.audit_log(hub, "acme", target=f"flow:{flow_id}")]


async def test_view_members_see_flows_but_every_change_is_refused(hub, hub_env, signed_in):
    await flow_service.create_flow(hub, "acme", hello(), "hello")
    viewer = await signed_in("val@example.com", ["workbench:view"])
    listing = await viewer.get("/ui/acme/flows")
    assert listing.status_code == 200
    assert "hello" in listing.text and "New flow" not in listing.text
    page = await viewer.get("/ui/acme/flows/hello")
    assert page.status_code == 200 and "readonly" in page.text and "Save draft" not in page.text
    assert (await viewer.get("/ui/acme/flows/hello/export")).status_code == 200
    token = csrf_of(page.text)
    headers = {"X-CSRF-Token": token}
    for path, data in [("/ui/acme/flows", {"name": "New"}),
                       ("/ui/acme/flows/hello/draft", {"definition": json.dumps(hello("Changed"))}),
                       ("/ui/acme/flows/hello/publish", {}),
                       ("/ui/acme/flows/hello/customer-center", {"enabled": "true"}),
                       ("/ui/acme/flows/hello/test", {"variables": "{}"}),
                       ("/ui/acme/flows/hello/clone", {}),
                       ("/ui/acme/flows/hello/archive", {"archived": "true"}),
                       ("/ui/acme/flows/import", {"document": json.dumps(
                           await flow_service.export_flow(hub, "acme", "hello"))})]:
        refused = await viewer.post(path, data=data, headers=headers)
        assert refused.status_code == 403, path
    detail = await flow_service.get_flow(hub, "acme", "hello")
    assert detail["name"] == "Hello" and detail["publishedVersion"] is None
    assert detail["customerCenterEnabled"] is False and detail["state"] == "draft"
    assert await audit_actions(hub, "hello") == []


async def test_customer_center_members_are_refused_every_workbench_action(hub, hub_env, signed_in):
    await flow_service.create_flow(hub, "acme", hello(), "hello")
    await flow_service.publish(hub, "acme", "hello")
    document = json.dumps(await flow_service.export_flow(hub, "acme", "hello"))
    for email, permission in (("cv@example.com", "customer_center:view"),
                              ("ce@example.com", "customer_center:edit")):
        member = await signed_in(email, [permission])
        token = csrf_of((await member.get("/ui/acme/customers")).text)
        for path, data in [("/ui/acme/flows/hello/publish", {}),
                           ("/ui/acme/flows/hello/clone", {"name": "Copy", "id": "copy"}),
                           ("/ui/acme/flows/hello/customer-center", {"enabled": "true"}),
                           ("/ui/acme/flows/import", {"document": document, "replace": "on"}),
                           ("/ui/acme/flows/hello/test", {"variables": "{}"})]:
            refused = await member.post(path, data={**data, "csrf_token": token},
                                        headers={"X-CSRF-Token": token})
            assert refused.status_code == 403, (permission, path)
    detail = await flow_service.get_flow(hub, "acme", "hello")
    assert detail["customerCenterEnabled"] is False and detail["draftVersion"] is None
    assert [f["flowConfigId"] for f in (await flow_service.list_flows(hub, "acme"))["flows"]] == ["hello"]
    assert await audit_actions(hub, "hello") == []


async def test_members_of_another_environment_are_refused(hub, hub_env, signed_in):
    await make_environment(hub, "other")
    await flow_service.create_flow(hub, "acme", hello(), "hello")
    outsider = await signed_in("olga@example.com", ["workbench:admin"], ["other"])
    page = await outsider.get("/ui/other/flows")
    token = csrf_of(page.text)
    assert (await outsider.get("/ui/acme/flows")).status_code == 403
    assert (await outsider.get("/ui/acme/flows/hello")).status_code == 403
    assert (await outsider.get("/ui/acme/analytics")).status_code == 403
    assert (await outsider.get("/ui/acme/workbench/customers")).status_code == 403
    publish = await outsider.post("/ui/acme/flows/hello/publish", headers={"X-CSRF-Token": token})
    assert publish.status_code == 403
    # A share link of acme names an environment where the member holds nothing.
    link = f"/ui/share/{share_token(hub, 'acme', 'hello', 1)}"
    assert (await outsider.get(link)).status_code == 403


async def test_new_flow_edit_with_errors_then_fix_and_publish(hub, hub_env, signed_in):
    client, token = await editor(signed_in)
    created = await client.post("/ui/acme/flows",
                                data={"name": "Welcome", "id": "welcome", "csrf_token": token})
    assert created.status_code == 303 and created.headers["location"] == "/ui/acme/flows/welcome"
    page = await client.get("/ui/acme/flows/welcome")
    definition = json.loads(textarea(page.text))
    assert definition["name"] == "Welcome"
    # Broken: a step pointing nowhere and an unknown variable; each issue is shown with its path.
    broken = copy.deepcopy(definition)
    broken["steps"][0]["next"] = "nowhere"
    broken["cardTemplates"][0]["elements"][1]["text"] = "{{variables.missing}}"
    refused = await client.post("/ui/acme/flows/welcome/draft", data={"definition": json.dumps(broken)},
                                headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert refused.status_code == 422
    assert "steps[0].next" in refused.text and "cardTemplates[0].elements[1].text" in refused.text
    assert 'aria-invalid="true"' in refused.text
    assert "nowhere" in textarea(refused.text)  # what was typed stays in the editor
    not_json = await client.post("/ui/acme/flows/welcome/draft", data={"definition": "{\n  \"name\": ",
                                                                        "csrf_token": token})
    assert not_json.status_code == 422 and "line 2, column" in not_json.text and "not JSON" in not_json.text
    # Fixed: saved, then published as version 1; the next save opens version 2.
    fixed = hello("Welcome")
    saved = await client.post("/ui/acme/flows/welcome/draft", data={"definition": json.dumps(fixed)},
                              headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert saved.status_code == 200 and "Draft v1 saved" in saved.text
    assert 'id="wb-flow"' in saved.text and "<html" not in saved.text
    published = await client.post("/ui/acme/flows/welcome/publish", headers={"X-CSRF-Token": token})
    assert published.status_code == 200 and "Version 1 published" in published.text
    assert (await flow_service.get_flow(hub, "acme", "welcome"))["publishedVersion"] == 1
    fixed["name"] = "Welcome back"
    await client.post("/ui/acme/flows/welcome/draft",
                      data={"definition": json.dumps(fixed), "csrf_token": token})
    again = await client.post("/ui/acme/flows/welcome/publish", data={"csrf_token": token})
    assert "Version 2 published" in again.text
    detail = await flow_service.get_flow(hub, "acme", "welcome")
    assert detail["publishedVersion"] == 2 and detail["name"] == "Welcome back"
    nothing = await client.post("/ui/acme/flows/welcome/publish", data={"csrf_token": token})
    assert nothing.status_code == 422 and "no draft to publish" in nothing.text
    # Older versions open read-only.
    old = await client.get("/ui/acme/flows/welcome?version=1")
    assert json.loads(textarea(old.text))["name"] == "Welcome" and "readonly" in old.text
    assert await audit_actions(hub, "welcome") == ["flow.published", "flow.draft_saved", "flow.published",
                                                   "flow.draft_saved", "flow.created"]
    latest = (await staff_service.audit_log(hub, "acme", target="flow:welcome"))[0]
    assert latest["detail"] == {"version": 2} and latest["staffEmail"] == "eve@example.com"


async def test_the_readable_view_and_card_previews(hub, hub_env, signed_in):
    await flow_service.create_flow(hub, "acme", FRAUD_ALERT, "fraud")
    await flow_service.create_flow(hub, "acme", hello(), "hello")
    client, _ = await editor(signed_in)
    page = (await client.get("/ui/acme/flows/fraud")).text
    assert "await_answer" in page and "onTimeout →" in page and "cases[0].next →" in page
    assert "fraudApiUrl" in page and "https://bank.example.com/api/fraud" in page
    assert 'href="/ui/acme/flows/schema.json"' in page
    cards = [json.loads(unescape(c)) for c in re.findall(r"data-card='([^']*)'", page)]
    assert [c["templateId"] for c in cards] == ["fraud-check", "card-blocked", "thanks"]
    assert cards[0]["content"]["elements"][0] == {"type": "headline", "text": "Did you make this payment?"}
    assert "{{variables.amount}}" in cards[0]["content"]["elements"][1]["text"]  # no default: as written
    hello_page = (await client.get("/ui/acme/flows/hello")).text
    [card] = [json.loads(unescape(c)) for c in re.findall(r"data-card='([^']*)'", hello_page)]
    assert card["content"]["elements"][0]["text"] == "Hello Ana"  # filled with the default
    assert card["status"] == "active" and card["cardInstanceId"] == "preview-hi"
    schema = await client.get("/ui/acme/flows/schema.json")
    assert schema.status_code == 200 and schema.json()["title"] == "Hub flow definition"
    served = await client.get(f"/v1/{hub_env.id}/flows/schema", headers=hub_env.headers())
    assert schema.json() == served.json()  # the same schema as the API's, plugins' push platforms included


async def test_the_customer_center_switch(hub, hub_env, signed_in):
    await flow_service.create_flow(hub, "acme", hello(), "hello")
    await flow_service.publish(hub, "acme", "hello")
    client, token = await editor(signed_in)
    on = await client.post("/ui/acme/flows/hello/customer-center", data={"enabled": "true"},
                           headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert on.status_code == 200 and on.text.lstrip().startswith('<tr id="flow-hello">')
    assert "publish it to offer the flow" in on.text  # version 1 does not allow the trigger
    await client.post("/ui/acme/flows/hello/publish", headers={"X-CSRF-Token": token})
    detail = await flow_service.get_flow(hub, "acme", "hello")
    assert detail["customerCenterEnabled"] is True
    listing = await client.get("/ui/acme/flows")
    assert 'aria-checked="true"' in listing.text
    off = await client.post("/ui/acme/flows/hello/customer-center",
                            data={"enabled": "false", "csrf_token": token})
    assert off.status_code == 303 and off.headers["location"] == "/ui/acme/flows"
    assert (await flow_service.get_flow(hub, "acme", "hello"))["customerCenterEnabled"] is False
    assert await audit_actions(hub, "hello") == ["flow.customer_center_disabled", "flow.published",
                                                 "flow.customer_center_enabled"]
    await flow_service.set_archived(hub, "acme", "hello", True)
    refused = await client.post("/ui/acme/flows/hello/customer-center", data={"enabled": "true"},
                                headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert refused.status_code == 409 and "is archived" in refused.text
    missing = await client.post("/ui/acme/flows/nope/customer-center", data={"enabled": "true"},
                                headers={"X-CSRF-Token": token})
    assert missing.status_code == 404


async def test_state_filter_clone_archive(hub, hub_env, signed_in):
    await flow_service.create_flow(hub, "acme", hello("Draft one"), "draft-one")
    await flow_service.create_flow(hub, "acme", hello("Live one"), "live-one")
    await flow_service.publish(hub, "acme", "live-one")
    client, token = await editor(signed_in)
    drafts = (await client.get("/ui/acme/flows?state=draft")).text
    assert "Draft one" in drafts and "Live one" not in drafts
    cloned = await client.post("/ui/acme/flows/live-one/clone", data={"id": "live-two", "csrf_token": token})
    assert cloned.status_code == 303 and cloned.headers["location"] == "/ui/acme/flows/live-two"
    assert (await flow_service.get_flow(hub, "acme", "live-two"))["name"] == "Live one (copy)"
    taken = await client.post("/ui/acme/flows/live-one/clone", data={"id": "live-two", "csrf_token": token})
    assert taken.status_code == 422 and "already exists" in taken.text
    archived = await client.post("/ui/acme/flows/live-one/archive",
                                 data={"archived": "true", "csrf_token": token})
    assert archived.status_code == 200 and "Flow archived" in archived.text and "Unarchive" in archived.text
    assert "Live one" in (await client.get("/ui/acme/flows?state=archived")).text
    refused = await client.post("/ui/acme/flows/live-one/draft", data={"definition": json.dumps(hello()),
                                                                       "csrf_token": token})
    assert refused.status_code == 422 and "archived" in refused.text
    back = await client.post("/ui/acme/flows/live-one/archive",
                             data={"archived": "false", "csrf_token": token})
    assert "Flow unarchived" in back.text
    assert await audit_actions(hub, "live-one") == ["flow.unarchived", "flow.archived"]
    assert await audit_actions(hub, "live-two") == ["flow.cloned"]


async def test_export_import_round_trip(hub, hub_env, signed_in):
    await flow_service.create_flow(hub, "acme", FRAUD_ALERT, "fraud")
    client, token = await editor(signed_in)
    exported = await client.get("/ui/acme/flows/fraud/export")
    assert exported.status_code == 200
    assert exported.headers["content-disposition"] == 'attachment; filename="fraud.json"'
    document = exported.json()
    document["flowConfigId"] = "fraud-copy"
    imported = await client.post("/ui/acme/flows/import", data={"csrf_token": token},
                                 files={"file": ("fraud.json", json.dumps(document), "application/json")})
    assert imported.status_code == 303 and imported.headers["location"] == "/ui/acme/flows/fraud-copy"
    copied = await flow_service.get_flow(hub, "acme", "fraud-copy")
    original = await flow_service.get_flow(hub, "acme", "fraud")
    assert copied["draft"]["definition"] == original["draft"]["definition"]
    # The same id again: refused unless replacing its draft.
    again = await client.post("/ui/acme/flows/import",
                              data={"csrf_token": token, "document": json.dumps(document)})
    assert again.status_code == 422 and "already exists" in again.text
    document["definition"]["name"] = "Fraud alert, replaced"
    replaced = await client.post("/ui/acme/flows/import", data={"csrf_token": token, "replace": "on",
                                                                "document": json.dumps(document)})
    assert replaced.status_code == 303
    assert (await flow_service.get_flow(hub, "acme", "fraud-copy"))["name"] == "Fraud alert, replaced"
    document["definition"]["steps"][0]["template"] = "nope"
    document["formatVersion"] = 7
    bad = await client.post("/ui/acme/flows/import", data={"csrf_token": token, "replace": "on",
                                                           "document": json.dumps(document)})
    assert bad.status_code == 422 and "formatVersion" in bad.text
    not_json = await client.post("/ui/acme/flows/import", data={"csrf_token": token, "document": "{oops"})
    assert not_json.status_code == 422 and "not JSON" in not_json.text
    assert await audit_actions(hub, "fraud-copy") == ["flow.imported", "flow.imported"]


async def test_test_send_reaches_test_users_only(hub, hub_env, signed_in, run_jobs):
    await customer_service.upsert_customers(hub, "acme", [
        {"userId": "tester-1", "isTestUser": True}, {"userId": "tester-2", "isTestUser": True},
        {"userId": "real-1"}])
    await flow_service.create_flow(hub, "acme", hello(), "hello")
    client, token = await editor(signed_in)
    page = await client.get("/ui/acme/flows/hello")
    assert "Send to test users" not in page.text  # nothing published yet
    await flow_service.publish(hub, "acme", "hello")
    page = await client.get("/ui/acme/flows/hello")
    assert "every test user (2 in acme)" in page.text
    bad = await client.post("/ui/acme/flows/hello/test", data={"variables": "[1]", "csrf_token": token})
    assert bad.status_code == 422 and "must be a JSON object" in bad.text
    wrong_type = await client.post("/ui/acme/flows/hello/test", data={"variables": '{"who": 5}',
                                                                      "csrf_token": token})
    assert wrong_type.status_code == 422 and "variables.who" in wrong_type.text
    sent = await client.post("/ui/acme/flows/hello/test", data={"variables": '{"code": "1234"}'},
                             headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert sent.status_code == 200 and "Test send started" in sent.text
    invocation_id = re.search(r'/test/([^"]+)"', sent.text).group(1)
    await run_jobs()
    status = await client.get(f"/ui/acme/flows/hello/test/{invocation_id}", headers={"HX-Request": "true"})
    assert "2 test user(s) targeted" in status.text and "hx-get" not in status.text
    async with hub.db.connect() as conn:
        from sqlalchemy import select

        from hub.db import tables
        users = set((await conn.execute(select(tables.card.c.user_id).where(
            tables.card.c.flow_id == "hello"))).scalars())
    assert users == {"tester-1", "tester-2"}
    assert await audit_actions(hub, "hello") == ["flow.test_sent"]
    no_tests = {**hello("No tests"), "triggers": {"test": False}}
    await flow_service.create_flow(hub, "acme", no_tests, "no-tests")
    await flow_service.publish(hub, "acme", "no-tests")
    refused = await client.post("/ui/acme/flows/no-tests/test", data={"variables": "{}", "csrf_token": token})
    assert refused.status_code == 422 and "cannot be started from test" in refused.text
    assert await audit_actions(hub, "no-tests") == []


async def test_share_links_show_one_version_to_staff_who_may_see_it(hub, hub_env, signed_in, ui_client):
    await flow_service.create_flow(hub, "acme", hello("First"), "hello")
    await flow_service.publish(hub, "acme", "hello")
    await flow_service.update_draft(hub, "acme", "hello", hello("Second"))
    client, _ = await editor(signed_in)
    page = (await client.get("/ui/acme/flows/hello?version=1")).text
    link = re.search(r'id="share-link" readonly value="([^"]+)"', page).group(1)
    viewer = await signed_in("val@example.com", ["workbench:view"])
    shared = await viewer.get(link)
    assert shared.status_code == 200 and "First" in shared.text and "Second" not in shared.text
    assert "readonly" in shared.text
    assert 'href="/ui/acme/flows"' in shared.text  # the navigation is the flow's environment's
    # Altered tokens are refused; without a session, sign in first; support staff are refused.
    body, mac = link.removeprefix("/ui/share/").split(".")
    forged = f"/ui/share/{share_token(hub, 'acme', 'hello', 2).split('.')[0]}.{mac}"
    assert (await viewer.get(forged)).status_code == 404
    anonymous = await ui_client().get(link)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/ui/login")
    support = await signed_in("sam@example.com", ["customer_center:edit"])
    assert (await support.get(link)).status_code == 403


async def test_customers_list_filters(hub, hub_env, signed_in):
    await customer_service.define_field(hub, "acme", "plan", "text")
    await customer_service.upsert_customers(hub, "acme", [
        {"userId": "ana", "tags": ["vip"], "fields": {"plan": "gold", "name": "Ana"}},
        {"userId": "bob", "tags": ["vip"], "fields": {"plan": "silver"}, "isTestUser": True},
        {"userId": "cy", "fields": {"plan": "gold"}}])
    viewer = await signed_in("val@example.com", ["workbench:view"])

    async def users(**params) -> list[str]:
        page = await viewer.get("/ui/acme/workbench/customers", params=params)
        assert page.status_code == 200, page.text
        return re.findall(r'href="/ui/acme/customers/([^"]+)"', page.text)

    assert await users() == ["ana", "bob", "cy"]
    assert await users(tag="vip") == ["ana", "bob"]
    assert await users(test="yes") == ["bob"]
    assert await users(test="no", field="plan", value="gold") == ["ana", "cy"]
    assert await users(tag="vip", field="plan", value="gold") == ["ana"]
    bad = await viewer.get("/ui/acme/workbench/customers", params={"field": "nope", "value": "x"})
    assert bad.status_code == 422 and "is not a defined field" in bad.text
    support = await signed_in("sam@example.com", ["customer_center:view"])
    assert (await support.get("/ui/acme/workbench/customers")).headers["location"] == "/ui/acme/customers"


async def test_customers_list_pages(hub, hub_env, signed_in):
    await customer_service.upsert_customers(hub, "acme", [{"userId": f"u{i:03d}"} for i in range(60)])
    viewer = await signed_in("val@example.com", ["workbench:view"])
    first = await viewer.get("/ui/acme/workbench/customers")
    assert first.text.count('href="/ui/acme/customers/u') == 50
    next_link = unescape(re.search(r'href="(/ui/acme/workbench/customers\?[^"]*cursor=[^"]+)"',
                                   first.text).group(1))
    second = await viewer.get(next_link)
    assert second.text.count('href="/ui/acme/customers/u') == 10 and "u059" in second.text


async def test_analytics_tail_returns_only_newer_events(hub, hub_env, signed_in):
    await analytics_service.record_custom_events(hub, "acme", [
        {"userId": "ana", "name": "opened-app"}, {"userId": "bob", "name": "opened-app"}])
    viewer = await signed_in("val@example.com", ["workbench:view"])
    page = await viewer.get("/ui/acme/analytics")
    assert page.status_code == 200 and page.text.count('class="wb-event"') == 2
    poll = unescape(re.search(r'hx-get="([^"]+)"', page.text).group(1))
    quiet = await viewer.get(poll, headers={"HX-Request": "true"})
    assert 'class="wb-event"' not in quiet.text and 'id="wb-tail"' in quiet.text
    await analytics_service.record_custom_events(hub, "acme", [
        {"userId": "ana", "name": "paid"}, {"userId": "cy", "name": "opened-app"}])
    fresh = await viewer.get(poll, headers={"HX-Request": "true"})
    assert fresh.text.count('class="wb-event"') == 2 and 'hx-swap-oob="afterbegin:#wb-events"' in fresh.text
    assert fresh.text.index(">cy<") < fresh.text.index(">ana<")  # newest first
    poll = unescape(re.search(r'hx-get="([^"]+)"', fresh.text).group(1))
    assert 'class="wb-event"' not in (await viewer.get(poll)).text
    # Filters: by user, by name, by flow.
    filtered = await viewer.get("/ui/acme/analytics", params={"user": "ana"})
    assert filtered.text.count('class="wb-event"') == 2
    by_name = await viewer.get("/ui/acme/analytics", params={"name": "paid, nothing"})
    assert by_name.text.count('class="wb-event"') == 1
    filtered_poll = unescape(re.search(r'hx-get="([^"]+)"', by_name.text).group(1))
    assert "name=paid" in filtered_poll
    await analytics_service.record_custom_events(hub, "acme", [{"userId": "ana", "name": "opened-app"}])
    assert 'class="wb-event"' not in (await viewer.get(filtered_poll)).text
    by_flow = await viewer.get("/ui/acme/analytics", params={"flow": "none"})
    assert by_flow.text.count('class="wb-event"') == 0
    broken = await viewer.get("/ui/acme/analytics/tail", params={"after": "garbage"})
    assert broken.status_code == 200 and 'id="wb-tail"' in broken.text

"""The Customer Center's customer page, sending a flow and the audit log, through HTTP."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from hub.core.analytics import build_event
from hub.core.clock import now
from hub.services import analytics as analytics_service
from hub.services import cards as card_service
from hub.services import customers as customer_service
from hub.services import flows as flow_service
from hub.services import triggers
from hub.services.outbox import transaction
from hub_plugins.workbench import staff as staff_service
from tests.plugins.workbench.conftest import csrf_of

FORM_ELEMENTS = [
    {"type": "headline", "text": "Tell us more, {{variables.caseId}}"},
    {"type": "input", "inputType": "text", "id": "comment", "label": "Comment"},
    {"type": "input", "inputType": "number", "id": "amount", "label": ""},
    {"type": "input", "inputType": "date", "id": "when", "label": "When"},
    {
        "type": "input",
        "inputType": "checkbox",
        "id": "channels",
        "label": "Channels",
        "options": [
            {"value": "sms", "label": "Text message"},
            {"value": "mail", "label": "Letter"},
            {"value": "call", "label": "Phone call"},
        ],
    },
    {
        "type": "input",
        "inputType": "dropdown",
        "id": "branch",
        "label": "Branch",
        "options": [{"value": "north", "label": "North"}, {"value": "south", "label": "South"}],
    },
    {"type": "input", "inputType": "toggle", "id": "agree", "label": "Agree"},
    {"type": "button", "label": "Send", "action": "submit"},
]

RESOLVE: dict[str, Any] = {
    "name": "Resolve case",
    "description": "Tell the customer their case is resolved.",
    "variables": [
        {"name": "caseId", "type": "string", "required": True},
        {"name": "amount", "type": "number", "default": 10},
        {"name": "due", "type": "date"},
        {"name": "urgent", "type": "boolean", "default": False},
        {"name": "extra", "type": "object"},
        {"name": "brand", "type": "string", "default": "Acme", "overridable": False},
    ],
    "cardTemplates": [
        {
            "id": "resolved",
            "name": "Case resolved",
            "priority": 6,
            "platforms": ["web", "ios"],
            "expiresIn": "P7D",
            "elements": FORM_ELEMENTS,
        }
    ],
    "steps": [{"id": "send", "type": "card", "template": "resolved"}],
    "triggers": {"customerCenter": True},
}
NEEDS_OBJECT: dict[str, Any] = {
    "name": "Needs an object",
    "variables": [{"name": "order", "type": "object", "required": True}],
    "cardTemplates": [{"id": "c", "name": "C", "elements": [{"type": "headline", "text": "Order"}]}],
    "steps": [{"id": "send", "type": "card", "template": "c"}],
    "triggers": {"customerCenter": True},
}
INTERNAL: dict[str, Any] = {
    "name": "Internal only",
    "cardTemplates": [
        {"id": "c", "name": "Internal", "elements": [{"type": "headline", "text": "Internal"}]}
    ],
    "steps": [{"id": "send", "type": "card", "template": "c"}],
}


def note_flow(title: str, **template: Any) -> dict[str, Any]:
    return {
        "name": title,
        "cardTemplates": [
            {
                "id": "n",
                "name": title,
                **template,
                "elements": [{"type": "headline", "text": title}, {"type": "text", "text": "A note"}],
            }
        ],
        "steps": [{"id": "send", "type": "card", "template": "n"}],
    }


async def publish(hub: Any, flow_id: str, definition: dict[str, Any]) -> None:
    await flow_service.create_flow(hub, "acme", definition, flow_id)
    await flow_service.publish(hub, "acme", flow_id)


async def start(
    hub: Any, run_jobs: Any, flow_id: str, user_id: str = "u1", **variables: Any
) -> dict[str, Any]:
    """Start ``flow_id`` for ``user_id`` through the API path, run the jobs; its one card."""
    invocation = await triggers.start_invocation(
        hub, "acme", flow_id, target={"usersById": [user_id]}, variables=variables
    )
    await run_jobs()
    cards = await card_service.list_cards(hub, "acme", invocation_id=invocation["flowInvocationId"])
    assert len(cards["cards"]) == 1, cards
    return cards["cards"][0]


async def customer_world(hub: Any, run_jobs: Any) -> dict[str, Any]:
    """Customer u1 with a card in every state (and one in another container), the flows above."""
    await customer_service.upsert_customers(
        hub,
        "acme",
        [
            {
                "userId": "u1",
                "fields": {"name": "Ada Lovelace", "email": "ada@example.com", "city": "London"},
                "tags": ["vip", "beta"],
                "isTestUser": True,
            }
        ],
    )
    await card_service.create_container(hub, "acme", "offers", "Offers")
    for flow_id, definition in (
        ("resolve", RESOLVE),
        ("needs_object", NEEDS_OBJECT),
        ("internal", INTERNAL),
        ("active_note", note_flow("Active note")),
        ("snoozed_note", note_flow("Snoozed note")),
        ("embargoed_note", note_flow("Embargoed note", embargoFor="P1D")),
        ("dismissed_note", note_flow("Dismissed note")),
        ("expired_note", note_flow("Expired note")),
        ("cancelled_note", note_flow("Cancelled note")),
        ("offer_note", note_flow("Offer note", streams=["offers"])),
    ):
        await publish(hub, flow_id, definition)
    cards = {
        name: await start(hub, run_jobs, f"{name}_note")
        for name in ("active", "snoozed", "embargoed", "dismissed", "expired", "cancelled", "offer")
    }
    cards["completed"] = await start(hub, run_jobs, "resolve", caseId="C-42")
    await card_service.act(
        hub, "acme", cards["snoozed"]["cardInstanceId"], "snooze", until=now() + timedelta(days=1)
    )
    await card_service.act(hub, "acme", cards["dismissed"]["cardInstanceId"], "dismiss")
    await card_service.cancel_cards(
        hub, "acme", [cards["cancelled"]["cardInstanceId"]], "no longer needed", source="internal"
    )
    async with transaction(hub) as tx:
        await card_service.transition(hub, tx, "acme", cards["expired"]["cardInstanceId"], "expire")
    await card_service.act(
        hub,
        "acme",
        cards["completed"]["cardInstanceId"],
        "submit",
        values={
            "comment": "All good",
            "amount": 12,
            "channels": ["sms", "call"],
            "branch": "south",
            "agree": True,
        },
    )
    await run_jobs()
    return cards


def section(html: str, element_id: str) -> str:
    found = re.search(rf'<div id="{element_id}".*', html, re.S)
    assert found, element_id
    return found.group(0)


# --- permissions ----------------------------------------------------------------------------


async def test_the_customer_page_needs_customer_center_view_in_that_environment(
    hub, hub_env, run_jobs, ui_client, signed_in, make_staff
):
    await customer_world(hub, run_jobs)
    anonymous = await ui_client().get("/ui/acme/customers/u1")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/ui/login?next=%2Fui%2Facme%2Fcustomers%2Fu1"
    elsewhere = await signed_in("bo@example.com", ["customer_center:edit"], ["other"])
    assert (await elsewhere.get("/ui/acme/customers/u1")).status_code == 403
    assert (await elsewhere.get("/ui/acme/customers/u1/events")).status_code == 403
    workbench_only = await signed_in("cy@example.com", ["workbench:edit"])
    assert (await workbench_only.get("/ui/acme/customers/u1")).status_code == 403
    viewer = await signed_in("vi@example.com", ["customer_center:view"])
    page = await viewer.get("/ui/acme/customers/u1")
    assert page.status_code == 200
    assert "Ada Lovelace" in page.text
    assert "Send flow" not in page.text
    assert (await ui_client().get("/ui/acme/customers/nobody")).status_code == 303
    assert (await viewer.get("/ui/acme/customers/nobody")).status_code == 404


async def test_a_view_member_cannot_open_or_post_the_send_form(hub, hub_env, run_jobs, signed_in, ui_client):
    await customer_world(hub, run_jobs)
    viewer = await signed_in("vi@example.com", ["customer_center:view", "workbench:admin"])
    page = await viewer.get("/ui/acme/customers/u1")
    assert (await viewer.get("/ui/acme/customers/u1/send")).status_code == 403
    refused = await viewer.post(
        "/ui/acme/customers/u1/send",
        data={"csrf_token": csrf_of(page.text), "flow": "resolve", "var.caseId": "C-1"},
    )
    assert refused.status_code == 403
    other_env = await signed_in("ot@example.com", ["customer_center:edit"], ["other"])
    other_page = await other_env.get("/ui/other/customers")
    refused = await other_env.post(
        "/ui/acme/customers/u1/send",
        data={"csrf_token": csrf_of(other_page.text), "flow": "resolve", "var.caseId": "C-1"},
    )
    assert refused.status_code == 403
    anonymous = await ui_client().post("/ui/acme/customers/u1/send", data={"flow": "resolve"})
    assert anonymous.status_code == 401
    assert await staff_service.audit_log(hub, "acme") == []
    assert (await card_service.list_cards(hub, "acme", user_id="u1", statuses=["active"]))["cards"][0][
        "flowConfigId"
    ] != "resolve"


async def test_an_edit_member_without_its_csrf_token_is_refused(hub, hub_env, run_jobs, signed_in):
    await customer_world(hub, run_jobs)
    editor = await signed_in("ed@example.com", ["customer_center:edit"])
    refused = await editor.post("/ui/acme/customers/u1/send", data={"flow": "resolve", "var.caseId": "C-1"})
    assert refused.status_code == 403
    assert await staff_service.audit_log(hub, "acme") == []


# --- the customer page ----------------------------------------------------------------------


async def test_the_profile_and_the_active_cards_of_the_default_container(hub, hub_env, run_jobs, signed_in):
    cards = await customer_world(hub, run_jobs)
    await customer_service.mark_seen(hub, "acme", "u1")
    viewer = await signed_in("vi@example.com", ["customer_center:view"])
    page = (await viewer.get("/ui/acme/customers/u1")).text
    for text in (
        "ada@example.com",
        "London",
        "vip",
        "beta",
        "Test user</dt><dd>yes",
        "Notifications</dt><dd>enabled",
    ):
        assert text in page, text
    assert "Last seen</dt><dd>never" not in page.split("Cards")[0]
    listed = section(page, "cc-cards")
    assert cards["active"]["cardInstanceId"] in listed
    for other in ("snoozed", "embargoed", "completed", "dismissed", "expired", "cancelled", "offer"):
        assert cards[other]["cardInstanceId"] not in listed, other
    assert re.search(r'state=active&amp;container=default"[^>]*aria-current="page"', listed)
    assert '<a href="/ui/acme/flows/active_note">Active note</a>' in listed


async def test_each_state_tab_shows_the_cards_in_that_state(hub, hub_env, run_jobs, signed_in):
    cards = await customer_world(hub, run_jobs)
    viewer = await signed_in("vi@example.com", ["customer_center:view"])
    for state in ("active", "snoozed", "embargoed", "completed", "dismissed", "expired", "cancelled"):
        response = await viewer.get(
            "/ui/acme/customers/u1",
            params={"state": state},
            headers={"HX-Request": "true", "HX-Target": "cc-cards"},
        )
        assert response.status_code == 200
        assert response.text.lstrip().startswith('<div id="cc-cards"'), "htmx gets the card list alone"
        assert "<html" not in response.text
        shown = {name for name, card in cards.items() if card["cardInstanceId"] in response.text}
        assert shown == {state}, (state, shown)
        assert re.search(rf'state={state}&amp;container=default"[^>]*\s*aria-current="page"', response.text)
    offers = await viewer.get("/ui/acme/customers/u1", params={"container": "offers"})
    assert cards["offer"]["cardInstanceId"] in section(offers.text, "cc-cards")
    assert cards["active"]["cardInstanceId"] not in section(offers.text, "cc-cards")
    assert '<option value="offers" selected>' in offers.text
    unknown = await viewer.get("/ui/acme/customers/u1", params={"state": "gone", "container": "nope"})
    assert unknown.status_code == 200 and cards["active"]["cardInstanceId"] in unknown.text


async def test_a_card_shows_platforms_expiry_priority_its_flow_and_when_it_was_seen(
    hub, hub_env, run_jobs, signed_in
):
    cards = await customer_world(hub, run_jobs)
    completed = cards["completed"]
    seen_at = now() - timedelta(minutes=5)
    event = build_event(
        "card-displayed",
        user_id="u1",
        timestamp=seen_at,
        event_context={"actionSource": "user"},
        card={"cardInstanceId": completed["cardInstanceId"]},
    )
    async with transaction(hub) as tx:
        await analytics_service.record_events(tx, "acme", [event])
    viewer = await signed_in("vi@example.com", ["customer_center:view"])
    page = (await viewer.get("/ui/acme/customers/u1", params={"state": "completed"})).text
    item = section(page, "cc-cards")
    assert "Platforms</dt><dd>web, ios" in item
    assert "Priority</dt><dd>6" in item
    assert "Expires</dt><dd>never" not in item
    assert f"Last seen</dt><dd>{seen_at.strftime('%Y-%m-%d %H:%M UTC')}" in item
    assert "Last acted</dt><dd>no action" not in item, "the submit is an action"
    assert '<a href="/ui/acme/flows/resolve">Resolve case</a> v1' in item


async def test_submitted_values_show_each_input_with_its_icon_and_each_option_selected_or_not(
    hub, hub_env, run_jobs, signed_in
):
    await customer_world(hub, run_jobs)
    viewer = await signed_in("vi@example.com", ["customer_center:view"])
    item = section((await viewer.get("/ui/acme/customers/u1?state=completed")).text, "cc-cards")
    assert re.search(r'aria-label="Text input"[^>]*><path d="[^"]+"/></svg>\s*<strong>Comment</strong>', item)
    assert ": All good" in item
    assert "<strong>amount</strong>" in item, "an input without a label shows its id"
    assert ": 12" in item
    assert 'aria-label="Date input"' in item and "<strong>When</strong>" in item
    assert re.search(r"<strong>When</strong>\s*: <span class=\"muted\">no answer", item)
    options = re.findall(
        r'<li class="cc-(on|off)">.*?\n\s*(.+?) <span class="cc-sr">(selected|not selected)</span>', item
    )
    assert options == [
        ("on", "Text message", "selected"),
        ("off", "Letter", "not selected"),
        ("on", "Phone call", "selected"),
        ("off", "North", "not selected"),
        ("on", "South", "selected"),
    ]
    assert 'aria-label="Toggle"' in item and ": On" in item
    assert 'aria-label="Checkboxes"' in item and 'aria-label="Dropdown"' in item


async def test_the_customer_analytics_are_paged_newest_first(hub, hub_env, run_jobs, signed_in):
    await customer_world(hub, run_jobs)
    events = await analytics_service.recent_events(hub, "acme", user_id="u1", limit=1000)
    assert len(events["events"]) > 25
    stamps = [e["timestamp"] for e in events["events"]]
    assert stamps == sorted(stamps, reverse=True)
    viewer = await signed_in("vi@example.com", ["customer_center:view"])
    page = (await viewer.get("/ui/acme/customers/u1")).text
    rows = re.findall(r"<tr><td>([a-z-]+)", section(page, "cc-events"))
    assert rows == [e["analyticsEvent"] for e in events["events"][:25]]
    more = re.search(r'href="(/ui/acme/customers/u1/events\?cursor=[^"]+)"', page)
    assert more
    older = await viewer.get(more.group(1).replace("&amp;", "&"), headers={"HX-Request": "true"})
    assert older.status_code == 200 and "<html" not in older.text
    assert re.findall(r"<tr><td>([a-z-]+)", older.text) == [
        e["analyticsEvent"] for e in events["events"][25:50]
    ]
    full = await viewer.get(more.group(1).replace("&amp;", "&"))
    assert "<html" in full.text and "Analytics of u1" in full.text
    bad = await viewer.get("/ui/acme/customers/u1/events?cursor=nonsense")
    assert bad.status_code == 400


async def test_recent_events_and_last_card_events_services(hub, hub_env, run_jobs):
    cards = await customer_world(hub, run_jobs)
    first = await analytics_service.recent_events(hub, "acme", user_id="u1", limit=3)
    second = await analytics_service.recent_events(
        hub, "acme", user_id="u1", cursor=first["nextCursor"], limit=3
    )
    everything = await analytics_service.recent_events(hub, "acme", user_id="u1", limit=6)
    assert [e["id"] for e in first["events"] + second["events"]] == [e["id"] for e in everything["events"]]
    assert (await analytics_service.recent_events(hub, "acme", user_id="nobody"))["events"] == []
    ids = [c["cardInstanceId"] for c in cards.values()]
    acted = await analytics_service.last_card_events(
        hub, "acme", "u1", ids, ["card-completed", "card-dismissed"]
    )
    assert set(acted) == {cards["completed"]["cardInstanceId"], cards["dismissed"]["cardInstanceId"]}
    assert await analytics_service.last_card_events(hub, "acme", "u1", [], ["card-completed"]) == {}


# --- sending a flow -------------------------------------------------------------------------


async def test_the_send_form_offers_only_flows_enabled_for_the_customer_center(
    hub, hub_env, run_jobs, signed_in
):
    await customer_world(hub, run_jobs)
    editor = await signed_in("ed@example.com", ["customer_center:edit"])
    page = await editor.get("/ui/acme/customers/u1")
    assert 'href="/ui/acme/customers/u1/send">Send flow</a>' in page.text
    listing = (await editor.get("/ui/acme/customers/u1/send")).text
    assert "Resolve case" in listing and "?flow=resolve" in listing
    assert "Needs an object" in listing and "Not sendable: needs the object variable order" in listing
    assert "?flow=needs_object" not in listing
    assert "Internal only" not in listing and "Active note" not in listing
    form = (await editor.get("/ui/acme/customers/u1/send?flow=resolve")).text
    assert re.search(r'<label for="var-caseId">caseId <span class="cc-required">\(required\)</span>', form)
    assert 'type="number" id="var-amount" name="var.amount" value="10"' in form
    assert 'type="date" id="var-due"' in form
    assert 'type="checkbox" id="var-urgent" name="var.urgent" value="true"' in form
    assert 'name="var.extra"' not in form, "object variables are not offered"
    assert 'name="var.brand"' not in form and "Fixed by the flow: brand = Acme" in form
    refused = await editor.get("/ui/acme/customers/u1/send?flow=internal")
    assert refused.status_code == 403 and "not enabled for the Customer Center" in refused.text


async def test_bad_variables_are_shown_next_to_their_fields_and_nothing_is_sent(
    hub, hub_env, run_jobs, signed_in
):
    await customer_world(hub, run_jobs)
    editor = await signed_in("ed@example.com", ["customer_center:edit"])
    token = csrf_of((await editor.get("/ui/acme/customers/u1/send?flow=resolve")).text)
    response = await editor.post(
        "/ui/acme/customers/u1/send",
        data={
            "csrf_token": token,
            "flow": "resolve",
            "var.caseId": "",
            "var.amount": "lots",
            "var.due": "31/01/2026",
        },
    )
    assert response.status_code == 422
    assert re.search(r'id="var-caseId-error">is required \(string\)', response.text)
    assert re.search(r'id="var-amount-error">must be a number', response.text)
    assert 'id="var-due-error"' in response.text
    assert 'value="lots"' in response.text, "what was typed is kept"
    assert 'aria-invalid="true"' in response.text
    assert await staff_service.audit_log(hub, "acme") == []
    blocked = await editor.post(
        "/ui/acme/customers/u1/send", data={"csrf_token": token, "flow": "needs_object"}
    )
    assert blocked.status_code == 422 and "needs the object variable order" in blocked.text


async def test_a_flow_not_enabled_for_the_customer_center_is_refused_even_when_posted(
    hub, hub_env, run_jobs, signed_in
):
    await customer_world(hub, run_jobs)
    editor = await signed_in("ed@example.com", ["customer_center:edit"])
    token = csrf_of((await editor.get("/ui/acme/customers/u1")).text)
    for flow_id, status in (("internal", 403), ("active_note", 403), ("missing", 404)):
        response = await editor.post(
            "/ui/acme/customers/u1/send", data={"csrf_token": token, "flow": flow_id}
        )
        assert response.status_code == status, (flow_id, response.text)
    assert await staff_service.audit_log(hub, "acme") == []


async def test_sending_starts_the_flow_records_the_audit_entry_and_the_card_arrives(
    hub, hub_env, run_jobs, signed_in
):
    await customer_world(hub, run_jobs)
    editor = await signed_in("ed@example.com", ["customer_center:edit"])
    token = csrf_of((await editor.get("/ui/acme/customers/u1/send?flow=resolve")).text)
    response = await editor.post(
        "/ui/acme/customers/u1/send",
        data={
            "csrf_token": token,
            "flow": "resolve",
            "var.caseId": "C-77",
            "var.amount": "25.5",
            "var.due": "2026-03-01",
            "var.urgent": "true",
        },
    )
    assert response.status_code == 303, response.text
    invocation_id = re.fullmatch(
        r"/ui/acme/customers/u1\?sent=(cc-[0-9a-f]{32})", response.headers["location"]
    )
    assert invocation_id
    invocation = await triggers.get_invocation(hub, "acme", invocation_id.group(1))
    assert invocation["source"] == "customer_center" and invocation["flowConfigId"] == "resolve"
    [entry] = await staff_service.audit_log(hub, "acme", target="u1")
    assert entry["staffEmail"] == "ed@example.com" and entry["action"] == "flow.sent"
    assert entry["detail"] == {
        "flowConfigId": "resolve",
        "flowName": "Resolve case",
        "flowVersion": 1,
        "flowInvocationId": invocation_id.group(1),
        "variables": {"caseId": "C-77", "amount": 25.5, "due": "2026-03-01", "urgent": True},
    }
    confirmation = await editor.get(response.headers["location"])
    assert "Flow sent." in confirmation.text and invocation_id.group(1) in confirmation.text
    assert "Waiting for the sent flow" in confirmation.text, "the cards refresh until the card is there"
    assert "ed@example.com" in confirmation.text.split("Sent by staff")[1]
    await run_jobs()
    refreshed = await editor.get(
        f"/ui/acme/customers/u1?state=active&container=default&awaiting={invocation_id.group(1)}&tries=1",
        headers={"HX-Request": "true", "HX-Target": "cc-cards"},
    )
    assert "Tell us more, C-77" in refreshed.text
    assert "Waiting for the sent flow" not in refreshed.text
    [card] = (await card_service.list_cards(hub, "acme", invocation_id=invocation_id.group(1)))["cards"]
    instance = await triggers.get_instance(hub, "acme", card["flowInstanceId"])
    assert instance["variables"]["caseId"] == "C-77" and instance["variables"]["brand"] == "Acme"


async def test_the_audit_log_page_is_for_edit_and_admin_members_and_is_paged(
    hub, hub_env, run_jobs, signed_in
):
    await customer_world(hub, run_jobs)
    editor = await signed_in("ed@example.com", ["customer_center:edit"])
    member = await staff_service.staff_by_email(hub, "ed@example.com")
    assert member is not None
    async with hub.db.begin() as conn:
        for i in range(55):
            await staff_service.record(
                conn, member, "acme", "flow.sent", f"user-{i}", {"flowConfigId": "resolve"}
            )
        await staff_service.record(conn, member, "other", "flow.sent", "elsewhere", {})
    first = await editor.get("/ui/acme/audit")
    assert first.status_code == 200
    assert "user-54" in first.text and "user-5<" in first.text and "user-4<" not in first.text
    assert "elsewhere" not in first.text
    older = re.search(r'href="(/ui/acme/audit\?before=\d+)">Older entries', first.text)
    assert older
    second = await editor.get(older.group(1))
    assert "user-4<" in second.text and "user-0<" in second.text and "user-54" not in second.text
    assert "Older entries" not in second.text
    assert 'href="/ui/acme/audit"' in first.text, "the navigation links the audit log"
    viewer = await signed_in("vw@example.com", ["customer_center:view"])
    assert 'href="/ui/acme/audit"' not in (await viewer.get("/ui/acme/customers/u1")).text
    admin = await signed_in("ad@example.com", ["workbench:admin"])
    assert (await admin.get("/ui/acme/audit")).status_code == 200
    for email, permissions, envs in (
        ("vi@example.com", ["customer_center:view"], ["acme"]),
        ("wb@example.com", ["workbench:edit"], ["acme"]),
        ("ot@example.com", ["customer_center:edit"], ["other"]),
    ):
        client = await signed_in(email, permissions, envs)
        assert (await client.get("/ui/acme/audit")).status_code == 403, email


async def test_user_ids_are_quoted_in_the_pages_links(hub, hub_env, signed_in):
    user = "ada lovelace@example.com"
    await customer_service.upsert_customers(hub, "acme", [{"userId": user, "fields": {}}])
    viewer = await signed_in("vi@example.com", ["customer_center:view"])
    page = await viewer.get("/ui/acme/customers/ada%20lovelace%40example.com")
    assert page.status_code == 200
    quoted = "/ui/acme/customers/ada%20lovelace%40example.com"
    assert f'href="{quoted}?state=snoozed&amp;container=default"' in page.text
    assert f'action="{quoted}"' in page.text


# --- many cards ---------------------------------------------------------------------------


async def copy_card(hub: Any, card_id: str, count: int, container: str = "default") -> None:
    """``count`` copies of a card, each a second newer than the last, headlined ``Bulk card <n>``."""
    from sqlalchemy import insert, select

    from hub.db import tables

    async with hub.db.begin() as conn:
        found = await conn.execute(select(tables.card).where(tables.card.c.id == card_id))
        row = dict(found.mappings().one())
        copies = []
        for n in range(count):
            content = {**row["content"], "elements": [{"type": "headline", "text": f"Bulk card {n}"}]}
            at = row["created_at"] + timedelta(seconds=n + 1)
            copies.append({**row, "id": f"bulk-{n:04d}", "lifecycle_id": f"bulk-{n:04d}", "content": content,
                           "streams": [container], "created_at": at, "updated_at": at, "published_at": at})
        await conn.execute(insert(tables.card), copies)


async def test_every_card_of_a_state_is_reachable_page_by_page_whatever_the_container(
    hub, hub_env, run_jobs, signed_in
):
    cards = await customer_world(hub, run_jobs)
    await copy_card(hub, cards["active"]["cardInstanceId"], 520)  # all newer than the offer card
    viewer = await signed_in("vi@example.com", ["customer_center:view"])
    # The offers container's one active card is older than 520 active cards elsewhere: still shown.
    offers = await viewer.get("/ui/acme/customers/u1?state=active&container=offers")
    assert f'data-card-id="{cards["offer"]["cardInstanceId"]}"' in offers.text
    assert "Older cards" not in offers.text
    # The default container, page by page through "Older cards", newest first: every card once.
    seen: list[str] = []
    url = "/ui/acme/customers/u1?state=active&container=default"
    pages = 0
    while url:
        page = await viewer.get(url, headers={"HX-Request": "true", "HX-Target": "cc-cards"})
        assert page.status_code == 200 and 'id="cc-cards"' in page.text
        seen += re.findall(r'<li class="cc-card" data-card-id="([^"]+)"', page.text)
        older = re.search(r'<a href="([^"]+)" hx-get="[^"]+"[^>]*>Older cards</a>', page.text)
        url = older.group(1).replace("&amp;", "&") if older else ""
        pages += 1
        assert pages < 10
    assert pages > 1 and len(seen) == len(set(seen)) == 521
    assert {f"bulk-{n:04d}" for n in range(520)} | {cards["active"]["cardInstanceId"]} == set(seen)
    assert "Newest cards" in page.text and "No older" not in page.text
    bogus = await viewer.get("/ui/acme/customers/u1?state=active&cursor=not-a-cursor")
    assert bogus.status_code == 200 and 'data-card-id="bulk-0519"' in bogus.text

"""Outbound webhook subscriptions through the API: create, read, change, delete, validation,
the test event, the delivery log, and isolation between environments."""

import msgspec
import pytest

from hub.testing import make_environment

pytestmark = pytest.mark.usefixtures("outbound_fast")


@pytest.fixture
def hub_settings(hub_settings):
    # The fake receivers listen on loopback.
    return msgspec.structs.replace(hub_settings, allow_private_urls=True)


async def test_create_returns_the_secret_once_and_get_and_list_never_show_it(outbound, receiver):
    created = await outbound.create(receiver, description="BI", eventTypes=["card-completed"],
                                    flowIds=["fraud-alert"], headers={"X-Team": "risk"})
    assert created["secret"].startswith("whsec_")
    assert created["state"] == "active" and created["pendingEvents"] == 0
    assert created["eventTypes"] == ["card-completed"] and created["headers"] == {"X-Team": "risk"}
    one = (await outbound.call("GET", f"/{created['id']}")).json()
    listed = (await outbound.call("GET", "")).json()
    assert "secret" not in one and all("secret" not in w for w in listed["webhooks"])
    assert [w["id"] for w in listed["webhooks"]] == [created["id"]]
    assert created["secret"] not in str(one) + str(listed)


async def test_the_secret_is_stored_encrypted(outbound, receiver, hub):
    from sqlalchemy import select

    from hub_plugins.webhooks.outbound_tables import subscription

    created = await outbound.create(receiver)
    async with hub.db.connect() as conn:
        stored = (await conn.execute(select(subscription.c.secret))).scalar_one()
    assert created["secret"] not in stored and created["secret"][6:] not in stored


async def test_list_pages_with_a_cursor(outbound, receiver):
    ids = [(await outbound.create(receiver))["id"] for _ in range(3)]
    first = (await outbound.call("GET", "", params={"limit": 2})).json()
    second = (await outbound.call("GET", "", params={"limit": 2, "cursor": first["nextCursor"]})).json()
    assert [w["id"] for w in first["webhooks"] + second["webhooks"]] == ids
    assert second["nextCursor"] is None
    bad = await outbound.call("GET", "", params={"cursor": "nope"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.cursor"


async def test_patch_changes_fields_and_rotating_shows_the_new_secret_once(outbound, receiver):
    created = await outbound.create(receiver)
    changed = await outbound.call("PATCH", f"/{created['id']}", json={"eventTypes": ["card-dismissed"],
                                                                       "description": "new"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["eventTypes"] == ["card-dismissed"] and "secret" not in changed.json()
    rotated = (await outbound.call("PATCH", f"/{created['id']}", json={"rotateSecret": True})).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]


async def test_rotated_secret_and_the_previous_one_both_sign_during_the_grace_period(outbound, receiver):
    created = await outbound.create(receiver)
    rotated = (await outbound.call("PATCH", f"/{created['id']}", json={"rotateSecret": True})).json()
    receiver.secrets[:] = [rotated["secret"]]  # a receiver that already has only the new secret
    result = (await outbound.call("POST", f"/{created['id']}/test")).json()
    assert result["status"] == "delivered"
    assert len(receiver.arrivals[-1].headers["webhook-signature"].split()) == 2
    receiver.secrets[:] = [created["secret"]]  # ... or still only the old one
    assert (await outbound.call("POST", f"/{created['id']}/test")).json()["status"] == "delivered"


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "ftp://example.com/x"}, "url"),
    ({"url": "https://user:pw@example.com/x"}, "url"),
    ({"url": "https://example.com", "eventTypes": ["Card Completed"]}, "eventTypes[0]"),
    ({"url": "https://example.com", "flowIds": [""]}, "flowIds[0]"),
    ({"url": "https://example.com", "headers": {"Connection": "close"}}, "headers.Connection"),
    ({"url": "https://example.com", "headers": {"webhook-signature": "x"}}, "headers.webhook-signature"),
    ({"url": "https://example.com", "headers": {"Authorization": "Bearer x"}}, "headers.Authorization"),
    ({"url": "https://example.com", "headers": {"bad name": "x"}}, "headers.bad name"),
    ({"url": "https://example.com", "headers": {"X-A": "line\nbreak"}}, "headers.X-A"),
    ({"url": "https://example.com", "nope": 1}, "nope"),
])
async def test_bad_subscriptions_are_refused_naming_the_field(outbound, body, field):
    response = await outbound.call("POST", "", json=body)
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == field


async def test_private_and_loopback_urls_are_refused_unless_allowed(outbound, receiver, hub):
    hub.settings = msgspec.structs.replace(hub.settings, allow_private_urls=False)
    for url in (receiver.url.replace("http:", "https:"), "https://10.1.2.3/hook",
                "https://169.254.169.254/latest", "https://localhost/hook"):
        response = await outbound.call("POST", "", json={"url": url})
        assert response.status_code == 422, url
        assert response.json()["errors"][0]["field"] == "url"
        assert "private or local" in response.json()["errors"][0]["reason"]
    plain = await outbound.call("POST", "", json={"url": "http://example.com/hook"})
    assert plain.status_code == 422 and plain.json()["errors"][0]["reason"] == "must be https"


async def test_unknown_webhook_is_a_404_naming_the_path(outbound):
    for method, suffix in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/pause"),
                           ("POST", "/resume"), ("POST", "/test"), ("GET", "/deliveries")):
        kwargs = {"json": {}} if method == "PATCH" else {}
        response = await outbound.call(method, "/does-not-exist" + suffix, **kwargs)
        assert response.status_code == 404, (method, suffix)
        assert response.json()["errors"][0]["field"] == "path.webhookId"


async def test_delete_removes_the_subscription(outbound, receiver):
    created = await outbound.create(receiver)
    assert (await outbound.call("DELETE", f"/{created['id']}")).status_code == 204
    assert (await outbound.call("GET", f"/{created['id']}")).status_code == 404


async def test_pause_and_resume_change_the_state_with_a_reason(outbound, receiver):
    created = await outbound.create(receiver)
    paused = (await outbound.call("POST", f"/{created['id']}/pause", json={"reason": "maintenance"})).json()
    assert paused["state"] == "paused" and paused["pausedReason"] == "maintenance"
    resumed = (await outbound.call("POST", f"/{created['id']}/resume")).json()
    assert resumed["state"] == "active" and resumed["pausedReason"] is None


async def test_test_event_is_signed_and_logged(outbound, receiver):
    created = await outbound.create(receiver, headers={"X-Team": "risk"})
    result = (await outbound.call("POST", f"/{created['id']}/test")).json()
    assert result["status"] == "delivered" and result["statusCode"] == 200
    arrival = receiver.arrivals[-1]
    assert arrival.verified and arrival.headers["x-team"] == "risk"
    assert arrival.webhook_id == result["webhookId"]
    assert arrival.payload["type"] == "webhook.test"
    assert arrival.payload["events"][0]["analyticsEvent"] == "webhook-test"
    log = (await outbound.call("GET", f"/{created['id']}/deliveries")).json()["deliveries"]
    assert log[0]["kind"] == "test" and log[0]["status"] == "delivered"
    assert log[0]["webhookId"] == result["webhookId"] and log[0]["latencyMs"] >= 0


async def test_test_event_reports_what_a_failing_receiver_answered(outbound, receiver):
    created = await outbound.create(receiver)
    receiver.fail(("status", 500))
    result = (await outbound.call("POST", f"/{created['id']}/test")).json()
    assert result["status"] == "failed" and result["statusCode"] == 500
    assert '"status": 500' in result["responseSnippet"]
    receiver.fail(("close",))
    closed = (await outbound.call("POST", f"/{created['id']}/test")).json()
    assert closed["status"] == "failed" and closed["statusCode"] is None and closed["error"]


async def test_delivery_log_pages_newest_first_and_filters_by_status(outbound, receiver):
    created = await outbound.create(receiver)
    receiver.fail(("status", 503))
    for _ in range(3):
        await outbound.call("POST", f"/{created['id']}/test")
    first = (await outbound.call("GET", f"/{created['id']}/deliveries", params={"limit": 2})).json()
    rest = (await outbound.call("GET", f"/{created['id']}/deliveries",
                                params={"limit": 2, "cursor": first["nextCursor"]})).json()
    statuses = [d["status"] for d in first["deliveries"] + rest["deliveries"]]
    assert statuses == ["delivered", "delivered", "failed"] and rest["nextCursor"] is None
    failed = (await outbound.call("GET", f"/{created['id']}/deliveries", params={"status": "failed"})).json()
    assert [d["statusCode"] for d in failed["deliveries"]] == [503]


async def test_another_environment_sees_none_of_it(outbound, receiver, hub):
    other = await make_environment(hub, "globex")
    created = await outbound.create(receiver)
    for method, suffix in (("GET", f"/{created['id']}"), ("DELETE", f"/{created['id']}"),
                           ("POST", f"/{created['id']}/test"), ("GET", f"/{created['id']}/deliveries")):
        assert (await outbound.call(method, suffix, env=other)).status_code == 404
    assert (await outbound.call("GET", "", env=other)).json()["webhooks"] == []
    # ... and a token of one environment does not open the other's webhooks
    forbidden = await outbound.client.get(f"/v1/{other.id}/webhooks", headers=outbound.env.headers())
    assert forbidden.status_code == 403


async def test_read_role_reads_but_cannot_write(outbound, receiver):
    created = await outbound.create(receiver)
    reader = outbound.env.headers(roles=["read"])
    assert (await outbound.client.get(outbound.url(f"/{created['id']}"), headers=reader)).status_code == 200
    refused = await outbound.client.post(outbound.url(f"/{created['id']}/pause"), headers=reader)
    assert refused.status_code == 403

"""Delivering analytics events to subscriptions: signed batches, filters, at least once with
stable ids through failing receivers, pausing after failures, resuming, replaying a range."""

import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from sqlalchemy import func, select

from hub.core.analytics import build_event
from hub.core.clock import now
from hub.services.analytics import record_events
from hub.services.outbox import transaction
from hub.testing import make_environment
from hub_plugins.webhooks import outbound as outbound_module
from hub_plugins.webhooks import outbound_delivery
from hub_plugins.webhooks.outbound_tables import pending

pytestmark = pytest.mark.usefixtures("outbound_fast")


@pytest.fixture
def hub_settings(hub_settings):
    return msgspec.structs.replace(hub_settings, allow_private_urls=True)


def tune(hub, **values):
    hub.plugin_settings["webhooks"] = msgspec.structs.replace(hub.plugin_settings["webhooks"], **values)


async def pending_rows(hub) -> int:
    async with hub.db.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(pending))).scalar_one()


async def record_flow_events(hub, env, flow_id, count, name="action-flow-started"):
    events = [build_event(name, user_id="u1", timestamp=now(), platform={"flowConfigId": flow_id})
              for _ in range(count)]
    async with transaction(hub) as tx:
        await record_events(tx, env, events)
    return [e["id"] for e in events]


def one_webhook_id_per_event(receiver) -> dict[str, set[str]]:
    """event id -> the webhook ids it was sent under (every attempt, failed ones included)."""
    seen = defaultdict(set)
    for arrival in receiver.arrivals:
        for event in arrival.payload["events"]:
            seen[event["id"]].add(arrival.webhook_id)
    return seen


async def test_events_arrive_in_one_signed_batch_with_their_original_ids(outbound, receiver, hub, run_jobs):
    tune(hub, outbound_linger_ms=1500)  # long enough for all 25 to be queued before the batch leaves
    created = await outbound.create(receiver)
    ids = await outbound.record(25)
    await run_jobs()
    assert receiver.event_ids() == ids  # in order, each once
    arrival = receiver.accepted[0]
    assert arrival.verified and len(receiver.accepted) == 1
    assert arrival.headers["content-type"] == "application/json"
    assert arrival.payload["webhookId"] == arrival.webhook_id
    assert arrival.payload["type"] == "analytics.events"
    assert arrival.payload["environmentId"] == "acme" and arrival.payload["subscriptionId"] == created["id"]
    assert abs(int(arrival.headers["webhook-timestamp"]) - time.time()) < 60
    assert await pending_rows(hub) == 0
    log = (await outbound.call("GET", f"/{created['id']}/deliveries")).json()["deliveries"]
    assert [(d["kind"], d["status"], d["eventCount"], d["attempt"]) for d in log] == [
        ("events", "delivered", 25, 1)]


async def test_batches_hold_at_most_the_batch_size_and_keep_the_order(outbound, receiver, hub, run_jobs):
    tune(hub, outbound_batch_size=10, outbound_linger_ms=1500)
    await outbound.create(receiver)
    ids = await outbound.record(35)
    await run_jobs()
    assert [len(a.payload["events"]) for a in receiver.accepted] == [10, 10, 10, 5]
    assert receiver.event_ids() == ids
    assert len({a.webhook_id for a in receiver.accepted}) == 4


async def test_event_type_and_flow_filters_choose_what_each_subscription_gets(outbound, hub, run_jobs):
    from tests.fakes.webhook_receiver import webhook_receiver

    with webhook_receiver() as orders, webhook_receiver() as fraud, webhook_receiver() as everything:
        await outbound.create(orders, eventTypes=["order-placed"])
        await outbound.create(fraud, flowIds=["fraud-alert"])
        await outbound.create(everything)
        placed = await outbound.record(2, name="order-placed")
        cancelled = await outbound.record(1, name="order-cancelled")
        fraud_ids = await record_flow_events(hub, "acme", "fraud-alert", 2)
        other_flow = await record_flow_events(hub, "acme", "welcome", 1)
        await run_jobs()
        assert orders.event_ids() == placed
        assert fraud.event_ids() == fraud_ids
        assert sorted(everything.event_ids()) == sorted(placed + cancelled + fraud_ids + other_flow)


async def test_an_event_announced_twice_is_queued_once(outbound, receiver, hub, run_jobs):
    await outbound.create(receiver)
    event = {**build_event("order-placed", user_id="u1", timestamp=now()), "environmentId": "acme"}
    async with transaction(hub) as tx:
        await record_events(tx, "acme", [event], announce=False)
    await outbound_module.analytics_event(hub, event)
    await outbound_module.analytics_event(hub, event)
    await run_jobs()
    assert receiver.event_ids() == [event["id"]]
    assert await pending_rows(hub) == 0


async def test_nothing_is_queued_without_a_subscription(outbound, hub, run_jobs):
    await outbound.record(5)
    await run_jobs()
    assert await pending_rows(hub) == 0


@pytest.mark.parametrize("failure", [("status", 500), ("status", 503), ("hang", 1.0), ("close",)],
                         ids=["500", "503", "timeout", "connection-closed"])
async def test_a_receiver_that_fails_for_a_while_then_recovers_gets_every_event_with_its_id(
        outbound, receiver, hub, run_jobs, failure):
    tune(hub, outbound_batch_size=10)
    created = await outbound.create(receiver)
    receiver.fail(failure, times=3)
    ids = await outbound.record(30)
    await run_jobs()
    await receiver.wait_for_events(30)
    assert sorted(set(receiver.event_ids())) == sorted(ids)  # every event, none with a new id
    # A batch keeps its webhook-id and its events across retries.
    assert all(len(sent_as) == 1 for sent_as in one_webhook_id_per_event(receiver).values())
    by_id = defaultdict(list)
    for arrival in receiver.arrivals:
        by_id[arrival.webhook_id].append([e["id"] for e in arrival.payload["events"]])
    assert all(all(batch == attempts[0] for batch in attempts) for attempts in by_id.values())
    assert len(receiver.arrivals) == len(receiver.accepted) + 3
    assert await pending_rows(hub) == 0
    log = (await outbound.call("GET", f"/{created['id']}/deliveries")).json()["deliveries"]
    failed = [d for d in log if d["status"] == "failed"]
    attempts = [d["attempt"] for d in reversed(failed)]
    if failure == ("close",):
        # The receiver saw three failures (above); reusing a pooled connection it had just closed
        # can fail once more on the sender's side before a new connection is made.
        assert attempts[:3] == [1, 2, 3] and attempts == list(range(1, len(attempts) + 1)), attempts
    else:
        assert attempts == [1, 2, 3]
    assert all(d["error"] for d in failed)
    subscription = (await outbound.call("GET", f"/{created['id']}")).json()
    assert subscription["state"] == "active" and subscription["consecutiveFailures"] == 0


async def test_retry_after_on_429_is_honoured(outbound, receiver, run_jobs):
    await outbound.create(receiver)
    receiver.fail(("status", 429, "1"))
    await outbound.record(3)
    await run_jobs()
    await receiver.wait_for_events(3)
    first, second = receiver.arrivals[0], receiver.arrivals[1]
    assert first.answered == "429" and second.answered == "200"
    assert second.at - first.at >= 0.9  # backoff alone would be about 0.05 s
    assert first.webhook_id == second.webhook_id


async def test_retry_after_on_503_is_honoured(outbound, receiver, hub, run_jobs):
    tune(hub, outbound_max_backoff_seconds=60)  # above the Retry-After: no cap in play
    await outbound.create(receiver)
    receiver.fail(("status", 503, "2"))
    await outbound.record(1)
    await run_jobs()
    await receiver.wait_for_events(1)
    first, second = receiver.arrivals[0], receiver.arrivals[1]
    assert first.answered == "503" and second.answered == "200"
    assert second.at - first.at >= 1.9  # backoff alone would be about 0.05 s
    assert first.webhook_id == second.webhook_id


async def test_retry_after_is_capped_by_the_max_backoff(outbound, receiver, run_jobs):
    await outbound.create(receiver)  # HUB_WEBHOOKS_OUTBOUND_MAX_BACKOFF_SECONDS is 1 here
    receiver.fail(("status", 503, "3600"))
    await outbound.record(1)
    await run_jobs()
    await receiver.wait_for_events(1, seconds=10)
    waited = receiver.arrivals[1].at - receiver.arrivals[0].at
    assert 0.9 <= waited < 5  # the cap, not the Retry-After, and not the 0.05 s backoff either


@pytest.mark.parametrize("target", ["loopback", "http://10.255.255.1/hooks", "http://169.254.169.254/latest/"],
                         ids=["loopback", "private", "metadata-service"])
async def test_redirects_are_not_followed_and_the_batch_is_retried(outbound, receiver, run_jobs, target):
    from tests.fakes.webhook_receiver import webhook_receiver

    with webhook_receiver() as elsewhere:
        # Followed, the loopback target would record the request; the private ones would not
        # answer (a timeout, not a 302, in the log).
        location = elsewhere.url if target == "loopback" else target
        created = await outbound.create(receiver)
        elsewhere.secrets.extend(receiver.secrets)
        receiver.fail(("redirect", 302, location))
        ids = await outbound.record(1)
        await run_jobs()
        await receiver.wait_for_events(1)
        assert elsewhere.arrivals == []
    assert [a.answered for a in receiver.arrivals] == ["redirect", "200"]
    assert receiver.event_ids() == ids
    delivered, failed = (await outbound.call("GET", f"/{created['id']}/deliveries")).json()["deliveries"]
    assert (failed["status"], failed["statusCode"], failed["attempt"]) == ("failed", 302, 1)
    assert f"redirecting to {location}" in failed["error"] and "not followed" in failed["error"]
    assert (delivered["status"], delivered["attempt"]) == ("delivered", 2)
    assert delivered["webhookId"] == failed["webhookId"]


async def test_the_url_is_checked_again_when_sending(outbound, receiver, hub, run_jobs):
    # Allowed when the subscription was made; by the time of sending, the host is one Hub must
    # not call (here the setting changed; in production, DNS may now answer a private address).
    tune(hub, outbound_pause_after_failures=2)
    created = await outbound.create(receiver)
    hub.settings = msgspec.structs.replace(hub.settings, allow_private_urls=False)
    ids = await outbound.record(1)
    await run_jobs()
    assert receiver.arrivals == []
    log = (await outbound.call("GET", f"/{created['id']}/deliveries")).json()["deliveries"]
    assert [(d["status"], d["statusCode"], d["attempt"]) for d in log] == [
        ("failed", None, 2), ("failed", None, 1)]
    assert all(d["error"].startswith("not sent: 127.0.0.1 resolves to 127.0.0.1, a private or local address")
               and "HUB_ALLOW_PRIVATE_URLS" in d["error"] for d in log)
    paused = (await outbound.call("GET", f"/{created['id']}")).json()
    assert paused["state"] == "paused" and "not sent: 127.0.0.1 resolves to" in paused["pausedReason"]
    # Nothing was lost: allowed again and resumed, the batch goes out.
    hub.settings = msgspec.structs.replace(hub.settings, allow_private_urls=True)
    await outbound.call("POST", f"/{created['id']}/resume")
    await run_jobs()
    assert receiver.event_ids()[:1] == ids  # then the webhook-subscription-paused event
    assert [e["analyticsEvent"] for e in receiver.events] == ["order-placed", "webhook-subscription-paused"]


async def test_a_test_delivery_checks_the_url_too(outbound, receiver, hub):
    created = await outbound.create(receiver)
    hub.settings = msgspec.structs.replace(hub.settings, allow_private_urls=False)
    answer = (await outbound.call("POST", f"/{created['id']}/test")).json()
    assert (answer["status"], answer["statusCode"]) == ("failed", None)
    assert answer["error"].startswith("not sent: 127.0.0.1 resolves to")
    assert receiver.arrivals == []


async def test_consecutive_failures_pause_the_subscription_and_resume_delivers_everything(
        outbound, receiver, hub, run_jobs):
    # Batches of 3: the failing one holds the first 3 events, and the one formed ahead of it
    # (while it was in flight) the other 2, which must still go before anything newer.
    tune(hub, outbound_pause_after_failures=3, outbound_batch_size=3, outbound_linger_ms=1500)
    created = await outbound.create(receiver)
    receiver.fail(("status", 500), times=1000)
    ids = await outbound.record(5)
    await run_jobs()
    paused = (await outbound.call("GET", f"/{created['id']}")).json()
    assert paused["state"] == "paused" and paused["consecutiveFailures"] == 3
    assert "3 consecutive failed deliveries" in paused["pausedReason"]
    assert "answered 500" in paused["pausedReason"]
    assert len(receiver.arrivals) == 3
    # An analytics event says so.
    found = await outbound.client.get("/v1/acme/analytics/events", headers=outbound.env.headers(),
                                      params={"type": "webhook-subscription-paused"})
    [event] = found.json()["events"]
    assert event["properties"]["subscriptionId"] == created["id"]
    # Events keep being queued while paused (that one too) ...
    later = await outbound.record(2)
    await run_jobs()
    assert len(receiver.arrivals) == 3 and await pending_rows(hub) == 5 + 1 + 2
    # ... and resuming delivers them all, the failed batch again under its webhook-id.
    receiver.script.clear()
    resumed = await outbound.call("POST", f"/{created['id']}/resume")
    assert resumed.json()["state"] == "active" and resumed.json()["consecutiveFailures"] == 0
    await run_jobs()
    assert receiver.event_ids() == ids + [event["id"]] + later
    assert receiver.accepted[0].webhook_id == receiver.arrivals[0].webhook_id
    assert [[e["id"] for e in a.payload["events"]] for a in receiver.accepted[:2]] == [ids[:3], ids[3:]]


async def test_410_gone_pauses_at_once(outbound, receiver, run_jobs):
    created = await outbound.create(receiver)
    receiver.fail(("status", 410), times=10)
    await outbound.record(1)
    await run_jobs()
    paused = (await outbound.call("GET", f"/{created['id']}")).json()
    assert paused["state"] == "paused" and "410" in paused["pausedReason"]
    assert len(receiver.arrivals) == 1


async def test_a_paused_subscription_sends_nothing_until_resumed(outbound, receiver, run_jobs):
    created = await outbound.create(receiver)
    await outbound.call("POST", f"/{created['id']}/pause")
    ids = await outbound.record(4)
    await run_jobs()
    assert receiver.arrivals == []
    await outbound.call("POST", f"/{created['id']}/resume")
    await run_jobs()
    assert receiver.event_ids() == ids


async def test_replay_redelivers_a_range_with_the_original_ids(outbound, receiver, hub, run_jobs):
    created = await outbound.create(receiver, eventTypes=["order-placed"])
    start = datetime.now(UTC) - timedelta(seconds=1)
    ids = await outbound.record(4)
    await outbound.record(2, name="order-cancelled")  # outside the filter
    await run_jobs()
    assert receiver.event_ids() == ids
    end = datetime.now(UTC) + timedelta(seconds=1)
    response = await outbound.call("POST", f"/{created['id']}/replay",
                                   json={"from": start.isoformat(), "to": end.isoformat()})
    assert response.status_code == 202 and response.json() == {"queued": 4}
    await run_jobs()
    assert receiver.event_ids() == ids + ids
    assert receiver.accepted[1].webhook_id != receiver.accepted[0].webhook_id
    empty = await outbound.call("POST", f"/{created['id']}/replay",
                                json={"from": (start - timedelta(days=2)).isoformat(),
                                      "to": (start - timedelta(days=1)).isoformat()})
    assert empty.json() == {"queued": 0}


async def test_replay_refuses_a_bad_or_too_large_range(outbound, receiver, hub):
    created = await outbound.create(receiver)
    at = datetime.now(UTC)
    backwards = await outbound.call("POST", f"/{created['id']}/replay", json={
        "from": at.isoformat(), "to": (at - timedelta(hours=1)).isoformat()})
    assert backwards.status_code == 422 and backwards.json()["errors"][0]["field"] == "to"
    naive = await outbound.call("POST", f"/{created['id']}/replay",
                                json={"from": "2026-01-01T00:00:00", "to": "2026-01-02T00:00:00"})
    assert naive.status_code in (400, 422) and naive.json()["errors"][0]["field"] == "from"
    tune(hub, outbound_replay_max_events=2)
    await outbound.record(3)
    large = await outbound.call("POST", f"/{created['id']}/replay",
                                json={"from": (at - timedelta(hours=1)).isoformat(),
                                      "to": (at + timedelta(hours=1)).isoformat()})
    assert large.status_code == 422 and "more than 2" in large.json()["errors"][0]["reason"]


async def test_environments_do_not_receive_each_others_events(outbound, hub, run_jobs):
    from tests.fakes.webhook_receiver import webhook_receiver

    other = await make_environment(hub, "globex")
    with webhook_receiver() as acme_receiver, webhook_receiver() as globex_receiver:
        await outbound.create(acme_receiver)
        await outbound.create(globex_receiver, env=other)
        acme_ids = await outbound.record(3)
        globex_ids = await outbound.record(2, env=other)
        await run_jobs()
        assert acme_receiver.event_ids() == acme_ids
        assert globex_receiver.event_ids() == globex_ids
        assert globex_receiver.accepted[0].payload["environmentId"] == "globex"


async def test_the_sweeper_delivers_events_whose_job_was_lost(outbound, receiver, hub, run_jobs):
    from hub_plugins.webhooks import outbound_service

    await outbound.create(receiver)
    event = {**build_event("order-placed", user_id="u1", timestamp=now()), "environmentId": "acme"}
    async with transaction(hub) as tx:
        await record_events(tx, "acme", [event], announce=False)
    active = await outbound_service.queue_event(hub, event)
    await outbound_delivery.push(hub, "acme", event["id"], active, start=False)  # no job started
    await run_jobs()
    assert receiver.arrivals == []
    await hub.redis.enqueue_job(outbound_delivery.SWEEP_JOB, _job_id="sweep-now")
    await run_jobs()
    assert receiver.event_ids() == [event["id"]]


async def test_deleting_a_subscription_drops_its_queue(outbound, receiver, hub, run_jobs):
    created = await outbound.create(receiver)
    await outbound.call("POST", f"/{created['id']}/pause")
    await outbound.record(3)
    assert await pending_rows(hub) == 0  # not announced yet: the announce job queues them
    await run_jobs()
    assert await pending_rows(hub) == 3
    await outbound.call("DELETE", f"/{created['id']}")
    assert await pending_rows(hub) == 0
    await outbound.record(1)
    await run_jobs()
    assert await pending_rows(hub) == 0 and receiver.arrivals == []


def test_the_delivery_sweeper_is_a_scheduled_worker_job(hub):
    from hub.worker import worker_settings
    from hub_plugins.webhooks.outbound_delivery import SWEEP_JOB

    assert hub.registry.jobs[SWEEP_JOB].cron
    crons = worker_settings(hub)["cron_jobs"]
    assert any(SWEEP_JOB in str(getattr(c, "name", "")) for c in crons), crons

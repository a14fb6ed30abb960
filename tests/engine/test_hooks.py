"""Plugins hear about card changes and analytics events after commit, at least once."""

import pytest

from hub.hookspecs import hookimpl
from tests.engine.conftest import CARD_FLOW


class Recorder:
    def __init__(self):
        self.cards, self.events = [], []

    @hookimpl
    def hub_card_changed(self, card, previous, context):
        self.cards.append((card, previous, context))

    @hookimpl
    async def hub_analytics_event(self, event):
        self.events.append(event)


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def hub_plugins(recorder):
    return [recorder]


async def test_card_changes_and_events_reach_plugins_after_the_worker_runs(
        flows, recorder, run_jobs, hub_client, hub_env):
    await flows.publish("welcome", CARD_FLOW)
    await flows.start("welcome", target={"usersById": ["kim"]})
    await run_jobs()
    [(card, previous, context)] = recorder.cards
    assert card["userId"] == "kim" and card["status"] == "active" and previous is None
    assert context["environmentId"] == hub_env.id and context["eventId"]
    names = sorted(e["analyticsEvent"] for e in recorder.events)
    assert "card-published" in names and "action-flow-completed" in names
    assert all(e["environmentId"] == hub_env.id and e["id"] for e in recorder.events)

    cancelled = await hub_client.post(f"/v1/{hub_env.id}/cards/cancel", headers=hub_env.headers(),
                                      json={"cardInstanceIds": [card["cardInstanceId"]]})
    assert cancelled.status_code == 200
    assert len(recorder.cards) == 1  # nothing before the worker runs the announcement
    await run_jobs()
    card, previous, context = recorder.cards[-1]
    assert card["status"] == "cancelled" and previous["status"] == "active"
    assert any(e["analyticsEvent"] == "card-cancelled" for e in recorder.events)


class BatchRecorder:
    def __init__(self):
        self.batches = []

    @hookimpl
    async def hub_cards_changed(self, changes):
        self.batches.append(changes)


async def test_a_fan_out_chunk_tells_batch_plugins_once_with_every_card_and_single_ones_per_card(
        flows, recorder, run_jobs, hub, hub_env):
    batch = BatchRecorder()
    hub.pm.register(batch, name="batch-recorder")
    try:
        await flows.publish("welcome", CARD_FLOW)
        await flows.start("welcome", target={"usersById": ["kim", "lee", "max"]})
        await run_jobs()
    finally:
        hub.pm.unregister(name="batch-recorder")
    [changes] = batch.batches
    assert sorted(c["card"]["userId"] for c in changes) == ["kim", "lee", "max"]
    assert all(c["previous"] is None and c["context"]["reason"] == "created"
               and c["context"]["environmentId"] == hub_env.id for c in changes)
    # the same changes, in the same order, one call each for hub_card_changed
    assert [c["context"]["eventId"] for c in changes] == [ctx["eventId"] for _c, _p, ctx in recorder.cards]

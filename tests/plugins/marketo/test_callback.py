"""The callback: retried with backoff while Marketo fails or is unreachable, every attempt
recorded on the batch, the same body each time; a refusal fails it at once."""

import msgspec

from hub_plugins.marketo.batches import marketo_run_batch
from tests.plugins.marketo.conftest import leads


async def _run_batch(ready, fake, run_jobs, body=None, **kwargs):
    body = body or fake.invocation(leads(4), "welcome")
    accepted = await ready.submit(body)
    assert accepted.status_code == 201, accepted.text
    await run_jobs(**kwargs)
    return accepted.json()["batchId"]


async def test_a_failing_marketo_is_retried_until_it_accepts(ready, fake, run_jobs):
    fake.fail(("status", 503), times=3)
    batch_id = await _run_batch(ready, fake, run_jobs)
    assert [c.answered for c in fake.callbacks] == ["503", "503", "503", "200"]
    assert len({c.raw for c in fake.callbacks}) == 1  # the same body every time
    batch = await ready.batch(batch_id)
    assert batch["state"] == "completed"
    assert batch["callback"] == {
        "status": "sent",
        "attempts": 4,
        "lastStatusCode": 200,
        "lastError": None,
        "nextAttemptAt": None,
    }


async def test_an_unreachable_callback_url_is_retried_and_recorded_then_given_up(ready, fake, run_jobs):
    fake.down()
    batch_id = await _run_batch(ready, fake, run_jobs)
    batch = await ready.batch(batch_id)
    assert batch["state"] == "failed" and batch["leadsStarted"] == 4
    callback = batch["callback"]
    assert callback["status"] == "failed" and callback["attempts"] == 5  # HUB_MARKETO_CALLBACK_MAX_ATTEMPTS
    assert callback["lastStatusCode"] is None and "ConnectError" in callback["lastError"]
    status = (await ready.call("GET", "/status")).json()
    assert "1 batch callbacks failed" in status["warnings"][0]


async def test_marketo_back_before_the_attempts_run_out_gets_the_callback(ready, fake, hub, run_jobs):
    fake.down()
    accepted = await ready.submit(fake.invocation(leads(4), "welcome"))
    batch_id = accepted.json()["batchId"]
    await marketo_run_batch({"hub": hub}, ready.env.id, batch_id)  # one run: its attempts, then a retry job
    first = await ready.batch(batch_id)
    assert first["state"] == "calling_back" and first["callback"]["attempts"] == 2
    assert first["callback"]["nextAttemptAt"] is not None and "ConnectError" in first["callback"]["lastError"]
    fake.up()
    await run_jobs()
    batch = await ready.batch(batch_id)
    assert batch["callback"]["status"] == "sent" and batch["callback"]["attempts"] == 3
    (callback,) = fake.accepted
    assert len(callback.body["objectData"]) == 4


async def test_no_answer_in_time_is_retried(ready, fake, run_jobs):
    fake.fail(("hang", 2.0))
    batch_id = await _run_batch(ready, fake, run_jobs)
    assert [c.answered for c in fake.callbacks] == ["hang", "200"]
    assert (await ready.batch(batch_id))["callback"]["attempts"] == 2


async def test_a_refused_callback_is_not_retried(ready, fake, run_jobs):
    body = fake.invocation(leads(2), "welcome")
    body["apiCallBackKey"] = "not-the-key-marketo-gave"
    batch_id = await _run_batch(ready, fake, run_jobs, body=body)
    assert [c.answered for c in fake.callbacks] == ["401"]
    batch = await ready.batch(batch_id)
    assert batch["state"] == "failed"
    assert batch["callback"]["lastStatusCode"] == 401 and "401" in batch["callback"]["lastError"]


async def test_a_callback_url_that_turned_private_is_refused_when_sending(ready, fake, hub, run_jobs):
    accepted = await ready.submit(fake.invocation(leads(1), "welcome"))
    hub.settings = msgspec.structs.replace(hub.settings, allow_private_urls=False)
    await run_jobs()
    batch = await ready.batch(accepted.json()["batchId"])
    assert batch["state"] == "failed" and fake.callbacks == []
    assert "private" in batch["callback"]["lastError"]

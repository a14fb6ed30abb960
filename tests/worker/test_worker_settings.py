import inspect

import pytest
from arq import Worker

from hub.worker import make_worker, worker_settings
from tests.worker import jobs_plugin


@pytest.fixture
def hub_plugins():
    return [jobs_plugin]


async def test_worker_settings_are_real_arq_worker_arguments(hub):
    settings = worker_settings(hub)
    accepted = set(inspect.signature(Worker.__init__).parameters)
    assert set(settings) <= accepted
    names = {f.name for f in settings["functions"]}
    assert {"count_run", "flaky", "always_fails", "outbox_relay", "announce_customer_changes"} <= names
    assert any(c.name == "cron:outbox_relay" for c in settings["cron_jobs"])
    worker = make_worker(hub, burst=True, handle_signals=False)
    await worker.close()


async def test_job_max_tries_and_timeout_come_from_the_registration_or_settings(hub):
    functions = {f.name: f for f in worker_settings(hub)["functions"]}
    assert functions["always_fails"].max_tries == 3
    assert functions["count_run"].max_tries == hub.settings.job_max_tries
    assert functions["count_run"].timeout_s == hub.settings.job_timeout_seconds

"""The Salesforce profile sync against the fake Salesforce (``tests/fakes/salesforce.py``):
settings and their secrecy, full and incremental runs with pagination, type conversion, errors
recorded, runs cut short resuming from the watermark, the lease, the sweep, the API and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from hub.services import customers
from hub_plugins.salesforce_mc import profile_sync, sync_config
from hub_plugins.salesforce_mc.salesforce import build_query, soql_datetime
from hub_plugins.salesforce_mc.tables import profile_sync as sync_table
from tests.plugins.salesforce_mc.conftest import SF_PASSWORD, SF_TOKEN, SF_USER

PATH = "/v1/acme/integrations/sfmc/profile-sync"
REPO = Path(__file__).resolve().parents[3]
FIELDS = {"Email": "email", "FirstName": "name", "Loyalty_Points__c": "points", "Vip__c": "vip",
          "Birthdate": "birthday", "Account.Name": "company"}


@pytest.fixture
def hub_settings(hub_settings: Any, salesforce: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Hub trusts the fake's CA and may reach it on loopback."""
    monkeypatch.setenv("HUB_SFMC_SALESFORCE_CA_FILE", salesforce.ca_file)
    return msgspec.structs.replace(hub_settings, allow_private_urls=True)


class Sync:
    """Defines the customer fields, sets the sync through the API, reads its state and customers."""

    def __init__(self, hub: Any, client: Any, env: Any, salesforce: Any) -> None:
        self.hub, self.client, self.env, self.sf = hub, client, env, salesforce

    async def define_fields(self) -> None:
        for name, type_ in (("points", "number"), ("vip", "boolean"), ("birthday", "date"),
                            ("company", "text")):
            response = await self.client.post("/v1/acme/fields", headers=self.env.headers(),
                                              json={"name": name, "type": type_})
            assert response.status_code == 201, response.text

    def body(self, **changes: Any) -> dict[str, Any]:
        return {"loginUrl": self.sf.url, "username": SF_USER, "password": SF_PASSWORD,
                "securityToken": SF_TOKEN, "object": "Contact", "userIdField": "Email",
                "fields": FIELDS, "intervalMinutes": 30, **changes}

    async def set(self, **changes: Any) -> dict[str, Any]:
        await self.define_fields()
        response = await self.client.put(PATH, headers=self.env.headers(), json=self.body(**changes))
        assert response.status_code == 200, response.text
        return response.json()

    async def status(self) -> dict[str, Any]:
        response = await self.client.get(PATH, headers=self.env.headers())
        assert response.status_code == 200, response.text
        return response.json()["status"]  # type: ignore[no-any-return]

    async def fields(self, user_id: str) -> dict[str, Any]:
        return (await customers.get_customer(self.hub, "acme", user_id)).fields

    def add_contacts(self, count: int, start: int = 0) -> list[str]:
        ids = []
        for i in range(start, start + count):
            ids.append(self.sf.add("Contact", Email=f"user{i}@example.com", FirstName=f"Ada {i}",
                                   Loyalty_Points__c=i * 10, Vip__c=i % 2 == 0, Birthdate="1990-04-01",
                                   Account={"Name": "Acme Bank"}))
            self.sf.tick(seconds=1)
        return ids


@pytest.fixture
def sync(hub: Any, hub_client: Any, hub_env: Any, salesforce: Any) -> Sync:
    return Sync(hub, hub_client, hub_env, salesforce)


def page_ids(salesforce: Any) -> list[str]:
    return [record_id for page in salesforce.served for record_id in page]


# --- settings -------------------------------------------------------------------------------


async def test_settings_are_saved_with_the_secrets_sealed_and_never_shown(sync, hub, hub_client, hub_env):
    body = await sync.set()
    for secret in (SF_PASSWORD, SF_TOKEN):
        assert secret not in str(body)
    assert (body["passwordSet"], body["securityTokenSet"], body["object"], body["userIdField"]) == (
        True, True, "Contact", "Email")
    assert body["fields"] == FIELDS and body["enabled"] is True and body["intervalMinutes"] == 30
    assert body["status"]["state"] == "new" and body["status"]["nextRunAt"] is not None
    got = await hub_client.get(PATH, headers=hub_env.headers(roles=["read"]))
    assert got.status_code == 200 and SF_PASSWORD not in got.text and SF_TOKEN not in got.text
    async with hub.db.connect() as conn:
        stored = (await conn.execute(select(sync_table.c.password, sync_table.c.security_token))).one()
    assert SF_PASSWORD not in stored.password and SF_TOKEN not in stored.security_token
    row = await sync_config.get(hub, "acme")
    assert SF_PASSWORD not in repr(sync_config.credentials(hub, row))
    assert sync_config.credentials(hub, row).password == SF_PASSWORD


@pytest.mark.parametrize(("changes", "field"), [
    ({"username": None}, "username"),
    ({"password": None}, "password"),
    ({"loginUrl": "http://login.salesforce.com"}, "loginUrl"),
    ({"loginUrl": "https://login.salesforce.com/services/Soap"}, "loginUrl"),
    ({"object": "Account"}, "object"),
    ({"userIdField": "Id FROM User --"}, "userIdField"),
    ({"fields": {}}, "fields"),
    ({"fields": {"Email": "nickname"}}, "fields.Email"),
    ({"fields": {"Bad Field": "email"}}, "fields.Bad Field"),
    ({"fields": {"Email": "email", "email": "name"}}, "fields.email"),
    ({"fields": {"Email": "email", "Phone": "email"}}, "fields.Phone"),
    ({"intervalMinutes": 0}, "intervalMinutes"),
    ({"intervalMinutes": 1441}, "intervalMinutes"),
    ({"securityToken": "has space"}, "securityToken"),
])
async def test_invalid_settings_are_refused_naming_the_field(sync, hub_client, hub_env, changes, field):
    await sync.define_fields()
    body = {k: v for k, v in sync.body(**changes).items() if v is not None}
    response = await hub_client.put(PATH, headers=hub_env.headers(), json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == field
    assert (await hub_client.get(PATH, headers=hub_env.headers())).status_code == 404


async def test_a_login_url_on_a_private_address_is_refused_unless_allowed(sync, hub, hub_client, hub_env):
    hub.settings = msgspec.structs.replace(hub.settings, allow_private_urls=False)
    await sync.define_fields()
    response = await hub_client.put(PATH, headers=hub_env.headers(), json=sync.body())
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "loginUrl"
    assert "HUB_ALLOW_PRIVATE_URLS" in response.json()["errors"][0]["reason"]


async def test_permissions_are_sfmc_read_and_write(sync, hub_client, hub_env):
    await sync.define_fields()
    assert (await hub_client.get(PATH)).status_code == 401
    refused = await hub_client.put(PATH, headers=hub_env.headers(roles=["read"]), json=sync.body())
    assert refused.status_code == 403
    assert (await hub_client.put(PATH, headers=hub_env.headers(roles=["integrations"]),
                                 json=sync.body())).status_code == 200
    assert (await hub_client.post(f"{PATH}/run", headers=hub_env.headers(roles=["read"]))).status_code == 403
    assert (await hub_client.get(PATH, headers=hub_env.headers(roles=["read"]))).status_code == 200


async def test_changing_what_is_synced_starts_over_and_keeping_it_does_not(sync, salesforce, hub_client,
                                                                          hub_env, run_jobs):
    await sync.set()
    sync.add_contacts(2)
    await hub_client.post(f"{PATH}/run", headers=hub_env.headers())
    await run_jobs()
    assert (await sync.status())["watermark"] is not None
    kept = await hub_client.put(PATH, headers=hub_env.headers(), json={"intervalMinutes": 60,
                                                                       "password": "new-password"})
    assert kept.json()["status"]["watermark"] is not None
    changed = await hub_client.put(PATH, headers=hub_env.headers(), json={"fields": {"Email": "email"}})
    assert changed.status_code == 200 and changed.json()["status"]["watermark"] is None


async def test_delete_removes_the_sync_and_customers_keep_their_values(sync, hub_client, hub_env, run_jobs):
    await sync.set()
    sync.add_contacts(1)
    await hub_client.post(f"{PATH}/run", headers=hub_env.headers())
    await run_jobs()
    assert (await hub_client.delete(PATH, headers=hub_env.headers())).status_code == 204
    assert (await hub_client.get(PATH, headers=hub_env.headers())).status_code == 404
    assert (await hub_client.delete(PATH, headers=hub_env.headers())).status_code == 404
    assert (await hub_client.post(f"{PATH}/run", headers=hub_env.headers())).status_code == 404
    assert (await sync.fields("user0@example.com"))["email"] == "user0@example.com"


# --- runs -----------------------------------------------------------------------------------


async def test_a_first_sync_pulls_every_page(sync, salesforce, hub_client, hub_env, run_jobs):
    await sync.set()
    ids = sync.add_contacts(8)
    queued = await hub_client.post(f"{PATH}/run", headers=hub_env.headers())
    assert queued.status_code == 202 and queued.json()["status"]["state"] == "queued"
    await run_jobs()
    assert [len(page) for page in salesforce.served] == [3, 3, 2]
    assert page_ids(salesforce) == ids
    kinds = [r["kind"] for r in salesforce.requests if r["method"] == "GET"]
    assert kinds == ["query", "query_more", "query_more"]
    soql = salesforce.requests[1]["soql"]
    selected = soql.removeprefix("SELECT ").split(" FROM ")[0].split(", ")
    assert sorted(selected) == sorted([*FIELDS, "Id", "LastModifiedDate"])
    assert " FROM Contact ORDER BY LastModifiedDate, Id" in soql and "WHERE" not in soql
    status = await sync.status()
    assert (status["state"], status["lastRunRecords"], status["totalRecords"], status["lastError"]) == (
        "ok", 8, 8, None)
    last = salesforce.records["Contact"][ids[-1]]
    assert status["watermark"] == {"lastModifiedDate": last["LastModifiedDate"], "id": ids[-1]}
    assert await sync.fields("user7@example.com") == {
        "email": "user7@example.com", "name": "Ada 7", "points": 70, "vip": False, "birthday": "1990-04-01",
        "company": "Acme Bank"}


async def test_an_incremental_sync_pulls_only_what_changed(sync, salesforce, hub_client, hub_env, run_jobs):
    await sync.set()
    ids = sync.add_contacts(5)
    await hub_client.post(f"{PATH}/run", headers=hub_env.headers())
    await run_jobs()
    salesforce.served.clear()
    salesforce.update("Contact", ids[1], FirstName="Grace")
    salesforce.update("Contact", ids[3], Loyalty_Points__c=999)
    new = sync.add_contacts(1, start=5)
    await hub_client.post(f"{PATH}/run", headers=hub_env.headers())
    await run_jobs()
    assert page_ids(salesforce) == [ids[1], ids[3], *new]
    assert "WHERE LastModifiedDate > " in salesforce.requests[-1]["soql"]
    assert (await sync.fields("user1@example.com"))["name"] == "Grace"
    assert (await sync.fields("user3@example.com"))["points"] == 999
    assert (await sync.fields("user5@example.com"))["name"] == "Ada 5"
    status = await sync.status()
    assert (status["lastRunRecords"], status["totalRecords"]) == (3, 8)
    salesforce.served.clear()
    await hub_client.post(f"{PATH}/run", headers=hub_env.headers())
    await run_jobs()
    assert page_ids(salesforce) == [] and (await sync.status())["lastRunRecords"] == 0


async def test_records_modified_in_the_same_second_across_pages_are_not_lost(sync, salesforce, hub_client,
                                                                            hub_env, run_jobs):
    await sync.set()
    ids = [salesforce.add("Contact", Email=f"same{i}@example.com", FirstName="Same") for i in range(5)]
    salesforce.fail("query_more")  # page 2 fails: the watermark sits inside that second
    await hub_client.post(f"{PATH}/run", headers=hub_env.headers())
    await run_jobs()
    assert (await sync.status())["watermark"]["id"] == ids[2]
    salesforce.served.clear()
    await hub_client.post(f"{PATH}/run", headers=hub_env.headers())
    await run_jobs()
    assert page_ids(salesforce) == ids[3:]
    assert (await sync.status())["totalRecords"] == 5


async def test_values_are_converted_to_the_customer_field_types(sync, salesforce, hub_client, hub_env,
                                                                run_jobs):
    await sync.set(fields={"Loyalty_Points__c": "points", "Vip__c": "vip", "LastModifiedDate": "birthday",
                           "Phone": "company", "FirstName": "name"})
    salesforce.add("Contact", Email="strings@example.com", Loyalty_Points__c="1200.5", Vip__c="true",
                   Phone=5551234, FirstName="Ada")
    await hub_client.post(f"{PATH}/run", headers=hub_env.headers())
    await run_jobs()
    fields = await sync.fields("strings@example.com")
    assert fields == {"points": 1200.5, "vip": True, "birthday": "2026-05-01T09:00:00Z", "company": "5551234",
                      "name": "Ada"}
    salesforce.tick(seconds=5)
    record_id = next(iter(salesforce.records["Contact"]))
    salesforce.update("Contact", record_id, Phone=None, Loyalty_Points__c=7)
    await hub_client.post(f"{PATH}/run", headers=hub_env.headers())
    await run_jobs()
    fields = await sync.fields("strings@example.com")
    assert "company" not in fields and fields["points"] == 7  # a value cleared in Salesforce is cleared


async def test_records_that_cannot_be_written_are_skipped_and_counted(sync, salesforce, hub_client, hub_env,
                                                                      run_jobs):
    await sync.set(fields={"Loyalty_Points__c": "points", "FirstName": "name"})
    salesforce.add("Contact", Email="good@example.com", Loyalty_Points__c=5, FirstName="Ok")
    salesforce.add("Contact", Email=None, FirstName="No email")
    salesforce.add("Contact", Email="bad@example.com", Loyalty_Points__c="lots")
    await hub_client.post(f"{PATH}/run", headers=hub_env.headers())
    await run_jobs()
    status = await sync.status()
    assert (status["state"], status["lastRunRecords"], status["lastRunSkipped"]) == ("ok", 1, 2)
    assert "Loyalty_Points__c 'lots' is not a number" in status["lastSkip"]
    assert (await sync.fields("good@example.com"))["points"] == 5
    with pytest.raises(customers.NotFound):
        await customers.get_customer(sync.hub, "acme", "bad@example.com")


async def test_a_bad_login_is_recorded_without_secrets_and_the_worker_carries_on(sync, salesforce, hub_client,
                                                                                 hub_env, run_jobs):
    await sync.set(password="wrong-password-123")
    sync.add_contacts(2)
    await hub_client.post(f"{PATH}/run", headers=hub_env.headers())
    with capture_logs() as logs:
        assert await run_jobs() == 1  # the job completed: the failure is in the status, not a crash
    status = await sync.status()
    assert status["state"] == "failed" and status["lastRunRecords"] == 0
    assert status["lastError"]["code"] == "INVALID_LOGIN"
    assert "Invalid username, password, security token" in status["lastError"]["message"]
    failed = [entry for entry in logs if entry["event"] == "sfmc_profile_sync_failed"]
    assert failed and failed[0]["code"] == "INVALID_LOGIN"
    assert "wrong-password-123" not in str(logs) + str(status) and SF_TOKEN not in str(logs)
    fixed = await hub_client.put(PATH, headers=hub_env.headers(), json={"password": SF_PASSWORD})
    assert fixed.json()["status"]["state"] == "failed"
    await hub_client.post(f"{PATH}/run", headers=hub_env.headers())
    await run_jobs()
    status = await sync.status()
    assert (status["state"], status["lastError"], status["lastRunRecords"]) == ("ok", None, 2)


async def test_an_invalid_field_is_recorded_as_salesforce_names_it(sync, salesforce, hub_client, hub_env,
                                                                   run_jobs):
    await sync.set(fields={"Nickname__c": "name"})
    sync.add_contacts(1)
    await hub_client.post(f"{PATH}/run", headers=hub_env.headers())
    await run_jobs()
    error = (await sync.status())["lastError"]
    assert error["code"] == "INVALID_FIELD"
    assert "No such column 'Nickname__c' on entity 'Contact'" in error["message"]


async def test_a_sync_cut_short_resumes_after_the_last_page_written(sync, salesforce, hub_client, hub_env,
                                                                    run_jobs):
    await sync.set()
    ids = sync.add_contacts(8)
    salesforce.fail("query_more", status=503, code="SERVER_UNAVAILABLE", after=1)  # page 3 fails
    await hub_client.post(f"{PATH}/run", headers=hub_env.headers())
    await run_jobs()
    status = await sync.status()
    assert status["state"] == "failed" and status["lastError"]["code"] == "SERVER_UNAVAILABLE"
    assert (status["lastRunRecords"], status["watermark"]["id"]) == (6, ids[5])
    assert (await sync.fields("user5@example.com"))["name"] == "Ada 5"
    with pytest.raises(customers.NotFound):
        await customers.get_customer(sync.hub, "acme", "user6@example.com")
    salesforce.served.clear()
    await hub_client.post(f"{PATH}/run", headers=hub_env.headers())
    await run_jobs()
    assert page_ids(salesforce) == ids[6:]  # nothing written before is asked for again
    status = await sync.status()
    assert (status["state"], status["lastError"], status["totalRecords"]) == ("ok", None, 8)


async def test_an_expired_session_is_renewed_mid_sync(sync, salesforce, hub_client, hub_env, run_jobs):
    await sync.set()
    sync.add_contacts(5)
    salesforce.fail("query_more", status=401, code="INVALID_SESSION_ID", message="Session expired or invalid")
    await hub_client.post(f"{PATH}/run", headers=hub_env.headers())
    await run_jobs()
    assert salesforce.logins == 2
    status = await sync.status()
    assert (status["state"], status["lastRunRecords"]) == ("ok", 5)


async def test_a_run_waits_for_the_lease_of_a_run_in_flight_and_takes_it_over_when_it_lapses(
        sync, hub, salesforce, clock):
    await sync.set()
    sync.add_contacts(2)
    held = await profile_sync._claim(hub, "acme", "a-worker-that-died")
    assert held is not None and (await sync.status())["state"] == "running"
    assert (await profile_sync.run(hub, "acme"))["outcome"] == "busy"
    assert salesforce.logins == 0
    clock.advance(seconds=hub.plugin_settings["sfmc"].sync_lease_seconds + 1)
    assert (await profile_sync.run(hub, "acme"))["outcome"] == "ok"
    assert (await sync.status())["totalRecords"] == 2


async def test_a_run_asked_for_during_a_run_follows_it(sync, hub, hub_client, hub_env, salesforce, clock,
                                                       run_jobs):
    await sync.set()
    sync.add_contacts(2)
    row = await profile_sync._claim(hub, "acme", "busy-worker")
    clock.advance(seconds=1)
    await hub_client.post(f"{PATH}/run", headers=hub_env.headers())
    await run_jobs()  # the queued run finds the lease held and leaves
    assert salesforce.logins == 0
    await profile_sync._finish(hub, "acme", "busy-worker", row, None)
    await run_jobs()  # the run that ended queued another
    assert salesforce.logins == 1 and (await sync.status())["totalRecords"] == 2


async def test_the_sweep_queues_enabled_syncs_when_due(sync, hub, hub_client, hub_env, salesforce, clock,
                                                       run_jobs):
    await sync.set(intervalMinutes=30)
    sync.add_contacts(1)
    assert await profile_sync.sfmc_profile_sync_sweep({"hub": hub}) == 1
    assert await profile_sync.sfmc_profile_sync_sweep({"hub": hub}) == 0  # queued once
    await run_jobs()
    assert (await sync.status())["totalRecords"] == 1
    clock.advance(minutes=29)
    assert await profile_sync.sfmc_profile_sync_sweep({"hub": hub}) == 0
    clock.advance(minutes=2)
    assert await profile_sync.sfmc_profile_sync_sweep({"hub": hub}) == 1
    await run_jobs()
    await hub_client.put(PATH, headers=hub_env.headers(), json={"enabled": False})
    clock.advance(hours=2)
    assert await profile_sync.sfmc_profile_sync_sweep({"hub": hub}) == 0
    assert (await sync.status())["nextRunAt"] is None


async def test_a_full_run_starts_from_the_oldest_record(sync, salesforce, hub_client, hub_env, run_jobs):
    await sync.set()
    ids = sync.add_contacts(4)
    await hub_client.post(f"{PATH}/run", headers=hub_env.headers())
    await run_jobs()
    salesforce.served.clear()
    await hub_client.post(f"{PATH}/run", headers=hub_env.headers(), json={"full": True})
    await run_jobs()
    assert page_ids(salesforce) == ids
    status = await sync.status()
    assert (status["lastRunRecords"], status["totalRecords"]) == (4, 8)


async def test_a_customer_field_deleted_after_saving_fails_the_run_by_name(sync, hub, hub_client, hub_env,
                                                                          run_jobs):
    await sync.set(fields={"FirstName": "company"})
    async with hub.db.begin() as conn:
        from hub.db import tables
        definitions = tables.field_definition
        await conn.execute(definitions.delete().where(definitions.c.name == "company"))
    await hub_client.post(f"{PATH}/run", headers=hub_env.headers())
    await run_jobs()
    error = (await sync.status())["lastError"]
    assert error["code"] == "HUB_FIELD_MISSING" and "company" in error["message"]


# --- pieces ---------------------------------------------------------------------------------


def test_the_query_selects_each_field_once_and_resumes_after_the_watermark():
    assert build_query("Lead", ["Email", "id", "Company"], None) == (
        "SELECT Email, id, Company, LastModifiedDate FROM Lead ORDER BY LastModifiedDate, Id")
    query = build_query("Contact", ["Email"], ("2026-05-01T09:00:01.000+0000", "0035g0000000003AAA"))
    assert query.endswith("WHERE LastModifiedDate > 2026-05-01T09:00:01Z OR (LastModifiedDate = "
                          "2026-05-01T09:00:01Z AND Id > '0035g0000000003AAA') ORDER BY LastModifiedDate, Id")
    assert soql_datetime("2026-05-01T09:00:01.250+0000") == "2026-05-01T09:00:01.250Z"
    with pytest.raises(ValueError):
        build_query("Contact", ["Email"], ("2026-05-01T09:00:01.000+0000", "x' OR Id != '"))


@pytest.mark.parametrize(("type_", "value", "expected"), [
    ("text", 12.0, "12"), ("text", True, "true"), ("text", "x" * 3000, "x" * 2000),
    ("number", "42", 42), ("number", "4.5", 4.5), ("number", 7, 7),
    ("boolean", "TRUE", True), ("boolean", False, False),
    ("date", "1990-04-01", "1990-04-01"), ("date", "2026-05-01T11:00:00.000+0200", "2026-05-01T09:00:00Z"),
    ("date", None, None),
])
def test_convert_reads_salesforce_values_as_customer_field_values(type_, value, expected):
    assert profile_sync.convert(type_, value) == expected


@pytest.mark.parametrize(("type_", "value"), [
    ("number", "many"), ("number", True), ("boolean", "yes"), ("date", "last week"), ("date", 3),
    ("text", {"city": "Paris"}),
])
def test_convert_refuses_what_does_not_fit(type_, value):
    with pytest.raises(profile_sync.ConversionError):
        profile_sync.convert(type_, value)


# --- the command line -----------------------------------------------------------------------


@pytest.mark.slow
def test_the_cli_sets_runs_shows_and_removes_the_sync(hub_settings, salesforce):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATABASE_URL=hub_settings.database_url, HUB_REDIS_URL=hub_settings.redis_url,
               HUB_SECRET_KEY=hub_settings.secret_key, HUB_VAR_DIR=hub_settings.var_dir,
               HUB_LOG_LEVEL="WARNING", HUB_ALLOW_PRIVATE_URLS="true",
               HUB_SFMC_SALESFORCE_CA_FILE=salesforce.ca_file)

    def hub_cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hub", *args], capture_output=True, text=True,
                              env={**env, **extra}, cwd=REPO, timeout=120)

    for i in range(4):
        salesforce.add("Contact", Email=f"cli{i}@example.com", FirstName=f"Cli {i}")
        salesforce.tick(seconds=1)
    assert hub_cli("env", "create", "bank").returncode == 0
    args = ("sfmc", "sync-set", "--env", "bank", "--login-url", salesforce.url, "--username", SF_USER,
            "--user-id-field", "Email", "--field", "Email=email", "--field", "FirstName=name")
    saved = hub_cli(*args, HUB_SFMC_SALESFORCE_PASSWORD=SF_PASSWORD,
                    HUB_SFMC_SALESFORCE_SECURITY_TOKEN=SF_TOKEN)
    assert saved.returncode == 0, saved.stderr
    assert "object=Contact  userIdField=Email  enabled=true  intervalMinutes=15" in saved.stdout
    assert "fields: Email->email, FirstName->name" in saved.stdout and "state=new" in saved.stdout
    ran = hub_cli("sfmc", "sync-run", "--env", "bank")
    assert ran.returncode == 0, ran.stderr
    assert "state=ok  lastRunRecords=4" in ran.stdout
    shown = hub_cli("sfmc", "sync-show", "--env", "bank")
    assert shown.returncode == 0 and "state=ok  lastRunRecords=4" in shown.stdout
    assert ran.stdout == shown.stdout  # log lines go to stderr, never into the output
    refused = hub_cli("sfmc", "sync-set", "--env", "bank", "--interval-minutes", "0")
    assert refused.returncode == 1 and refused.stderr.startswith("error: intervalMinutes: must be")
    wrong = hub_cli("sfmc", "sync-set", "--env", "bank", "--password", "not-it")
    assert wrong.returncode == 0
    failed = hub_cli("sfmc", "sync-run", "--env", "bank", "--full")
    assert failed.returncode == 1 and failed.stderr.splitlines()[-1].startswith("error: INVALID_LOGIN: ")
    everything = "".join(p.stdout + p.stderr for p in (saved, ran, shown, refused, wrong, failed))
    assert SF_PASSWORD not in everything and SF_TOKEN not in everything and "Traceback" not in everything
    assert hub_cli("sfmc", "sync-remove", "--env", "bank").stdout == "bank: Salesforce profile sync removed\n"
    gone = hub_cli("sfmc", "sync-show", "--env", "bank")
    assert gone.returncode == 1 and "no Salesforce profile sync" in gone.stderr
    assert "Example" in hub_cli("sfmc", "sync-set", "--help").stdout

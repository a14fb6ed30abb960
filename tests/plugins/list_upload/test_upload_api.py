"""List uploads through the API: rows → invocations → cards, bad rows, limits, duplicates."""

import csv
import io

import msgspec
import pytest
from sqlalchemy import func, select

from hub.db import tables
from hub_plugins.list_upload import tables as upload_tables
from hub_plugins.list_upload.service import list_upload_run
from tests.plugins.list_upload.conftest import MAPPING, csv_rows, publish, upload


async def count(hub, table, *where):
    async with hub.db.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar()


async def test_every_valid_row_starts_the_flow_and_sends_its_card(hub, hub_client, hub_env, promo, run_jobs):
    answer = await upload(hub_client, hub_env, csv_rows(25))
    assert answer.status_code == 202, answer.text
    created = answer.json()
    assert created["state"] == "queued"
    assert (created["rowsRead"], created["rowsValid"], created["rowsRejected"], created["rowsStarted"]) == (
        25,
        25,
        0,
        0,
    )
    assert created["mapping"] == {
        "userColumn": "customer",
        "variables": {"amount": "Amount", "merchant": "Shop"},
        "metadataColumns": [],
    }
    await run_jobs()
    done = (
        await hub_client.get(f"/v1/{hub_env.id}/uploads/{created['uploadId']}", headers=hub_env.headers())
    ).json()
    assert done["state"] == "completed" and done["rowsStarted"] == 25
    assert done["startedAt"] and done["completedAt"] and done["queuedAt"]
    cards = (
        await hub_client.get(f"/v1/{hub_env.id}/cards", params={"userId": "u-7"}, headers=hub_env.headers())
    ).json()["cards"]
    assert [c["content"]["elements"][0]["text"] for c in cards] == ["7.5 at Shop 7"]
    assert await count(hub, tables.card) == 25
    invocation = cards[0]["flowInvocationId"]
    assert invocation == f"list:{created['uploadId']}:8"  # the header is row 1
    got = await hub_client.get(
        f"/v1/{hub_env.id}/action-flow/invocations/{invocation}", headers=hub_env.headers()
    )
    assert got.status_code == 200
    assert (got.json()["source"], got.json()["status"]) == ("list", "completed")


async def test_bad_rows_are_reported_with_row_number_and_reason(hub, hub_client, hub_env, promo, run_jobs):
    body = (
        "customer,Amount,Shop\n"
        "u-1,10,A\n"
        ",11,B\n"  # row 3: no user id
        "u-3,eleven,C\n"  # row 4: not a number
        "u-4,12\n"  # row 5: too few fields
        "u-5,,D\n"  # row 6: required variable empty
        '"u-6","13","multi\nline shop"\n'  # rows 7: a quoted line break is one record
        "u-7,14,E\n"
    )  # row 8
    answer = await upload(hub_client, hub_env, body)
    assert answer.status_code == 202, answer.text
    created = answer.json()
    assert (created["rowsRead"], created["rowsValid"], created["rowsRejected"]) == (7, 3, 4)
    report = await hub_client.get(
        f"/v1/{hub_env.id}/uploads/{created['uploadId']}/errors.csv", headers=hub_env.headers()
    )
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(report.text)))
    assert rows[0] == ["row", "reason"]
    reasons = {int(r[0]): r[1] for r in rows[1:]}
    assert sorted(reasons) == [3, 4, 5, 6]
    assert "user id" in reasons[3] and "non-empty" in reasons[3]
    assert "'Amount' (variable amount)" in reasons[4] and "must be a number" in reasons[4]
    assert "has 2 fields where the header has 3" in reasons[5]
    assert "is required" in reasons[6]
    await run_jobs()
    assert await count(hub, tables.card) == 3
    cards = (
        await hub_client.get(f"/v1/{hub_env.id}/cards", params={"userId": "u-6"}, headers=hub_env.headers())
    ).json()["cards"]
    assert cards[0]["content"]["elements"][0]["text"] == "13 at multi\nline shop"


@pytest.fixture
def limits(hub):
    """Change the plugin's settings for one test: ``limits(max_rows=10)``."""
    original = hub.plugin_settings["list_upload"]

    def change(**values):
        hub.plugin_settings["list_upload"] = msgspec.structs.replace(original, **values)

    yield change
    hub.plugin_settings["list_upload"] = original


async def test_a_file_over_the_byte_limit_is_refused_naming_the_limit(hub_client, hub_env, promo, limits):
    limits(max_bytes=200)
    answer = await upload(hub_client, hub_env, csv_rows(50))
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["errors"][0]["field"] == "body"
    assert "HUB_LIST_UPLOAD_MAX_BYTES" in problem["errors"][0]["reason"]
    listing = (await hub_client.get(f"/v1/{hub_env.id}/uploads", headers=hub_env.headers())).json()
    assert listing["uploads"] == []  # nothing kept


async def test_a_chunked_upload_over_the_byte_limit_is_refused_while_it_streams(
    hub, hub_client, hub_env, promo, limits, run_jobs
):
    limits(max_bytes=200)
    body = csv_rows(50).encode()
    sent = []

    async def pieces():  # no length known up front: sent chunked, without Content-Length
        for start in range(0, len(body), 64):
            sent.append(start)
            yield body[start : start + 64]

    answer = await hub_client.post(
        f"/v1/{hub_env.id}/uploads",
        params=MAPPING,
        content=pieces(),
        headers={**hub_env.headers(), "Content-Type": "text/csv"},
    )
    assert answer.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in answer.request.headers
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["errors"][0]["field"] == "body"
    assert "larger than 200 bytes (HUB_LIST_UPLOAD_MAX_BYTES)" in problem["errors"][0]["reason"]
    assert len(sent) < len(body) // 64  # refused before the rest was read
    listing = (await hub_client.get(f"/v1/{hub_env.id}/uploads", headers=hub_env.headers())).json()
    assert listing["uploads"] == []
    assert await count(hub, upload_tables.upload) == 0 and await count(hub, upload_tables.row) == 0
    await run_jobs()
    assert await count(hub, tables.invocation) == 0


@pytest.mark.parametrize(
    ("tail", "row"),
    [('u-2,2,"a quote never closed\n' + "and more,\n" * 200, 3), ("u-2,2," + "x" * 3000, 3)],
    ids=["open-quote", "no-line-break"],
)
async def test_a_record_over_the_record_limit_is_refused_naming_its_row(
    hub, hub_client, hub_env, promo, limits, tail, row
):
    limits(max_record_bytes=1000)
    answer = await upload(hub_client, hub_env, "customer,Amount,Shop\nu-1,1,A\n" + tail)
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    reason = answer.json()["errors"][0]["reason"]
    assert reason.startswith(f"row {row} is longer than 1000 bytes (HUB_LIST_UPLOAD_MAX_RECORD_BYTES)")
    assert await count(hub, upload_tables.upload) == 0 and await count(hub, upload_tables.row) == 0


async def test_a_file_over_the_row_limit_is_refused_naming_the_limit(hub, hub_client, hub_env, promo, limits):
    limits(max_rows=10, write_batch_rows=4)
    answer = await upload(hub_client, hub_env, csv_rows(11))
    fits = await upload(hub_client, hub_env, csv_rows(10))
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert "HUB_LIST_UPLOAD_MAX_ROWS" in answer.json()["errors"][0]["reason"]
    assert fits.status_code == 202
    assert await count(hub, upload_tables.row) == 10  # the refused upload's rows are gone


@pytest.mark.parametrize(
    ("body", "content_type", "params", "status", "field"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "text/csv", MAPPING, 422, "body"),
        (b"customer,Amount\nu-1,3\n", "application/json", MAPPING, 415, "header.content-type"),
        (b"", "text/csv", MAPPING, 422, "body"),
        (b"customer,Amount,Shop\n", "text/csv", MAPPING, 422, "body"),
        (b"customer,Amount,Shop\ru-1,3,A\r", "text/csv", MAPPING, 422, "body"),  # CR line ends
        (b"id,Amount\nu-1,3\n", "text/csv", MAPPING, 422, "query.userColumn"),
        (
            b"customer,Total\nu-1,3\n",
            "text/csv",
            {**MAPPING, "variable": ["amount:Amount"]},
            422,
            "query.variable",
        ),
        (
            b"customer,Amount\nu-1,3\n",
            "text/csv",
            {**MAPPING, "variable": ["bogus:Amount"]},
            422,
            "query.variable",
        ),
        (b"customer,Amount\nu-1,3\n", "text/csv", {**MAPPING, "variable": []}, 422, "query.variable"),
        (b"customer,Amount\nu-1,3\n", "text/csv", {"flowConfigId": "promo"}, 422, "query.userColumn"),
        (
            b"customer,Amount\nu-1,3\n",
            "text/csv",
            {**MAPPING, "flowConfigId": "nope"},
            404,
            "query.flowConfigId",
        ),
    ],
)
async def test_non_csv_bodies_and_bad_mappings_are_problems(
    hub_client, hub_env, promo, body, content_type, params, status, field
):
    answer = await upload(hub_client, hub_env, body, params, content_type)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["errors"][0]["field"] == field


async def test_the_same_file_again_is_a_409_naming_the_first_upload_unless_allowed(
    hub_client, hub_env, promo
):
    first = await upload(hub_client, hub_env, csv_rows(3))
    again = await upload(hub_client, hub_env, csv_rows(3))
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    problem = again.json()
    assert problem["earlierUploadId"] == first.json()["uploadId"]
    assert (
        first.json()["uploadId"] in problem["detail"]
        and problem["errors"][0]["field"] == "query.allowDuplicate"
    )
    allowed = await upload(hub_client, hub_env, csv_rows(3), {**MAPPING, "allowDuplicate": "true"})
    assert allowed.status_code == 202
    other = await upload(hub_client, hub_env, csv_rows(4))
    assert other.status_code == 202
    listing = (await hub_client.get(f"/v1/{hub_env.id}/uploads", headers=hub_env.headers())).json()
    assert len(listing["uploads"]) == 3


async def test_simultaneous_identical_uploads_start_once(hub, hub_client, hub_env, promo, limits, run_jobs):
    import asyncio

    limits(write_batch_rows=5)  # several transactions each, so the uploads interleave
    body = csv_rows(40)
    together = asyncio.Barrier(6)

    async def pieces():  # each upload streams in pieces; the last ones are sent all at once
        for start in range(0, len(body), 100):
            if start + 100 >= len(body):
                await together.wait()
            yield body[start : start + 100].encode()

    answers = await asyncio.gather(*(
        hub_client.post(f"/v1/{hub_env.id}/uploads", params=MAPPING, content=pieces(),
                        headers={**hub_env.headers(), "Content-Type": "text/csv"})
        for _ in range(6)
    ))
    assert sorted(a.status_code for a in answers) == [202] + [409] * 5, [a.text for a in answers]
    [accepted] = [a.json() for a in answers if a.status_code == 202]
    assert all(a.json()["earlierUploadId"] == accepted["uploadId"] for a in answers if a.status_code == 409)
    await run_jobs()
    assert await count(hub, upload_tables.upload) == 1
    assert await count(hub, tables.invocation) == 40


async def test_multipart_form_fields_then_file(hub, hub_client, hub_env, promo, run_jobs):
    files = [
        ("flowConfigId", (None, "promo")),
        ("userColumn", (None, "customer")),
        ("variable", (None, "amount:Amount")),
        ("metadataColumn", (None, "Shop")),
        ("file", ("list.csv", csv_rows(4).encode(), "text/csv")),
    ]
    answer = await hub_client.post(f"/v1/{hub_env.id}/uploads", files=files, headers=hub_env.headers())
    assert answer.status_code == 202, answer.text
    created = answer.json()
    assert created["filename"] == "list.csv" and created["rowsValid"] == 4
    assert created["mapping"]["metadataColumns"] == ["Shop"]
    await run_jobs()
    cards = (
        await hub_client.get(f"/v1/{hub_env.id}/cards", params={"userId": "u-2"}, headers=hub_env.headers())
    ).json()["cards"]
    assert cards[0]["content"]["elements"][0]["text"] == "2.5 at the shop"  # default: not mapped
    late = [
        ("file", ("list.csv", b"customer,Amount\nu-1,1\n", "text/csv")),
        ("userColumn", (None, "customer")),
    ]
    refused = await hub_client.post(
        f"/v1/{hub_env.id}/uploads", files=late, headers=hub_env.headers(), params={"flowConfigId": "promo"}
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] in ("form.userColumn", "query.userColumn")


async def test_progress_counts_move_from_queued_to_completed(
    hub, hub_client, hub_env, promo, run_jobs, limits
):
    limits(chunk_rows=10, job_seconds=0.0)
    created = (await upload(hub_client, hub_env, csv_rows(35) + ",1,x\n")).json()
    url = f"/v1/{hub_env.id}/uploads/{created['uploadId']}"
    assert (created["state"], created["rowsStarted"], created["rowsRejected"]) == ("queued", 0, 1)
    await list_upload_run({"hub": hub}, hub_env.id, created["uploadId"])  # one chunk, then hands over
    partway = (await hub_client.get(url, headers=hub_env.headers())).json()
    assert (partway["state"], partway["rowsStarted"]) == ("running", 10)
    await run_jobs()
    done = (await hub_client.get(url, headers=hub_env.headers())).json()
    assert (
        done["state"],
        done["rowsRead"],
        done["rowsValid"],
        done["rowsStarted"],
        done["rowsRejected"],
    ) == ("completed", 36, 35, 35, 1)


async def test_uploads_are_isolated_between_environments(hub, hub_client, hub_env, promo):
    from hub.testing import make_environment

    other = await make_environment(hub, "globex")
    created = (await upload(hub_client, hub_env, csv_rows(2))).json()
    seen = await hub_client.get(f"/v1/globex/uploads/{created['uploadId']}", headers=other.headers())
    assert seen.status_code == 404 and seen.headers["content-type"] == "application/problem+json"
    errors = await hub_client.get(
        f"/v1/globex/uploads/{created['uploadId']}/errors.csv", headers=other.headers()
    )
    assert errors.status_code == 404
    assert (await hub_client.get("/v1/globex/uploads", headers=other.headers())).json()["uploads"] == []
    crossed = await hub_client.get(f"/v1/{hub_env.id}/uploads", headers=other.headers())
    assert crossed.status_code in (401, 403)
    # the same file for the same flow id in another environment is not a duplicate
    await publish(hub_client, other)
    assert (await upload(hub_client, other, csv_rows(2))).status_code == 202


async def test_a_flow_that_refuses_list_uploads_is_a_403(hub_client, hub_env):
    from tests.plugins.list_upload.conftest import PROMO_FLOW

    await publish(hub_client, hub_env, "closed", {**PROMO_FLOW, "triggers": {"list": False}})
    answer = await upload(hub_client, hub_env, csv_rows(1), {**MAPPING, "flowConfigId": "closed"})
    assert answer.status_code == 403
    assert answer.json()["errors"][0]["field"] == "query.flowConfigId"

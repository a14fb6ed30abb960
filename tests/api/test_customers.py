"""The Customers API: /v1/{env}/users and /v1/{env}/fields, over HTTP, on a real database."""

import asyncio
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from hub.db import tables
from hub.hookspecs import hookimpl
from hub.testing import make_environment


class ChangeRecorder:
    """A plugin that remembers every ``hub_customer_changed`` call."""

    def __init__(self):
        self.calls = []

    @hookimpl
    def hub_customer_changed(self, customer, changes):
        self.calls.append((customer, changes))

    def for_user(self, user_id):
        return [changes for customer, changes in self.calls if customer["userId"] == user_id]


@pytest.fixture
def recorder():
    return ChangeRecorder()


@pytest.fixture
def hub_plugins(recorder):
    return [recorder]


def assert_problem(response, status, field=None):
    """A 4xx answer is problem+json with an ``errors`` list; ``field`` must be among them."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["errors"], list) and body["errors"]
    for error in body["errors"]:
        assert set(error) == {"field", "reason"} and error["reason"]
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body["errors"]
    return body


@pytest.fixture
def api(hub_client, hub_env):
    return Api(hub_client, hub_env)


class Api:
    def __init__(self, client, env):
        self.client = client
        self.env = env
        self.headers = env.headers()

    async def put(self, users, expect=200):
        response = await self.client.put(f"/v1/{self.env.id}/users", json={"users": users},
                                         headers=self.headers)
        assert response.status_code == expect, response.text
        return response

    async def upsert(self, *users):
        body = (await self.put(list(users))).json()
        assert body["failed"] == 0, body
        return body

    async def get(self, user_id):
        return await self.client.get(f"/v1/{self.env.id}/users/{quote(user_id, safe='')}",
                                     headers=self.headers)

    async def profile(self, user_id):
        response = await self.get(user_id)
        assert response.status_code == 200, response.text
        return response.json()

    async def list(self, params=None):
        return await self.client.get(f"/v1/{self.env.id}/users", params=params or {},
                                     headers=self.headers)

    async def ids(self, params=None):
        response = await self.list(params)
        assert response.status_code == 200, response.text
        return [u["userId"] for u in response.json()["users"]]

    async def define(self, name, type_, expect=201):
        response = await self.client.post(f"/v1/{self.env.id}/fields",
                                          json={"name": name, "type": type_}, headers=self.headers)
        assert response.status_code == expect, response.text
        return response

    async def delete(self, user_id, **params):
        return await self.client.delete(f"/v1/{self.env.id}/users/{quote(user_id, safe='')}",
                                        params=params, headers=self.headers)


@pytest.fixture
async def typed_fields(api):
    for name, type_ in (("age", "number"), ("vip", "boolean"), ("plan", "text"),
                        ("birthday", "date")):
        await api.define(name, type_)


# --- upsert: create and update --------------------------------------------------------------


async def test_upsert_creates_a_customer_with_default_preferences(api):
    body = await api.upsert({"userId": "u1", "fields": {"name": "Ada"}, "tags": ["beta"]})
    assert body == {"results": [{"index": 0, "userId": "u1", "status": "created"}],
                    "created": 1, "updated": 0, "failed": 0}
    profile = await api.profile("u1")
    assert profile["fields"] == {"name": "Ada"}
    assert profile["tags"] == ["beta"]
    assert profile["isTestUser"] is False
    assert profile["preferences"] == {"timezone": None, "notificationsEnabled": True,
                                      "notificationWindows": {}}
    assert profile["createdAt"] == profile["updatedAt"]
    assert profile["firstSeenAt"] is None and profile["lastSeenAt"] is None


async def test_upsert_merges_fields_and_null_removes_one(api, typed_fields):
    await api.upsert({"userId": "u1", "fields": {"name": "Ada", "city": "London", "age": 36}})
    body = await api.upsert({"userId": "u1", "fields": {"city": None, "age": 37, "vip": True}})
    assert body["results"] == [{"index": 0, "userId": "u1", "status": "updated"}]
    profile = await api.profile("u1")
    assert profile["fields"] == {"name": "Ada", "age": 37, "vip": True}
    assert profile["updatedAt"] >= profile["createdAt"]


async def test_tags_replace_and_add_tags_remove_tags_adjust(api):
    await api.upsert({"userId": "u1", "tags": ["a", "b"]})
    await api.upsert({"userId": "u1", "tags": ["c", "d"]})
    assert (await api.profile("u1"))["tags"] == ["c", "d"]
    await api.upsert({"userId": "u1", "addTags": ["e", "c"], "removeTags": ["d", "zz"]})
    assert (await api.profile("u1"))["tags"] == ["c", "e"]
    await api.upsert({"userId": "u1", "tags": []})
    assert (await api.profile("u1"))["tags"] == []
    assert await api.ids({"tag": "c"}) == []


async def test_preferences_merge_and_windows_merge_by_weekday(api):
    monday = [{"from": "09:00", "to": "12:00"}, {"from": "08:00", "to": "08:30"}]
    await api.upsert({"userId": "u1", "preferences": {
        "timezone": "Europe/London", "notificationWindows": {"monday": monday, "sunday": []}}})
    await api.upsert({"userId": "u1", "preferences": {
        "notificationsEnabled": False, "notificationWindows": {"sunday": None,
                                                               "friday": [{"from": "18:00",
                                                                           "to": "24:00"}]}}})
    prefs = (await api.profile("u1"))["preferences"]
    assert prefs == {
        "timezone": "Europe/London", "notificationsEnabled": False,
        "notificationWindows": {"monday": sorted(monday, key=lambda w: w["from"]),
                                "friday": [{"from": "18:00", "to": "24:00"}]},
    }
    await api.upsert({"userId": "u1", "preferences": {"timezone": None, "notificationWindows": None}})
    prefs = (await api.profile("u1"))["preferences"]
    assert prefs == {"timezone": None, "notificationsEnabled": False, "notificationWindows": {}}


async def test_is_test_user_is_set_and_kept_when_omitted(api):
    await api.upsert({"userId": "t1", "isTestUser": True})
    await api.upsert({"userId": "t1", "fields": {"name": "Tess"}})
    assert (await api.profile("t1"))["isTestUser"] is True


async def test_date_fields_are_stored_in_one_normal_form(api, typed_fields):
    await api.upsert({"userId": "u1", "fields": {"birthday": "1990-05-17"}},
                     {"userId": "u2", "fields": {"birthday": "2026-01-31T10:00:00+01:00"}})
    assert (await api.profile("u1"))["fields"]["birthday"] == "1990-05-17"
    assert (await api.profile("u2"))["fields"]["birthday"] == "2026-01-31T09:00:00Z"


# --- upsert: per-item errors ----------------------------------------------------------------


async def test_invalid_item_is_reported_and_valid_items_of_the_batch_are_saved(api, typed_fields):
    response = await api.put([
        {"userId": "good1", "fields": {"age": 30}},
        {"userId": "bad", "fields": {"age": "thirty"}},
        {"userId": "good2", "tags": ["x"]},
    ])
    body = response.json()
    assert (body["created"], body["updated"], body["failed"]) == (2, 0, 1)
    bad = body["results"][1]
    assert bad["status"] == "error" and bad["userId"] == "bad" and bad["index"] == 1
    assert bad["errors"] == [{"field": "users[1].fields.age",
                              "reason": "must be a number (field type number)"}]
    assert (await api.get("good1")).status_code == 200
    assert (await api.get("good2")).status_code == 200
    assert_problem(await api.get("bad"), 404)


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("age", "12", "must be a number"),
    ("age", True, "must be a number"),
    ("age", 2**70, "must fit in 64 bits"),
    ("vip", "yes", "must be true or false"),
    ("vip", 1, "must be true or false"),
    ("plan", 5, "must be a string"),
    ("plan", "x" * 2001, "at most 2000 characters"),
    ("plan", "nul\x00inside", "NUL"),
    ("name", ["Ada"], "must be a string"),
    ("birthday", "tomorrow", "ISO 8601"),
    ("birthday", "2026-02-30", "ISO 8601"),
    ("birthday", "2026-01-31T10:00:00", "timezone offset"),
    ("birthday", 20260131, "ISO 8601"),
])
async def test_a_value_of_the_wrong_type_names_the_field(api, typed_fields, field, value, reason):
    body = (await api.put([{"userId": "u1", "fields": {field: value}}])).json()
    [error] = body["results"][0]["errors"]
    assert error["field"] == f"users[0].fields.{field}"
    assert reason in error["reason"]
    assert_problem(await api.get("u1"), 404)


async def test_undeclared_field_is_rejected(api):
    body = (await api.put([{"userId": "u1", "fields": {"shoeSize": 44}}])).json()
    [error] = body["results"][0]["errors"]
    assert error["field"] == "users[0].fields.shoeSize"
    assert "not a defined field" in error["reason"]


@pytest.mark.parametrize(("preferences", "field"), [
    ({"timezone": "Mars/Olympus"}, "preferences.timezone"),
    ({"timezone": "localtime"}, "preferences.timezone"),
    ({"timezone": 1}, "preferences.timezone"),
    ({"notificationsEnabled": "yes"}, "preferences.notificationsEnabled"),
    ({"quietHours": True}, "preferences.quietHours"),
    ({"notificationWindows": []}, "preferences.notificationWindows"),
    ({"notificationWindows": {"funday": []}}, "preferences.notificationWindows.funday"),
    ({"notificationWindows": {"monday": {"from": "09:00"}}}, "preferences.notificationWindows.monday"),
    ({"notificationWindows": {"monday": [{"from": "9:00", "to": "10:00"}]}},
     "preferences.notificationWindows.monday[0]"),
    ({"notificationWindows": {"monday": [{"from": "10:00", "to": "09:00"}]}},
     "preferences.notificationWindows.monday[0]"),
    ({"notificationWindows": {"monday": [{"from": "10:00", "to": "24:01"}]}},
     "preferences.notificationWindows.monday[0]"),
    ({"notificationWindows": {"monday": [{"from": "10:00", "to": "11:00", "x": 1}]}},
     "preferences.notificationWindows.monday[0]"),
    ({"notificationWindows": {"monday": [{"from": "10:00", "to": "11:00"}] * 11}},
     "preferences.notificationWindows.monday"),
    ("UTC", "preferences"),
])
async def test_bad_preferences_are_rejected_with_their_path(api, preferences, field):
    body = (await api.put([{"userId": "u1", "preferences": preferences}])).json()
    assert body["failed"] == 1
    assert f"users[0].{field}" in [e["field"] for e in body["results"][0]["errors"]]


@pytest.mark.parametrize(("item", "field"), [
    ({"userId": "u1", "email": "a@b.c"}, "users[0].email"),
    ({"userId": "u1", "tags": "a"}, "users[0].tags"),
    ({"userId": "u1", "tags": ["ok", "a,b"]}, "users[0].tags[1]"),
    ({"userId": "u1", "addTags": [" lead"]}, "users[0].addTags[0]"),
    ({"userId": "u1", "removeTags": ["x" * 101]}, "users[0].removeTags[0]"),
    ({"userId": "u1", "tags": ["new\nline"]}, "users[0].tags[0]"),
    ({"userId": "u1", "tags": [f"t{i}" for i in range(101)]}, "users[0].tags"),
    ({"userId": "u1", "isTestUser": "yes"}, "users[0].isTestUser"),
    ({"userId": "u1", "fields": []}, "users[0].fields"),
    ({"userId": ""}, "users[0].userId"),
    ({"userId": "   "}, "users[0].userId"),
    ({"userId": 42}, "users[0].userId"),
    ({"userId": "x" * 256}, "users[0].userId"),
    ({"userId": "tab\there"}, "users[0].userId"),
    ({"fields": {}}, "users[0].userId"),
    ("u1", "users[0]"),
    (None, "users[0]"),
    (["u1"], "users[0]"),
])
async def test_bad_items_are_reported_not_saved(api, item, field):
    body = (await api.put([item])).json()
    assert body["failed"] == 1 and body["created"] == 0
    assert field in [e["field"] for e in body["results"][0]["errors"]], body


async def test_every_problem_of_an_item_is_reported_at_once(api):
    body = (await api.put([{"userId": "u1", "bogus": 1, "fields": {"nope": 1},
                            "preferences": {"timezone": "Nowhere"}}])).json()
    fields = sorted(e["field"] for e in body["results"][0]["errors"])
    assert fields == ["users[0].bogus", "users[0].fields.nope", "users[0].preferences.timezone"]


async def test_duplicate_user_id_in_one_batch_is_an_error_for_the_repeat(api):
    body = (await api.put([{"userId": "u1", "tags": ["first"]}, {"userId": "u2"},
                           {"userId": "u1", "tags": ["second"]}])).json()
    assert body["results"][2]["status"] == "error"
    assert body["results"][2]["errors"] == [{"field": "users[2].userId",
                                             "reason": "repeats item 0 of this batch"}]
    assert (await api.profile("u1"))["tags"] == ["first"]


async def test_adding_tags_beyond_the_limit_is_an_item_error(api):
    await api.upsert({"userId": "u1", "tags": [f"t{i}" for i in range(100)]})
    body = (await api.put([{"userId": "u1", "addTags": ["one-more"]}])).json()
    assert body["results"][0]["errors"][0]["field"] == "users[0].addTags"
    assert len((await api.profile("u1"))["tags"]) == 100


# --- upsert: whole-request errors -----------------------------------------------------------


async def test_batch_over_the_limit_is_413_naming_users(api, hub):
    users = [{"userId": f"u{i}"} for i in range(hub.settings.max_batch_size + 1)]
    response = await api.client.put(f"/v1/{api.env.id}/users", json={"users": users},
                                    headers=api.headers)
    assert_problem(response, 413, "users")
    assert (await api.list()).json()["users"] == []


async def test_batch_at_the_limit_is_accepted(api, hub):
    users = [{"userId": f"u{i}"} for i in range(hub.settings.max_batch_size)]
    body = (await api.put(users)).json()
    assert body["created"] == hub.settings.max_batch_size


async def test_empty_batch_is_422(api):
    response = await api.client.put(f"/v1/{api.env.id}/users", json={"users": []},
                                    headers=api.headers)
    assert_problem(response, 422, "users")


@pytest.mark.parametrize(("body", "status", "field"), [
    ({}, 422, "users"),
    ({"users": {"userId": "u1"}}, 422, "users"),
    ({"users": [{"userId": "u1"}], "extra": True}, 422, "extra"),
    ([{"userId": "u1"}], 422, None),
])
async def test_malformed_request_bodies_are_problems(api, body, status, field):
    response = await api.client.put(f"/v1/{api.env.id}/users", json=body, headers=api.headers)
    assert_problem(response, status, field)


async def test_invalid_json_is_400_problem(api):
    response = await api.client.put(f"/v1/{api.env.id}/users", content=b'{"users": [',
                                    headers={**api.headers, "content-type": "application/json"})
    assert_problem(response, 400)


async def test_upsert_needs_write_permission(api, hub_env):
    response = await api.client.put(f"/v1/{hub_env.id}/users", json={"users": [{"userId": "u"}]},
                                    headers=hub_env.headers(roles=["read"]))
    assert_problem(response, 403)


# --- get ------------------------------------------------------------------------------------


async def test_get_unknown_user_is_404_problem(api):
    body = assert_problem(await api.get("nobody"), 404, "path.userId")
    assert "nobody" in body["detail"]


@pytest.mark.parametrize("user_id", ["ada@example.com", "first.last", "a+b", "with space",
                                     "ünïcødé-✓", "semi;colon", "percent%41", "q?x=1#frag"])
async def test_user_ids_with_special_characters_round_trip(api, user_id):
    await api.upsert({"userId": user_id, "tags": ["odd"]})
    assert (await api.profile(user_id))["userId"] == user_id
    assert await api.ids({"tag": "odd"}) == [user_id]
    assert (await api.delete(user_id)).status_code == 204
    assert_problem(await api.get(user_id), 404)


async def test_get_with_a_nul_in_the_path_is_404_not_500(api):
    response = await api.client.get(f"/v1/{api.env.id}/users/a%00b", headers=api.headers)
    assert_problem(response, 404)


# --- list -----------------------------------------------------------------------------------


async def test_list_by_several_tags_is_an_and(api):
    await api.upsert({"userId": "ab", "tags": ["a", "b"]}, {"userId": "a", "tags": ["a"]},
                     {"userId": "b", "tags": ["b"]}, {"userId": "abc", "tags": ["a", "b", "c"]})
    # Customers list in creation order; one batch creates its new users in userId order.
    assert await api.ids({"tag": "a"}) == ["a", "ab", "abc"]
    assert await api.ids([("tag", "a"), ("tag", "b")]) == ["ab", "abc"]
    assert await api.ids([("tag", "a"), ("tag", "b"), ("tag", "c")]) == ["abc"]
    assert await api.ids([("tag", "a"), ("tag", "a")]) == ["a", "ab", "abc"]
    assert await api.ids({"tag": "zzz"}) == []


async def test_list_filters_by_fields_typed_by_their_definition(api, typed_fields):
    await api.upsert(
        {"userId": "u1", "fields": {"age": 30, "vip": True, "plan": "gold", "birthday": "1990-05-17",
                                    "city": "Paris"}},
        {"userId": "u2", "fields": {"age": 30.5, "vip": False, "plan": "30",
                                    "birthday": "2026-01-31T09:00:00Z"}},
        {"userId": "u3", "fields": {"age": 41}},
    )
    assert await api.ids({"field.age": "30"}) == ["u1"]
    assert await api.ids({"field.age": "30.0"}) == ["u1"]
    assert await api.ids({"field.age": "30.5"}) == ["u2"]
    assert await api.ids({"field.vip": "true"}) == ["u1"]
    assert await api.ids({"field.vip": "false"}) == ["u2"]
    assert await api.ids({"field.plan": "gold"}) == ["u1"]
    assert await api.ids({"field.plan": "30"}) == ["u2"]
    assert await api.ids({"field.city": "Paris"}) == ["u1"]
    assert await api.ids({"field.birthday": "1990-05-17"}) == ["u1"]
    assert await api.ids({"field.birthday": "2026-01-31T10:00:00+01:00"}) == ["u2"]
    assert await api.ids({"field.age": "30", "field.vip": "false"}) == []


async def test_list_filters_by_is_test_user(api):
    await api.upsert({"userId": "t1", "isTestUser": True}, {"userId": "r1"},
                     {"userId": "t2", "isTestUser": True})
    assert await api.ids({"isTestUser": "true"}) == ["t1", "t2"]
    assert await api.ids({"isTestUser": "false"}) == ["r1"]
    assert await api.ids() == ["r1", "t1", "t2"]


async def test_cursor_pagination_walks_every_customer_once(api):
    await api.upsert(*[{"userId": f"u{i:02}", "tags": ["all"] if i % 3 else ["all", "third"]}
                       for i in range(23)])
    for params, expected in (({}, 23), ({"tag": "third"}, 8)):
        seen, cursor, pages = [], None, 0
        while True:
            response = await api.list({**params, "limit": 5, **({"cursor": cursor} if cursor else {})})
            body = response.json()
            assert len(body["users"]) <= 5
            seen += [u["userId"] for u in body["users"]]
            pages += 1
            cursor = body["nextCursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == expected
        assert pages == -(-expected // 5)
    assert sorted(seen) == [f"u{i:02}" for i in range(0, 23, 3)]


async def test_a_full_last_page_has_no_next_cursor(api):
    await api.upsert(*[{"userId": f"u{i}"} for i in range(4)])
    body = (await api.list({"limit": 2})).json()
    second = (await api.list({"limit": 2, "cursor": body["nextCursor"]})).json()
    assert [u["userId"] for u in second["users"]] == ["u2", "u3"]
    assert second["nextCursor"] is None


@pytest.mark.parametrize("cursor", ["garbage", "", "YzE6LTE", "YzE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5",
                                    "YzI6MQ", "%%%", "YzE6IDE"])
async def test_bad_cursor_is_422_naming_query_cursor(api, cursor):
    # YzE6LTE is "c1:-1", the long one "c1:" and 24 nines, YzI6MQ "c2:1", YzE6IDE "c1: 1".
    assert_problem(await api.list({"cursor": cursor}), 422, "query.cursor")


@pytest.mark.parametrize(("params", "field"), [
    ({"bogus": "1"}, "query.bogus"),
    ({"userId": "u1"}, "query.userId"),
    ({"limit": "0"}, None),
    ({"limit": "lots"}, None),
    ({"isTestUser": "maybe"}, None),
    ({"field.shoeSize": "44"}, "query.field.shoeSize"),
    ({"field.age": "old"}, "query.field.age"),
    ({"field.age": "nan"}, "query.field.age"),
    ({"field.vip": "1"}, "query.field.vip"),
    ({"field.birthday": "soon"}, "query.field.birthday"),
    ({"field.plan": "a\x00b"}, "query.field.plan"),
    ({"tag": "a,b"}, "query.tag"),
    ({"tag": "nul\x00"}, "query.tag"),
])
async def test_bad_query_parameters_are_422(api, typed_fields, params, field):
    assert_problem(await api.list(params), 422, field)


# --- delete and erase -----------------------------------------------------------------------


async def test_delete_then_get_is_404(api):
    await api.upsert({"userId": "u1"})
    assert (await api.delete("u1")).status_code == 204
    assert_problem(await api.get("u1"), 404)
    assert_problem(await api.delete("u1"), 404)


async def test_delete_unknown_user_is_404(api):
    assert_problem(await api.delete("ghost"), 404, "path.userId")


async def test_erase_must_be_a_boolean(api):
    await api.upsert({"userId": "u1"})
    assert_problem(await api.delete("u1", erase="maybe"), 422, "query.erase")
    assert (await api.get("u1")).status_code == 200


async def test_erase_removes_tag_rows_and_tells_plugins(api, hub, recorder, run_jobs):
    await api.upsert({"userId": "u1", "tags": ["a", "b"]}, {"userId": "u2", "tags": ["a"]})
    await run_jobs()
    recorder.calls.clear()
    assert (await api.delete("u1", erase="true")).status_code == 204
    async with hub.db.connect() as conn:
        tags = (await conn.execute(select(tables.customer_tag.c.tag))).scalars().all()
    assert tags == ["a"]
    await run_jobs()
    assert recorder.calls == [({"userId": "u1", "environmentId": "acme"}, {
        "created": False, "deleted": True, "erased": True, "fields": [], "tags": False,
        "preferences": False, "isTestUser": False})]
    assert await api.ids({"tag": "a"}) == ["u2"]


async def test_plain_delete_tells_plugins_without_erased(api, recorder, run_jobs):
    await api.upsert({"userId": "u1"})
    assert (await api.delete("u1")).status_code == 204
    await run_jobs()
    assert recorder.for_user("u1")[-1]["deleted"] is True
    assert recorder.for_user("u1")[-1]["erased"] is False


# --- hub_customer_changed -------------------------------------------------------------------


async def test_customer_changed_hook_names_what_changed(api, recorder, run_jobs, typed_fields):
    await api.upsert({"userId": "u1", "fields": {"age": 3}, "tags": ["a"]})
    await run_jobs()
    [(customer, created)] = recorder.calls
    assert customer["userId"] == "u1" and customer["environmentId"] == "acme"
    assert customer["fields"] == {"age": 3}
    assert created == {"created": True, "deleted": False, "erased": False, "fields": ["age"],
                       "tags": True, "preferences": True, "isTestUser": True}
    recorder.calls.clear()
    await api.upsert({"userId": "u1", "fields": {"age": 4, "vip": True}, "tags": ["a"],
                      "preferences": {"timezone": "UTC"}})
    await run_jobs()
    [(customer, updated)] = recorder.calls
    assert customer["fields"] == {"age": 4, "vip": True}
    assert updated == {"created": False, "deleted": False, "erased": False,
                       "fields": ["age", "vip"], "tags": False, "preferences": True,
                       "isTestUser": False}


async def test_an_upsert_that_changes_nothing_does_not_announce_or_touch(api, recorder, run_jobs):
    await api.upsert({"userId": "u1", "tags": ["a"], "preferences": {"timezone": "UTC"}})
    await run_jobs()
    before = await api.profile("u1")
    recorder.calls.clear()
    body = await api.upsert({"userId": "u1", "tags": ["a"], "preferences": {"timezone": "UTC"}})
    assert body["results"][0]["status"] == "updated"
    await run_jobs()
    assert recorder.calls == []
    assert (await api.profile("u1"))["updatedAt"] == before["updatedAt"]


# --- field definitions ----------------------------------------------------------------------


async def test_define_field_then_again_is_idempotent_and_another_type_is_409(api):
    created = await api.define("score", "number", expect=201)
    assert created.json() == {"name": "score", "type": "number", "label": "score",
                              "description": "", "builtin": False}
    again = await api.define("score", "number", expect=200)
    assert again.json() == created.json()
    assert_problem(await api.define("score", "text", expect=409), 409, "type")
    listing = (await api.client.get(f"/v1/{api.env.id}/fields", headers=api.headers)).json()
    names = [f["name"] for f in listing["fields"]]
    assert names == ["name", "email", "phone", "city", "country", "region", "score"]
    assert [f["builtin"] for f in listing["fields"]] == [True] * 6 + [False]


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "1st", "type": "text"}, "name"),
    ({"name": "has space", "type": "text"}, "name"),
    ({"name": "trailing\n", "type": "text"}, "name"),
    ({"name": "x" * 65, "type": "text"}, "name"),
    ({"name": "email", "type": "text"}, "name"),
    ({"name": "ok", "type": "money"}, "type"),
    ({"name": "ok", "type": "text", "label": "x" * 201}, "label"),
    ({"name": "ok", "type": "text", "description": "a\x00b"}, "description"),
    ({"name": 5, "type": "text"}, "name"),
    ({"type": "text"}, "name"),
    ({"name": "ok", "type": "text", "unknown": 1}, "unknown"),
])
async def test_bad_field_definitions_are_422(api, body, field):
    response = await api.client.post(f"/v1/{api.env.id}/fields", json=body, headers=api.headers)
    assert_problem(response, 422, field)


async def test_defining_the_same_field_concurrently_creates_it_once(api):
    responses = await asyncio.gather(*(
        api.client.post(f"/v1/{api.env.id}/fields", json={"name": "score", "type": "number"},
                        headers=api.headers) for _ in range(4)))
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 201]


# --- environments and concurrency -----------------------------------------------------------


async def test_environments_are_isolated(api, hub, hub_client, typed_fields):
    other = await make_environment(hub, "other")
    await api.upsert({"userId": "shared", "fields": {"age": 5}, "tags": ["a"]})
    headers = other.headers()
    response = await hub_client.get("/v1/other/users/shared", headers=headers)
    assert_problem(response, 404)
    listing = await hub_client.get("/v1/other/users", params={"tag": "a"}, headers=headers)
    assert listing.json()["users"] == []
    # "age" is defined in acme only.
    body = (await hub_client.put("/v1/other/users", headers=headers, json={
        "users": [{"userId": "shared", "fields": {"age": 1}}]})).json()
    assert body["results"][0]["errors"][0]["field"] == "users[0].fields.age"
    assert_problem(await hub_client.delete("/v1/other/users/shared", headers=headers), 404)
    assert_problem(await hub_client.get("/v1/acme/users/shared", headers=headers), 403)
    await hub_client.put("/v1/other/users", headers=headers, json={
        "users": [{"userId": "shared", "tags": ["b"]}]})
    assert (await api.profile("shared"))["tags"] == ["a"]


async def test_concurrent_upserts_creating_the_same_user_both_succeed(api, hub, typed_fields):
    responses = await asyncio.gather(
        api.client.put(f"/v1/{api.env.id}/users", headers=api.headers,
                       json={"users": [{"userId": "new", "fields": {"age": 1}, "addTags": ["x"]}]}),
        api.client.put(f"/v1/{api.env.id}/users", headers=api.headers,
                       json={"users": [{"userId": "new", "fields": {"vip": True}, "addTags": ["y"]}]}),
    )
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    statuses = sorted(r.json()["results"][0]["status"] for r in responses)
    assert statuses == ["created", "updated"]
    profile = await api.profile("new")
    assert profile["fields"] == {"age": 1, "vip": True}
    assert sorted(profile["tags"]) == ["x", "y"]
    async with hub.db.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(tables.customer_tag))).scalar()
    assert count == 2

"""Every 4xx is application/problem+json naming the field and the reason; bad input is never a 500."""

from typing import Annotated, Any

import msgspec
import pytest
from litestar import get, post
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter

from hub.api.problems import (
    PROBLEM_JSON,
    FieldError,
    Problem,
    humanize,
    msgspec_field_error,
)
from hub.hookspecs import hookimpl

MAX_BODY = 1000
MAX_BATCH = 3


# --- test-only routes: a crash, and a handler with nested Structs and typed parameters ------


class Inner(msgspec.Struct, forbid_unknown_fields=True):
    size: Annotated[int, msgspec.Meta(ge=1)]


class Item(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    inner: Inner


class Outer(msgspec.Struct, forbid_unknown_fields=True):
    items: list[Item]


@get("/-/test/boom", opt={"auth": "public"}, include_in_schema=False)
async def boom() -> None:
    raise RuntimeError("password=hunter2 leaked from the database driver")


@get("/-/test/unavailable", opt={"auth": "public"}, include_in_schema=False)
async def unavailable() -> None:
    raise Problem(503, "the database is not answering")


@post("/-/test/nested/{n:int}", opt={"auth": "public"}, include_in_schema=False, status_code=200)
async def nested(data: JSONBody[Outer], n: FromPath[int],
                 need: Annotated[int, QueryParameter(name="needIt")],
                 thing: Annotated[int, HeaderParameter(name="X-Thing")]) -> dict[str, Any]:
    return {"n": n, "need": need, "thing": thing, "items": len(data.items)}


class TestRoutes:
    @hookimpl
    def hub_register_routes(self, register: Any) -> None:
        for handler in (boom, unavailable, nested):
            register(handler)


@pytest.fixture
def hub_plugins() -> list[Any]:
    return [TestRoutes()]


@pytest.fixture
def hub_settings(hub_settings):
    return msgspec.structs.replace(hub_settings, max_body_bytes=MAX_BODY, max_batch_size=MAX_BATCH)


# --- helpers --------------------------------------------------------------------------------


def problem(response, status: int) -> dict[str, Any]:
    """The problem document of ``response``, checked for the RFC 9457 members and our own."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:hub:problem:")
    assert body["title"] and body["detail"]
    assert body["requestId"] == response.headers["x-request-id"]
    if 400 <= status < 500:
        assert body["errors"], body
        for error in body["errors"]:
            assert set(error) == {"field", "reason"}, error
            assert error["field"] and error["reason"]
    return body


def only_error(body: dict[str, Any]) -> tuple[str, str]:
    assert len(body["errors"]) == 1, body["errors"]
    error = body["errors"][0]
    return error["field"], error["reason"]


JSON = {"content-type": "application/json"}


async def send(client, env, method: str, path: str, body: bytes | None = None,
               headers: dict[str, str] | None = None):
    return await client.request(method, f"/v1/{env.id}{path}", content=body,
                                headers={**env.headers(), **(headers or {})})


# --- query parameters -----------------------------------------------------------------------


@pytest.mark.parametrize(("query", "field", "reason"), [
    ("limit=0", "query.limit", "must be an integer >= 1"),
    ("limit=1001", "query.limit", "must be an integer <= 1000"),
    ("limit=abc", "query.limit", "must be an integer"),
    ("isTestUser=maybe", "query.isTestUser", "must be true or false"),
    ("colour=red", "query.colour", "unknown query parameter (tag, field.<name>, isTestUser, cursor, limit)"),
])
async def test_bad_query_parameter_is_422_naming_it(hub_client, hub_env, query, field, reason):
    body = problem(await send(hub_client, hub_env, "GET", f"/users?{query}"), 422)
    assert only_error(body) == (field, reason)
    assert body["detail"] == f"{field}: {reason}"
    assert body["instance"] == f"/v1/{hub_env.id}/users"


async def test_a_cursor_the_api_did_not_issue_is_422(hub_client, hub_env):
    body = problem(await send(hub_client, hub_env, "GET", "/users?cursor=garbage"), 422)
    assert only_error(body)[0] == "query.cursor"


async def test_good_query_parameters_pass(hub_client, hub_env):
    response = await send(hub_client, hub_env, "GET", "/users?limit=1&isTestUser=true")
    assert response.status_code == 200, response.text


# --- JSON bodies ----------------------------------------------------------------------------


async def test_unknown_body_field_is_rejected_naming_it(hub_client, hub_env):
    response = await send(hub_client, hub_env, "POST", "/fields",
                          b'{"name": "plan", "type": "text", "colour": "red"}', JSON)
    body = problem(response, 422)
    assert only_error(body) == ("colour", "unknown field (unknown fields are rejected)")
    response = await send(hub_client, hub_env, "PUT", "/users",
                          b'{"users": [{"userId": "u1"}], "upsert": true}', JSON)
    assert only_error(problem(response, 422)) == ("upsert", "unknown field (unknown fields are rejected)")


async def test_unknown_field_inside_a_batch_item_fails_that_item_only(hub_client, hub_env):
    """PUT /users validates items one by one (documented): the item fails, the request is a 200."""
    response = await send(hub_client, hub_env, "PUT", "/users",
                          b'{"users": [{"userId": "u1", "colour": "red"}, {"userId": "u2"}]}', JSON)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results[0]["status"] == "error"
    assert results[0]["errors"] == [{"field": "users[0].colour",
                                     "reason": "unknown field (unknown fields are rejected)"}]
    assert results[1]["status"] == "created"


async def test_missing_required_field_is_422(hub_client, hub_env):
    body = problem(await send(hub_client, hub_env, "POST", "/fields", b'{"name": "plan"}', JSON), 422)
    assert only_error(body) == ("type", "required")
    body = problem(await send(hub_client, hub_env, "PUT", "/users", b"{}", JSON), 422)
    assert only_error(body) == ("users", "required")


@pytest.mark.parametrize(("payload", "field", "reason"), [
    (b'{"name": 3, "type": "text"}', "name", "must be a string, got an integer"),
    (b'{"name": "plan", "type": null}', "type", "must be a string, got null"),
    (b'[{"name": "plan", "type": "text"}]', "body", "must be an object, got an array"),
    (b'"plan"', "body", "must be an object, got a string"),
])
async def test_wrong_type_is_422_naming_the_field(hub_client, hub_env, payload, field, reason):
    body = problem(await send(hub_client, hub_env, "POST", "/fields", payload, JSON), 422)
    assert only_error(body) == (field, reason)


async def test_wrong_type_of_the_batch_is_422(hub_client, hub_env):
    body = problem(await send(hub_client, hub_env, "PUT", "/users", b'{"users": 5}', JSON), 422)
    assert only_error(body) == ("users", "must be an array, got an integer")


async def test_route_level_validation_names_the_field(hub_client, hub_env):
    body = problem(await send(hub_client, hub_env, "POST", "/fields",
                              b'{"name": "plan", "type": "colour"}', JSON), 422)
    assert only_error(body) == ("type", "must be one of text, number, date, boolean")


async def test_nested_errors_carry_the_json_path(hub_client):
    headers = {**JSON, "X-Thing": "1"}
    response = await hub_client.post("/-/test/nested/3?needIt=1", headers=headers,
                                     content=b'{"items": [{"name": "a", "inner": {"size": 0}}]}')
    assert only_error(problem(response, 422)) == ("items[0].inner.size", "must be an integer >= 1")
    response = await hub_client.post("/-/test/nested/3?needIt=1", headers=headers,
                                     content=b'{"items": [{"name": "a", "inner": {"size": 1, "x": 2}}]}')
    assert only_error(problem(response, 422)) == ("items[0].inner.x",
                                                  "unknown field (unknown fields are rejected)")
    response = await hub_client.post("/-/test/nested/3?needIt=1", headers=headers,
                                     content=b'{"items": [{"name": "a", "inner": {}}]}')
    assert only_error(problem(response, 422)) == ("items[0].inner.size", "required")
    ok = await hub_client.post("/-/test/nested/3?needIt=1", headers=headers,
                               content=b'{"items": [{"name": "a", "inner": {"size": 1}}]}')
    assert ok.status_code == 200 and ok.json()["thing"] == 1


async def test_every_bad_parameter_is_listed(hub_client):
    response = await hub_client.post("/-/test/nested/3?needIt=x",
                                     headers={**JSON, "X-Thing": "abc"},
                                     content=b'{"items": [{"name": 1, "inner": {"size": 1}}]}')
    body = problem(response, 422)
    assert {(e["field"], e["reason"]) for e in body["errors"]} == {
        ("items[0].name", "must be a string, got an integer"),
        ("query.needIt", "must be an integer"),
        ("header.x-thing", "must be an integer"),
    }
    assert body["detail"].endswith("(and 2 more)")


async def test_missing_required_parameters_are_named(hub_client):
    payload = b'{"items": []}'
    response = await hub_client.post("/-/test/nested/3?needIt=1", headers=JSON, content=payload)
    assert only_error(problem(response, 422)) == ("header.x-thing", "required")
    response = await hub_client.post("/-/test/nested/3", headers={**JSON, "X-Thing": "1"},
                                     content=payload)
    assert only_error(problem(response, 422)) == ("query.needIt", "required")


# --- body framing: malformed, missing, too large, wrong content type -------------------------


@pytest.mark.parametrize(("payload", "reason"), [
    (b'{"name": "plan", "type": ', "malformed JSON: input data was truncated"),
    (b"{name: plan}", "malformed JSON: object keys must be strings (byte 1)"),
    (b"\xff\xfe", "malformed JSON: invalid character (byte 0)"),
    (b"nul", "malformed JSON: input data was truncated"),
])
async def test_malformed_json_is_400(hub_client, hub_env, payload, reason):
    body = problem(await send(hub_client, hub_env, "POST", "/fields", payload, JSON), 400)
    assert only_error(body) == ("body", reason)
    assert body["detail"] == f"body: {reason}"


async def test_missing_body_is_422(hub_client, hub_env):
    body = problem(await send(hub_client, hub_env, "POST", "/fields", b"", JSON), 422)
    assert only_error(body) == ("body", "required: send a JSON document")


async def test_body_over_the_limit_is_413(hub_client, hub_env):
    payload = msgspec.json.encode({"name": "x" * MAX_BODY, "type": "text"})
    body = problem(await send(hub_client, hub_env, "POST", "/fields", payload, JSON), 413)
    assert only_error(body) == ("body", f"larger than {MAX_BODY} bytes (HUB_MAX_BODY_BYTES)")


async def test_body_over_the_limit_without_content_length_is_413(hub_client, hub_env):
    async def chunks():
        for _ in range(4):
            yield b" " * (MAX_BODY // 2)

    response = await hub_client.post(f"/v1/{hub_env.id}/fields", content=chunks(),
                                     headers={**hub_env.headers(), **JSON})
    assert only_error(problem(response, 413))[0] == "body"


async def test_batch_over_the_limit_is_413(hub_client, hub_env):
    users = [{"userId": f"u{i}"} for i in range(MAX_BATCH + 1)]
    response = await send(hub_client, hub_env, "PUT", "/users",
                          msgspec.json.encode({"users": users}), JSON)
    assert only_error(problem(response, 413)) == ("users", f"at most {MAX_BATCH} items per request")


async def test_non_json_body_is_415(hub_client, hub_env):
    response = await send(hub_client, hub_env, "POST", "/fields", b"name=plan&type=text",
                          {"content-type": "application/x-www-form-urlencoded"})
    body = problem(response, 415)
    assert only_error(body) == ("header.content-type",
                                "send application/json, not application/x-www-form-urlencoded")


async def test_json_under_another_content_type_is_415(hub_app, hub_client, hub_env):
    from hub.api.auth import authorize_request

    assert hub_app.before_request is authorize_request
    response = await send(hub_client, hub_env, "POST", "/fields", b'{"name": "plan", "type": "text"}',
                          {"content-type": "text/plain"})
    assert only_error(problem(response, 415))[0] == "header.content-type"


async def test_json_suffix_media_types_and_a_missing_content_type_are_read_as_json(hub_client, hub_env):
    for i, headers in enumerate([{"content-type": "application/json; charset=utf-8"},
                                 {"content-type": "application/merge-patch+json"}, {}]):
        response = await send(hub_client, hub_env, "POST", "/fields",
                              f'{{"name": "f{i}", "type": "text"}}'.encode(), headers)
        assert response.status_code == 201, response.text


# --- routing, auth, server errors ------------------------------------------------------------


async def test_unknown_route_is_404(hub_client, hub_env):
    body = problem(await send(hub_client, hub_env, "GET", "/no-such-thing"), 404)
    assert only_error(body) == ("path", f"no route matches /v1/{hub_env.id}/no-such-thing")
    assert problem(await hub_client.get("/nowhere"), 404)["instance"] == "/nowhere"


async def test_unknown_customer_is_404(hub_client, hub_env):
    body = problem(await send(hub_client, hub_env, "GET", "/users/nobody"), 404)
    assert "nobody" in body["detail"]


async def test_wrong_method_is_405_with_allow(hub_client, hub_env):
    response = await send(hub_client, hub_env, "DELETE", "/fields")
    body = problem(response, 405)
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    field, reason = only_error(body)
    assert field == "method" and reason.startswith("DELETE is not allowed here; allowed: ")


async def test_request_id_is_echoed_even_when_no_route_matched(hub_client):
    response = await hub_client.get("/nowhere", headers={"X-Request-ID": "trace-42"})
    assert problem(response, 404)["requestId"] == "trace-42"
    response = await hub_client.get("/nowhere", headers={"X-Request-ID": "bad id with spaces"})
    assert problem(response, 404)["requestId"] != "bad id with spaces"


async def test_auth_failures_are_problems_naming_the_header(hub, hub_client, hub_env):
    from hub.testing import make_environment

    body = problem(await hub_client.get(f"/v1/{hub_env.id}/users"), 401)
    assert body["errors"][0]["field"] == "header.authorization"
    other = await make_environment(hub, "other")
    body = problem(await hub_client.get(f"/v1/{hub_env.id}/users", headers=other.headers()), 403)
    assert body["errors"]
    token = await hub_client.post(f"/v1/{hub_env.id}/oauth/token", data={"grant_type": "password"})
    body = problem(token, 400)
    assert body["error"] == "unsupported_grant_type"


async def test_a_crash_is_a_500_problem_that_leaks_nothing(hub_client):
    response = await hub_client.get("/-/test/boom", headers={"X-Request-ID": "crash-1"})
    body = problem(response, 500)
    assert body["requestId"] == "crash-1"
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    assert body["detail"] == "an internal error occurred; it has been logged"
    assert "errors" not in body


async def test_a_problem_raised_with_5xx_keeps_its_status(hub_client):
    body = problem(await hub_client.get("/-/test/unavailable"), 503)
    assert body["detail"] == "the database is not answering"


async def test_oauth_token_errors_keep_the_oauth_member(hub_client, hub_env):
    response = await hub_client.post(f"/v1/{hub_env.id}/oauth/token", content=b"{",
                                     headers=JSON)
    body = problem(response, 400)
    assert body["error"] == "invalid_request"


# --- the message translation itself --------------------------------------------------------


@pytest.mark.parametrize(("message", "from_text", "expected"), [
    ("Expected `int`, got `str`", False, "must be an integer, got a string"),
    ("Expected `int`, got `str`", True, "must be an integer"),
    ("Expected `bool | null`, got `str`", True, "must be true or false"),
    ("Expected `str | null`, got `int`", False, "must be a string or null, got an integer"),
    ("Expected `int` >= 1", True, "must be an integer >= 1"),
    ("Expected `str` of length <= 64", False, "must be a string of length <= 64"),
    ("Invalid enum value 'pink'", False, "not an allowed value: 'pink'"),
    ("Invalid RFC3339 encoded datetime", False, "must be an RFC 3339 date-time"),
    ("JSON is malformed", False, "JSON is malformed"),
])
def test_humanize(message, from_text, expected):
    assert humanize(message, from_text=from_text) == expected


def test_msgspec_errors_become_field_errors():
    class Prefs(msgspec.Struct, forbid_unknown_fields=True):
        timezone: str

    class User(msgspec.Struct, forbid_unknown_fields=True):
        userId: str
        preferences: Prefs | None = None

    def error(raw: bytes, prefix: str = "") -> FieldError:
        with pytest.raises((msgspec.ValidationError, msgspec.DecodeError)) as info:
            msgspec.json.decode(raw, type=User)
        return msgspec_field_error(info.value, prefix)

    assert error(b'{"userId": 1}', "users[3]") == FieldError("users[3].userId",
                                                             "must be a string, got an integer")
    assert error(b'{"userId": "a", "preferences": {}}', "users[3]") == FieldError(
        "users[3].preferences.timezone", "required")
    assert error(b'{"userId": "a", "x": 1}') == FieldError(
        "x", "unknown field (unknown fields are rejected)")
    assert error(b"{}") == FieldError("userId", "required")
    assert error(b"[]") == FieldError("body", "must be an object, got an array")
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.json.decode(b'[{"userId": 1}]', type=list[User])
    assert msgspec_field_error(info.value) == FieldError("body[0].userId", "must be a string, got an integer")
    assert error(b"{").reason.startswith("malformed JSON: ")

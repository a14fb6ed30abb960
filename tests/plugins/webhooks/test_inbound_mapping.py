"""The payload mapping on its own: paths (JSON Pointer and $-paths), specs, errors that name paths."""

import pytest

from hub_plugins.webhooks.mapping import WILD, Miss, apply_mapping, parse_mapping, parse_path, render, resolve

DOC = {"a": {"b": [{"id": "x"}, {"id": 7}], "c/d": {"~e": 1}, "with.dot": True}, "list": [1, 2]}


@pytest.mark.parametrize(
    "text,steps",
    [
        ("", ()),
        ("/a/b/0/id", ("a", "b", "0", "id")),
        ("/a/c~1d/~0e", ("a", "c/d", "~e")),
        ("$", ()),
        ("$.a.b[1].id", ("a", "b", 1, "id")),
        ("$.a.b[*].id", ("a", "b", WILD, "id")),
        ('$.a["with.dot"]', ("a", "with.dot")),
        ("$['a']['c/d']", ("a", "c/d")),
    ],
)
def test_paths_parse(text, steps):
    assert parse_path(text).steps == steps


@pytest.mark.parametrize(
    "text,reason",
    [
        ("a.b", "JSON Pointer"),
        ("/a/~2", "escape"),
        ("$.a[", "unterminated"),
        ("$.a[x]", "not an index"),
        ("$.a..b", "expected a name"),
        ("$a", "unexpected"),
        (5, "must be a path"),
        ("$" + ".a" * 40, "steps"),
    ],
)
def test_bad_paths_say_why(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_path(text)


def test_resolve_follows_pointers_and_paths_to_the_same_values():
    assert resolve(parse_path("/a/b/1/id"), DOC) == [("a.b[1].id", 7)]
    assert resolve(parse_path("$.a.b[1].id"), DOC) == [("a.b[1].id", 7)]
    assert resolve(parse_path("/a/c~1d/~0e"), DOC) == [('a["c/d"]["~e"]', 1)]
    assert resolve(parse_path("$.a.b[*].id"), DOC) == [("a.b[0].id", "x"), ("a.b[1].id", 7)]
    assert resolve(parse_path(""), DOC) == [("body", DOC)]


@pytest.mark.parametrize(
    "path,where,reason",
    [
        ("$.a.missing", "a.missing", "not found"),
        ("$.a.b[5]", "a.b[5]", "the array has 2 items"),
        ("$.list.x", "list", "is an array"),
        ("$.a.b[0].id.deeper", "a.b[0].id", "is a string"),
        ("$.a[0]", "a", "not an array"),
        ("$.a[*]", "a", "[*] cannot apply"),
        ("$.a.b[*].name", "a.b[0].name", "not found"),
    ],
)
def test_a_miss_names_where_and_why(path, where, reason):
    with pytest.raises(Miss) as caught:
        resolve(parse_path(path), DOC)
    assert caught.value.where == where and reason in caught.value.reason


def test_render_quotes_keys_that_are_not_names():
    assert render(["a", 0, "b c", "d"]) == 'a[0]["b c"].d'
    assert render([]) == "body"


def test_mapping_values_defaults_optional_and_constants():
    mapping, issues = parse_mapping(
        {
            "userId": "/user/id",
            "idempotencyKey": "$.event",
            "variables": {
                "a": "$.x",
                "b": {"path": "$.missing", "default": 3},
                "c": {"path": "$.missing", "optional": True},
                "d": {"const": [1]},
            },
            "metadata": {"m": "$.x"},
            "notificationDetail": {"n": {"const": "hi"}},
        }
    )
    assert issues == [] and mapping is not None
    mapped, issues = apply_mapping(mapping, {"user": {"id": 42}, "event": 9, "x": "v"}, max_users=10)
    assert issues == []
    assert mapped.user_ids == ["42"] and mapped.idempotency_key == "9"
    assert mapped.values == {
        "variables": {"a": "v", "b": 3, "d": [1]},
        "metadata": {"m": "v"},
        "notificationDetail": {"n": "hi"},
    }
    assert mapped.sources["variables.a"] == "x" and mapped.sources["userId"] == "user.id"


def test_every_missing_value_is_reported_at_once():
    mapping, _ = parse_mapping({"userId": "$.u", "variables": {"a": "$.a", "b": "$.b.c"}})
    _, issues = apply_mapping(mapping, {"b": 1}, max_users=10)
    assert [(i.field, "mapped to" in i.reason) for i in issues] == [("u", True), ("a", True), ("b", True)]


def test_the_header_key_is_used_when_the_mapping_names_none():
    mapping, _ = parse_mapping({"userId": "$.u"})
    mapped, _ = apply_mapping(mapping, {"u": "ana"}, max_users=1, header_key="evt-1")
    assert mapped.idempotency_key == "evt-1"
    mapping, _ = parse_mapping({"userId": "$.u", "idempotencyKey": "$.id"})
    _, issues = apply_mapping(mapping, {"u": "ana", "id": {"x": 1}}, max_users=1, header_key="evt-1")
    assert issues[0].field == "id" and "an object" in issues[0].reason


def test_user_ids_accept_an_array_value_or_a_wildcard_and_are_capped():
    mapping, _ = parse_mapping({"userIds": "$.ids"})
    mapped, issues = apply_mapping(mapping, {"ids": ["a", "b", "a"]}, max_users=5)
    assert mapped.user_ids == ["a", "b"] and issues == []
    _, issues = apply_mapping(mapping, {"ids": ["a", "b", "c"]}, max_users=2)
    assert issues[0].field == "ids" and "at most 2" in issues[0].reason
    _, issues = apply_mapping(mapping, {"ids": []}, max_users=2)
    assert "no user ids" in issues[0].reason
    _, issues = apply_mapping(mapping, {"ids": ["ok", ""]}, max_users=5)
    assert issues[0].field == "ids[1]"


@pytest.mark.parametrize(
    "raw,field",
    [
        ([], "mapping"),
        ({"userId": "$.u", "userIds": "$.v"}, "mapping"),
        ({"userId": "$.u", "variables": []}, "mapping.variables"),
        ({"userId": "$.u", "variables": {"a": {"path": "$.a", "const": 1}}}, "mapping.variables.a"),
        (
            {"userId": "$.u", "variables": {"a": {"path": "$.a", "default": 1, "optional": True}}},
            "mapping.variables.a",
        ),
        (
            {"userId": "$.u", "variables": {"a": {"path": "$.a", "optional": "yes"}}},
            "mapping.variables.a.optional",
        ),
        ({"userId": "$.u", "variables": {"a": {"pth": "$.a"}}}, "mapping.variables.a.pth"),
        ({"userId": "$.u", "variables": {"a": {}}}, "mapping.variables.a.path"),
        ({"userId": "$.u", "metadata": {"": "$.a"}}, "mapping.metadata."),
    ],
)
def test_bad_mappings_name_the_field(raw, field):
    mapping, issues = parse_mapping(raw)
    assert mapping is None and field in [i.field for i in issues], issues


def test_no_mapping_is_none():
    assert parse_mapping(None) == (None, []) and parse_mapping({}) == (None, [])

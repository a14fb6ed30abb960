"""The pure rules of customer profiles (hub/core/customers.py): no database, no app."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.core import customers as core
from hub.core.customers import FieldIssue

DEFINITIONS = {"age": "number", "vip": "boolean", "plan": "text", "birthday": "date"}

tags_st = st.lists(st.from_regex(r"[a-z][a-z0-9 _-]{0,10}", fullmatch=True), max_size=8, unique=True)
values_st = st.one_of(st.none(), st.integers(-1000, 1000), st.text(max_size=5), st.booleans())
field_changes_st = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), values_st, max_size=4)


# --- user ids and definitions ---------------------------------------------------------------


@pytest.mark.parametrize("user_id", ["u1", "ada@example.com", "a+b", "with space", "x" * 255, "✓"])
def test_valid_user_ids(user_id):
    assert core.check_user_id(user_id) == []


@pytest.mark.parametrize("user_id", [None, 1, "", "  ", "x" * 256, "a\nb", "a\x00b", "\x7f"])
def test_invalid_user_ids(user_id):
    [issue] = core.check_user_id(user_id, "path")
    assert issue.field == "path"


def test_field_definition_checks_name_type_label_and_description():
    assert core.check_field_definition("score", "number") == []
    assert core.check_field_definition("a" * 64, "date", "Label", "About") == []
    fields = lambda *args: [i.field for i in core.check_field_definition(*args)]  # noqa: E731
    assert fields("score\n", "text") == ["name"]
    assert fields("_x", "text") == ["name"]
    assert fields("a" * 65, "text") == ["name"]
    assert fields("email", "text") == ["name"]
    assert fields(None, "nope") == ["name", "type"]
    assert fields("ok", "text", "l" * 201, "d\x00") == ["label", "description"]


# --- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("type_", "value", "stored"), [
    ("text", "hello", "hello"),
    ("text", "", ""),
    ("number", 3, 3),
    ("number", -2.5, -2.5),
    ("number", 2**63 - 1, 2**63 - 1),
    ("boolean", False, False),
    ("date", "2026-01-31", "2026-01-31"),
    ("date", "2026-01-31T10:00:00Z", "2026-01-31T10:00:00Z"),
    ("date", "2026-01-31T10:00:00+02:00", "2026-01-31T08:00:00Z"),
    ("date", "2026-01-31T10:00:00.250-01:30", "2026-01-31T11:30:00.250000Z"),
])
def test_normalize_value_gives_the_stored_form(type_, value, stored):
    assert core.normalize_value(type_, value) == stored


@pytest.mark.parametrize(("type_", "value"), [
    ("text", 1), ("text", "x" * 2001), ("text", "a\x00"),
    ("number", "1"), ("number", True), ("number", float("nan")), ("number", float("inf")),
    ("number", 2**63), ("boolean", 0), ("boolean", "true"),
    ("date", "2026-13-01"), ("date", "31/01/2026"), ("date", "2026-01-31T10:00:00"), ("date", 1),
    ("colour", "red"),
])
def test_normalize_value_rejects_the_wrong_type(type_, value):
    with pytest.raises(ValueError):
        core.normalize_value(type_, value)


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)),
       st.integers(-14 * 60, 14 * 60))
def test_one_instant_has_one_stored_date_time_whatever_the_offset(moment, offset_minutes):
    aware = moment.replace(tzinfo=UTC)
    local = aware.astimezone(timezone(timedelta(minutes=offset_minutes)))
    stored = core.normalize_value("date", local.isoformat())
    assert stored == core.normalize_value("date", aware.isoformat())
    assert core.normalize_value("date", stored) == stored


@pytest.mark.parametrize(("type_", "raw", "value"), [
    ("number", "30", 30.0), ("number", "-1.5", -1.5), ("boolean", "true", True),
    ("boolean", "false", False), ("text", "30", "30"), ("date", "2026-01-31T10:00:00+01:00",
                                                         "2026-01-31T09:00:00Z"),
])
def test_parse_filter_value_reads_query_text_as_the_field_type(type_, raw, value):
    assert core.parse_filter_value(type_, raw) == value


@pytest.mark.parametrize(("type_", "raw"), [
    ("number", "abc"), ("number", "nan"), ("number", "inf"), ("boolean", "1"), ("boolean", "True"),
    ("date", "soon"), ("text", "a\x00"),
])
def test_parse_filter_value_rejects_what_the_type_cannot_hold(type_, raw):
    with pytest.raises(ValueError):
        core.parse_filter_value(type_, raw)


def test_check_fields_reports_each_bad_field_and_keeps_nulls():
    clean, issues = core.check_fields(
        {"name": "Ada", "age": "x", "vip": None, "shoe": 1, "birthday": "2026-01-31"}, DEFINITIONS)
    assert clean == {"name": "Ada", "vip": None, "birthday": "2026-01-31"}
    assert [i.field for i in issues] == ["fields.age", "fields.shoe"]
    assert "field type number" in issues[0].reason
    assert core.check_fields([], DEFINITIONS) == ({}, [FieldIssue("fields", "must be an object")])


# --- tags -----------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["vip", "a b", "x" * 100, "émoji ✓", "trailing "])
def test_valid_tags(tag):
    assert core.check_tag(tag)


@pytest.mark.parametrize("tag", ["", " lead", "a,b", "x" * 101, "new\n", "a\tb", "nul\x00", 5, None])
def test_invalid_tags(tag):
    assert not core.check_tag(tag)


def test_check_tags_drops_duplicates_and_limits_the_count():
    assert core.check_tags(["a", "b", "a"]) == (["a", "b"], [])
    _, issues = core.check_tags([f"t{i}" for i in range(101)], "addTags")
    assert issues == [FieldIssue("addTags", "at most 100 tags")]
    _, issues = core.check_tags(["ok", ","], "removeTags")
    assert [i.field for i in issues] == ["removeTags[1]"]


@given(tags_st, st.one_of(st.none(), tags_st), tags_st, tags_st)
def test_merge_tags(current, replace, add, remove):
    merged = core.merge_tags(current, replace, add, remove)
    assert len(merged) == len(set(merged))
    assert not set(merged) & set(remove)
    assert set(add) - set(remove) <= set(merged)
    assert set(merged) <= set(replace if replace is not None else current) | set(add)


# --- preferences ----------------------------------------------------------------------------


def test_timezones_are_iana_names():
    assert core.valid_timezone("Europe/London")
    assert core.valid_timezone("UTC")
    assert not core.valid_timezone("Mars/Olympus")
    assert not core.valid_timezone("localtime")
    assert not core.valid_timezone("europe/london")


def test_check_preferences_accepts_a_partial_object_and_nulls():
    clean, issues = core.check_preferences({
        "timezone": "Asia/Tokyo", "notificationsEnabled": None,
        "notificationWindows": {"monday": [{"from": "13:00", "to": "14:00"},
                                           {"from": "00:00", "to": "24:00"}], "sunday": None}})
    assert issues == []
    assert clean == {"timezone": "Asia/Tokyo", "notificationsEnabled": None,
                     "notificationWindows": {"monday": [{"from": "00:00", "to": "24:00"},
                                                        {"from": "13:00", "to": "14:00"}],
                                             "sunday": None}}


@pytest.mark.parametrize(("windows", "path"), [
    ({"monday": [{"from": "10:00", "to": "10:00"}]}, "w.monday[0]"),
    ({"monday": [{"from": "10:00\n", "to": "11:00"}]}, "w.monday[0]"),
    ({"monday": [{"from": "24:00", "to": "24:00"}]}, "w.monday[0]"),
    ({"monday": [{"from": 9, "to": "11:00"}]}, "w.monday[0]"),
    ({"monday": ["09:00-10:00"]}, "w.monday[0]"),
    ({"monday": "all day"}, "w.monday"),
    ({"Monday": []}, "w.Monday"),
])
def test_bad_windows_are_named_by_their_path(windows, path):
    _, issues = core._check_windows(windows, "w")
    assert [i.field for i in issues] == [path]


def test_merge_preferences_resets_on_null_and_merges_windows_by_weekday():
    current = core.merge_preferences({}, {"timezone": "UTC", "notificationsEnabled": False,
                                          "notificationWindows": {"monday": [], "friday": []}})
    merged = core.merge_preferences(current, {
        "notificationsEnabled": None,
        "notificationWindows": {"friday": None, "tuesday": [{"from": "09:00", "to": "10:00"}]}})
    assert merged == {"timezone": "UTC", "notificationsEnabled": True,
                      "notificationWindows": {"monday": [],
                                              "tuesday": [{"from": "09:00", "to": "10:00"}]}}
    assert list(merged["notificationWindows"]) == ["monday", "tuesday"]
    assert core.merge_preferences(merged, {"notificationWindows": None})["notificationWindows"] == {}
    assert core.merge_preferences({}, {}) == core.DEFAULT_PREFERENCES


# --- fields and whole upserts ---------------------------------------------------------------


@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers()), field_changes_st)
def test_merge_fields_sets_values_and_null_removes(current, changes):
    merged = core.merge_fields(current, changes)
    assert None not in merged.values()
    for name, value in changes.items():
        assert merged.get(name) == value
    for name in set(current) - set(changes):
        assert merged[name] == current[name]


def test_apply_upsert_to_a_new_customer():
    profile, changes = core.apply_upsert(None, {"fields": {"name": "Ada", "city": None},
                                                "addTags": ["b"], "isTestUser": True})
    assert profile == core.Profile({"name": "Ada"}, ["b"], core.DEFAULT_PREFERENCES, True)
    assert changes == {"created": True, "deleted": False, "erased": False, "fields": ["name"],
                       "tags": True, "preferences": True, "isTestUser": True}


def test_apply_upsert_names_what_changed():
    current = core.Profile({"a": 1, "b": 2}, ["x"], dict(core.DEFAULT_PREFERENCES), False)
    profile, changes = core.apply_upsert(current, {"fields": {"a": 1, "b": None, "c": 3},
                                                   "tags": ["x"]})
    assert profile.fields == {"a": 1, "c": 3}
    assert changes["fields"] == ["b", "c"]
    assert changes["tags"] is False and changes["preferences"] is False
    assert core.has_changes(changes)
    _, unchanged = core.apply_upsert(current, {"fields": {"a": 1}, "preferences": {"timezone": None}})
    assert not core.has_changes(unchanged)


item_st = st.fixed_dictionaries({}, optional={
    "fields": field_changes_st,
    "tags": tags_st,
    "addTags": tags_st,
    "removeTags": tags_st,
    "isTestUser": st.booleans(),
    "preferences": st.fixed_dictionaries({}, optional={
        "timezone": st.sampled_from([None, "UTC", "Europe/Paris"]),
        "notificationsEnabled": st.one_of(st.none(), st.booleans()),
    }),
})


@given(st.one_of(st.none(), st.builds(core.Profile, st.dictionaries(st.sampled_from("abc"),
                                                                     st.integers()),
                                      tags_st, st.just(dict(core.DEFAULT_PREFERENCES)),
                                      st.booleans())), item_st)
def test_applying_the_same_upsert_twice_changes_nothing_the_second_time(current, item):
    once, first = core.apply_upsert(current, item)
    twice, second = core.apply_upsert(once, item)
    assert twice == once
    assert not core.has_changes(second)
    if current is None:
        assert first["created"] is True

"""Durations and placeholders (hub/core/templates.py)."""

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.core.templates import (
    format_duration,
    lookup,
    malformed_placeholders,
    parse_duration,
    placeholders,
    render,
    render_text,
    strings,
    to_text,
)

CONTEXT = {
    "variables": {"amount": 12.5, "merchant": "ACME", "count": 3, "whole": 40.0, "flag": True,
                  "nothing": None, "limits": {"daily": 500}, "items": ["a", "b"]},
    "customer": {"userId": "u1", "fields": {"name": "Ada"}, "tags": ["vip"]},
    "steps": {"ask": {"values": {"pin": "1234"}, "event": "card-completed"}},
    "invocation": {"id": "inv-1", "metadata": {"campaign": "spring"}, "source": "api"},
}


# --- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("PT15M", timedelta(minutes=15)),
    ("P1D", timedelta(days=1)),
    ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
    ("PT0.5S", timedelta(seconds=0.5)),
    ("PT0,25S", timedelta(seconds=0.25)),
    ("P2W", timedelta(weeks=2)),
    ("PT36H", timedelta(hours=36)),
    ("PT0S", timedelta(0)),
    ("pt10s", timedelta(seconds=10)),
    ("P1.5D", timedelta(hours=36)),
    ("PT0.000001S", timedelta(microseconds=1)),
])
def test_parse_duration_reads_iso_8601_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "P1DT", "15M", "PT15", "-PT5M", "PT5M ago", "PT1H1H",
                                  "P1S", "1 day"])
def test_parse_duration_refuses_what_is_not_a_duration(text):
    with pytest.raises(ValueError, match="duration|no amount"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["P1Y", "P2M", "P1Y2M3D", "P1MT5M"])
def test_parse_duration_refuses_years_and_months_with_a_reason(text):
    with pytest.raises(ValueError, match="years and months"):
        parse_duration(text)


def test_parse_duration_refuses_non_strings_and_absurd_lengths():
    with pytest.raises(ValueError):
        parse_duration(15)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="too long"):
        parse_duration("P999999999999D")


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "PT0S"), (1, "PT1S"), (0.5, "PT0.5S"), (900, "PT15M"), (5400, "PT1H30M"), (86400, "P1D"),
    (95400, "P1DT2H30M"), (86400.25, "P1DT0.25S"), (timedelta(days=3, seconds=1), "P3DT1S"),
])
def test_format_duration_writes_the_shortest_form(seconds, text):
    assert format_duration(seconds) == text


def test_format_duration_refuses_negative_durations():
    with pytest.raises(ValueError):
        format_duration(-1)


@given(st.integers(min_value=0, max_value=10**15))
def test_durations_round_trip_at_microsecond_precision(micros):
    seconds = micros / 1_000_000
    assert parse_duration(format_duration(seconds)).total_seconds() == timedelta(
        microseconds=micros).total_seconds()


# --- rendering -----------------------------------------------------------------------------------


def test_render_replaces_placeholders_inside_text():
    text = "Did you pay {{variables.amount}} at {{ variables.merchant }}, {{customer.fields.name}}?"
    assert render(text, CONTEXT) == "Did you pay 12.5 at ACME, Ada?"


def test_a_string_that_is_one_placeholder_keeps_the_value_type():
    assert render("{{variables.amount}}", CONTEXT) == 12.5
    assert render("{{ variables.limits }}", CONTEXT) == {"daily": 500}
    assert render("{{variables.flag}}", CONTEXT) is True
    assert render("{{variables.items}}", CONTEXT) == ["a", "b"]


def test_a_missing_value_is_empty_in_text_and_none_alone():
    assert render("x{{variables.missing}}y", CONTEXT) == "xy"
    assert render("{{variables.missing}}", CONTEXT) is None
    assert render("{{variables.nothing}}", CONTEXT) is None
    assert render("{{steps.other.values.pin}}", CONTEXT) is None


def test_render_walks_objects_and_lists_and_keeps_keys():
    body = {"amount": "{{variables.amount}}", "{{variables.merchant}}": ["{{customer.userId}}", 3, None],
            "nested": {"text": "pin {{steps.ask.values.pin}}"}}
    assert render(body, CONTEXT) == {"amount": 12.5, "{{variables.merchant}}": ["u1", 3, None],
                                     "nested": {"text": "pin 1234"}}


def test_values_read_naturally_inside_text():
    assert render_text("{{variables.flag}} {{variables.whole}} {{variables.count}} {{variables.limits}}",
                       CONTEXT) == 'true 40 3 {"daily":500}'
    assert render_text("{{variables.items.1}} {{customer.tags.0}} {{customer.tags.9}}", CONTEXT) == "b vip "


def test_render_text_always_gives_text():
    assert render_text("{{variables.amount}}", CONTEXT) == "12.5"
    assert render_text("{{variables.missing}}", CONTEXT) == ""


def test_text_that_is_not_a_placeholder_is_left_alone():
    for text in ["{{ not a path }}", "{single}", "{{}}", "{{variables.amount", "plain"]:
        assert render(text, CONTEXT) == text


def test_lookup_follows_mappings_and_list_indexes_only():
    assert lookup(CONTEXT, "variables.items.0") == "a"
    assert lookup(CONTEXT, "variables.items.x") is None
    assert lookup(CONTEXT, "variables.merchant.0") is None
    assert lookup(CONTEXT, "variables.amount.real") is None


def test_to_text_of_odd_values():
    assert to_text(1e20) == "1e+20"
    assert to_text(float("inf")) == "inf"
    assert to_text(object()).startswith("<object")


# --- finding placeholders --------------------------------------------------------------------------


def test_placeholders_lists_every_path_once_in_order():
    value = {"a": "{{variables.amount}} and {{customer.fields.name}}",
             "b": ["{{steps.ask.values.pin}}", "{{variables.amount}}"], "c": 3}
    assert placeholders(value) == ["variables.amount", "customer.fields.name", "steps.ask.values.pin"]


def test_malformed_placeholders_are_found():
    assert malformed_placeholders("{{ a b }} {{variables.x}} {{}} {{a..b}}") == ["{{ a b }}", "{{}}",
                                                                              "{{a..b}}"]
    assert malformed_placeholders("no braces") == []


def test_strings_names_each_string_by_path():
    assert list(strings({"a": ["x", {"b": "y"}], "c": 1})) == [("a[0]", "x"), ("a[1].b", "y")]
    assert list(strings("x", "root")) == [("root", "x")]


# --- properties -------------------------------------------------------------------------------------

segment = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True)
paths = st.lists(segment, min_size=1, max_size=4).map(".".join)
plain_text = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=20)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), plain_text)
json_values = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(plain_text, inner, max_size=3)), max_leaves=10)


@given(st.lists(st.tuples(plain_text, paths), min_size=1, max_size=5), plain_text)
def test_placeholders_finds_exactly_the_paths_written(pieces, tail):
    text = "".join(f"{before}{{{{{path}}}}}" for before, path in pieces) + tail
    assert placeholders(text) == list(dict.fromkeys(path for _, path in pieces))


@given(json_values)
def test_rendering_a_value_without_placeholders_changes_nothing(value):
    assert render(value, CONTEXT) == value
    assert placeholders(value) == []


@given(paths, json_values)
def test_a_lone_placeholder_renders_to_the_value_it_names(path, value):
    context: dict = {}
    node = context
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    assert render("{{" + path + "}}", context) == value
    assert render({"k": ["{{" + path + "}}"]}, context) == {"k": [value]}
    assert render_text("<{{" + path + "}}>", context) == f"<{to_text(value)}>"

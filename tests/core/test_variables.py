"""Flow variables: definitions and resolving the values a trigger gives (hub/core/variables.py)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.core.customers import FieldIssue
from hub.core.variables import (
    VARIABLE_TYPES,
    VariableDef,
    check_value,
    coerce_string,
    parse_variable,
    resolve_variables,
    variable_to_json,
)

DEFINITIONS = [
    VariableDef(name="amount", type="number", required=True),
    VariableDef(name="merchant", type="string", default="a shop"),
    VariableDef(name="urgent", type="boolean", default=False),
    VariableDef(name="paidAt", type="date"),
    VariableDef(name="details", type="object"),
    VariableDef(name="apiUrl", type="string", default="https://bank.example", overridable=False),
]


def fields(issues: list[FieldIssue]) -> list[str]:
    return [issue.field for issue in issues]


def test_types_are_the_documented_five():
    assert VARIABLE_TYPES == ("string", "number", "boolean", "date", "object")


def test_resolve_applies_defaults_and_keeps_given_values():
    values, issues = resolve_variables(DEFINITIONS, {"amount": 12.5, "merchant": "ACME"})
    assert issues == []
    assert values == {"amount": 12.5, "merchant": "ACME", "urgent": False, "paidAt": None,
                      "details": None, "apiUrl": "https://bank.example"}


def test_a_required_variable_without_default_must_be_given():
    values, issues = resolve_variables(DEFINITIONS, {})
    assert issues == [FieldIssue("variables.amount", "is required (number)")]
    _, issues = resolve_variables(DEFINITIONS, {"amount": None})
    assert fields(issues) == ["variables.amount"]


def test_a_required_variable_with_a_default_takes_the_default():
    values, issues = resolve_variables([VariableDef(name="n", type="number", required=True, default=3)], {})
    assert (values, issues) == ({"n": 3}, [])


def test_a_variable_that_is_not_overridable_refuses_a_given_value():
    values, issues = resolve_variables(DEFINITIONS, {"amount": 1, "apiUrl": "https://evil.example"})
    assert issues == [FieldIssue("variables.apiUrl", "is not overridable")]
    assert values["apiUrl"] == "https://bank.example"


def test_unknown_names_are_refused():
    _, issues = resolve_variables(DEFINITIONS, {"amount": 1, "amuont": 2})
    assert issues == [FieldIssue("variables.amuont", "is not a variable of this flow")]


def test_values_are_type_checked_and_every_issue_is_reported():
    _, issues = resolve_variables(DEFINITIONS, {"amount": "12", "merchant": 5, "urgent": "yes",
                                                "paidAt": "yesterday", "details": "x"})
    assert fields(issues) == ["variables.amount", "variables.merchant", "variables.urgent",
                              "variables.paidAt", "variables.details"]
    assert "must be a number" in issues[0].reason and "(variable type number)" in issues[0].reason


def test_dates_are_normalised_to_iso_strings():
    values, _ = resolve_variables(DEFINITIONS, {"amount": 1, "paidAt": "2026-03-01T10:00:00+02:00"})
    assert values["paidAt"] == "2026-03-01T08:00:00Z"
    values, _ = resolve_variables(DEFINITIONS, {"amount": 1, "paidAt": "2026-03-01"})
    assert values["paidAt"] == "2026-03-01"


def test_objects_take_json_objects_and_arrays():
    values, issues = resolve_variables(DEFINITIONS, {"amount": 1, "details": {"items": [1, 2]}})
    assert issues == [] and values["details"] == {"items": [1, 2]}
    assert check_value("object", [1, {"a": None}]) == [1, {"a": None}]
    assert check_value("object", {"a": (1, 2)}) == {"a": [1, 2]}


def test_variables_must_be_an_object():
    assert resolve_variables(DEFINITIONS, ["amount"]) == ({}, [FieldIssue("variables", "must be an object")])


@pytest.mark.parametrize(("type_", "value"), [
    ("string", 1), ("string", "a\x00b"), ("string", "x" * 10_001), ("number", True), ("number", "1"),
    ("number", float("nan")), ("number", 2**64), ("boolean", 1), ("date", 20260101),
    ("date", "2026-13-01"), ("date", "2026-01-01T10:00:00"), ("object", "{}"), ("object", {"a": object()}),
])
def test_check_value_refuses_values_of_the_wrong_type(type_, value):
    with pytest.raises(ValueError):
        check_value(type_, value)


def test_check_value_refuses_unknown_types():
    with pytest.raises(ValueError, match="unknown variable type"):
        check_value("money", 1)


def test_strings_can_be_coerced_for_sources_that_only_send_text():
    definitions = [VariableDef(name=n, type=t) for n, t in
                   [("n", "number"), ("f", "number"), ("b", "boolean"), ("o", "object"), ("s", "string"),
                    ("d", "date")]]
    values, issues = resolve_variables(definitions, {"n": "12", "f": "1.5", "b": "true", "o": '{"a": 1}',
                                                     "s": "12", "d": "2026-01-31"}, coerce_strings=True)
    assert issues == []
    assert values == {"n": 12, "f": 1.5, "b": True, "o": {"a": 1}, "s": "12", "d": "2026-01-31"}
    _, issues = resolve_variables(definitions, {"n": "twelve", "b": "maybe", "o": "{"}, coerce_strings=True)
    assert fields(issues) == ["variables.n", "variables.b", "variables.o"]


@pytest.mark.parametrize(("type_", "text", "value"), [
    ("number", " 7 ", 7), ("number", "1e3", 1000), ("number", "2.0", 2.0), ("boolean", "No", False),
    ("boolean", "1", True), ("object", "[1]", [1]),
])
def test_coerce_string_reads_text_as_the_declared_type(type_, text, value):
    assert coerce_string(type_, text) == value


def test_coerce_string_refuses_non_finite_numbers():
    with pytest.raises(ValueError):
        coerce_string("number", "nan")


# --- definitions ------------------------------------------------------------------------------------


def test_parse_variable_fills_defaults():
    variable, issues = parse_variable({"name": "amount", "type": "number"}, "variables[0]")
    assert issues == []
    assert variable == VariableDef(name="amount", type="number", required=False, default=None,
                                   overridable=True, description="")


def test_parse_variable_reports_every_problem_with_its_path():
    _, issues = parse_variable({"name": "1x", "type": "money", "required": "yes", "overridable": 0,
                                "description": 5, "colour": "red"}, "variables[1]")
    assert sorted(fields(issues)) == ["variables[1].colour", "variables[1].description", "variables[1].name",
                                      "variables[1].overridable", "variables[1].required",
                                      "variables[1].type"]


def test_a_default_must_be_of_the_variable_type():
    _, issues = parse_variable({"name": "amount", "type": "number", "default": "12"}, "variables[1]")
    assert issues == [FieldIssue("variables[1].default", "must be a number (variable type number)")]


def test_a_date_default_is_normalised():
    variable, _ = parse_variable({"name": "d", "type": "date", "default": "2026-01-01T00:00:00+01:00"}, "v")
    assert variable is not None and variable.default == "2025-12-31T23:00:00Z"


def test_a_required_variable_that_cannot_be_overridden_needs_a_default():
    _, issues = parse_variable({"name": "x", "type": "string", "required": True, "overridable": False}, "v")
    assert fields(issues) == ["v.default"]


def test_parse_variable_refuses_non_objects():
    assert parse_variable("amount", "variables[0]") == (
        None, [FieldIssue("variables[0]", "must be an object")])


@given(st.sampled_from(VARIABLE_TYPES), st.booleans(), st.booleans(), st.text(max_size=20))
def test_variable_definitions_round_trip_through_json(type_, required, overridable, description):
    defaults = {"string": "s", "number": 1.5, "boolean": True, "date": "2026-01-31", "object": {"a": [1]}}
    raw = {"name": "v", "type": type_, "required": required, "default": defaults[type_],
           "overridable": overridable, "description": description}
    variable, issues = parse_variable(raw, "v")
    assert issues == [] and variable is not None
    assert variable_to_json(variable) == raw
    assert parse_variable(variable_to_json(variable), "v")[0] == variable

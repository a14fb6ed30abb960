"""Card templates: elements, rendering and submitted values (hub/core/cards.py)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.core.cards import (
    CardTemplate,
    parse_card_template,
    render_card,
    template_to_json,
    validate_submission,
)
from hub.core.customers import FieldIssue

FORM = {
    "id": "fraud-check", "name": "Fraud check", "priority": 9, "expiresIn": "PT2H", "embargoFor": "PT5M",
    "streams": ["default", "alerts"], "platforms": ["ios", "android"],
    "elements": [
        {"type": "headline", "text": "Did you pay {{variables.amount}}?"},
        {"type": "text", "text": "At {{variables.merchant}}"},
        {"type": "image", "url": "https://cdn.example/{{variables.logo}}.png", "alt": "logo"},
        {"type": "input", "inputType": "dropdown", "id": "recognised", "label": "Was it you?",
         "required": True,
         "options": [{"value": "yes", "label": "Yes"}, {"value": "no", "label": "No"}]},
        {"type": "input", "inputType": "toggle", "id": "block", "label": "Block the card"},
        {"type": "input", "inputType": "text", "id": "pin", "label": "PIN", "placeholder": "4 digits",
         "validation": {"minLength": 4, "maxLength": 4, "pattern": "[0-9]+"}},
        {"type": "input", "inputType": "number", "id": "count", "label": "How many?",
         "validation": {"min": 1, "max": 10, "integer": True}},
        {"type": "input", "inputType": "date", "id": "when", "label": "When?",
         "validation": {"min": "2026-01-01", "max": "2026-12-31"}},
        {"type": "input", "inputType": "checkbox", "id": "channels", "label": "Tell me by",
         "options": [{"value": "sms"}, {"value": "email", "label": "E-mail"}]},
        {"type": "button", "label": "Send", "action": "submit"},
        {"type": "button", "label": "Later", "action": "snooze", "snoozeFor": "PT1H"},
        {"type": "button", "label": "Help", "action": "link", "url": "https://bank.example/help"},
        {"type": "button", "label": "Call me", "action": "custom",
         "value": {"callback": "{{variables.phone}}"}},
        {"type": "button", "label": "No", "action": "dismiss"},
    ],
    "push": {"title": "Payment of {{variables.amount}}", "body": "Was it you?"},
}
CONTEXT = {"variables": {"amount": 12.5, "merchant": "ACME", "logo": "acme", "phone": 5551234}}


def parsed(raw=FORM) -> CardTemplate:
    template, issues = parse_card_template(raw, "cardTemplates[0]")
    assert issues == [] and template is not None
    return template


def issue_fields(raw) -> list[str]:
    template, issues = parse_card_template(raw, "t")
    assert template is None
    return [issue.field for issue in issues]


def with_elements(*elements) -> dict:
    return {"id": "t", "name": "T", "elements": list(elements)}


# --- parsing templates --------------------------------------------------------------------------------


def test_a_template_parses_with_durations_in_seconds():
    template = parsed()
    assert (template.id, template.priority, template.expires_in, template.embargo_for) == \
        ("fraud-check", 9, 7200.0, 300.0)
    assert template.streams == ["default", "alerts"] and template.platforms == ["ios", "android"]
    assert [e["id"] for e in template.inputs()] == ["recognised", "block", "pin", "count", "when", "channels"]


def test_template_defaults():
    template = parsed({"id": "t", "name": "T"})
    assert (template.priority, template.expires_in, template.embargo_for) == (5, None, None)
    assert template.push is None
    assert template.streams == ["default"] and template.platforms == ["web", "ios", "android"]
    assert template.elements == []


def test_elements_are_normalised_with_defaults():
    template = parsed(with_elements({"type": "image", "url": "https://x.example/a.png"},
                                    {"type": "input", "inputType": "checkbox", "id": "c", "label": "C",
                                     "options": [{"value": "a"}]}))
    assert template.elements == [
        {"type": "image", "url": "https://x.example/a.png", "alt": ""},
        {"type": "input", "inputType": "checkbox", "id": "c", "label": "C", "required": False,
         "options": [{"value": "a", "label": "a"}]},
    ]


@pytest.mark.parametrize("priority", [0, 11, 5.0, "5", True, None])
def test_priority_must_be_an_integer_from_1_to_10(priority):
    assert issue_fields({"id": "t", "name": "T", "priority": priority}) == ["t.priority"]


@pytest.mark.parametrize(("key", "value"), [("expiresIn", "2 hours"), ("expiresIn", "PT0S"),
                                            ("embargoFor", "P1Y"), ("expiresIn", "P4000D")])
def test_bad_durations_are_reported(key, value):
    assert issue_fields({"id": "t", "name": "T", key: value}) == [f"t.{key}"]


def test_template_level_problems_are_all_reported():
    raw = {"id": "has space", "name": "", "streams": [], "platforms": ["web", "tv", "web"],
           "push": {"title": "", "extra": 1}, "colour": "red"}
    assert sorted(issue_fields(raw)) == ["t.colour", "t.id", "t.name", "t.platforms[1]", "t.platforms[2]",
                                         "t.push.body", "t.push.extra", "t.push.title", "t.streams"]


@pytest.mark.parametrize(("element", "field"), [
    ({"type": "video", "url": "x"}, "t.elements[0].type"),
    ({"text": "no type"}, "t.elements[0].type"),
    ("headline", "t.elements[0]"),
    ({"type": "headline"}, "t.elements[0].text"),
    ({"type": "headline", "text": 5}, "t.elements[0].text"),
    ({"type": "text", "text": "x", "url": "y"}, "t.elements[0].url"),
    ({"type": "image", "url": "not a url"}, "t.elements[0].url"),
    ({"type": "button", "label": "Go", "action": "fly"}, "t.elements[0].action"),
    ({"type": "button", "label": "Go", "action": "link"}, "t.elements[0].url"),
    ({"type": "button", "label": "Go", "action": "link", "url": "/relative"}, "t.elements[0].url"),
    ({"type": "button", "label": "Go", "action": "submit", "url": "https://x.example"}, "t.elements[0].url"),
    ({"type": "button", "label": "Go", "action": "submit", "value": 1}, "t.elements[0].value"),
    ({"type": "button", "label": "Go", "action": "dismiss", "snoozeFor": "PT1H"}, "t.elements[0].snoozeFor"),
    ({"type": "button", "label": "Go", "action": "snooze", "snoozeFor": "soon"}, "t.elements[0].snoozeFor"),
    ({"type": "button", "action": "submit"}, "t.elements[0].label"),
    ({"type": "input", "inputType": "slider", "id": "a", "label": "A"}, "t.elements[0].inputType"),
    ({"type": "input", "inputType": "text", "id": "a-b", "label": "A"}, "t.elements[0].id"),
    ({"type": "input", "inputType": "text", "label": "A"}, "t.elements[0].id"),
    ({"type": "input", "inputType": "text", "id": "a", "label": "A", "required": "yes"},
     "t.elements[0].required"),
    ({"type": "input", "inputType": "dropdown", "id": "a", "label": "A"}, "t.elements[0].options"),
    ({"type": "input", "inputType": "dropdown", "id": "a", "label": "A", "options": []},
     "t.elements[0].options"),
    ({"type": "input", "inputType": "dropdown", "id": "a", "label": "A", "options": [{"value": ""}]},
     "t.elements[0].options[0]"),
    ({"type": "input", "inputType": "dropdown", "id": "a", "label": "A",
      "options": [{"value": "x"}, {"value": "x"}]}, "t.elements[0].options[1].value"),
    ({"type": "input", "inputType": "dropdown", "id": "a", "label": "A",
      "options": [{"value": "x", "label": 3}]}, "t.elements[0].options[0].label"),
    ({"type": "input", "inputType": "text", "id": "a", "label": "A", "options": [{"value": "x"}]},
     "t.elements[0].options"),
    ({"type": "input", "inputType": "text", "id": "a", "label": "A", "validation": {"min": 1}},
     "t.elements[0].validation.min"),
    ({"type": "input", "inputType": "text", "id": "a", "label": "A", "validation": {"pattern": "("}},
     "t.elements[0].validation.pattern"),
    ({"type": "input", "inputType": "text", "id": "a", "label": "A",
      "validation": {"minLength": 5, "maxLength": 2}}, "t.elements[0].validation.minLength"),
    ({"type": "input", "inputType": "text", "id": "a", "label": "A", "validation": {"minLength": -1}},
     "t.elements[0].validation.minLength"),
    ({"type": "input", "inputType": "number", "id": "a", "label": "A", "validation": {"min": "1"}},
     "t.elements[0].validation.min"),
    ({"type": "input", "inputType": "number", "id": "a", "label": "A", "validation": {"integer": 1}},
     "t.elements[0].validation.integer"),
    ({"type": "input", "inputType": "number", "id": "a", "label": "A", "validation": {"min": 5, "max": 1}},
     "t.elements[0].validation.min"),
    ({"type": "input", "inputType": "date", "id": "a", "label": "A", "validation": {"max": "soon"}},
     "t.elements[0].validation.max"),
    ({"type": "input", "inputType": "toggle", "id": "a", "label": "A", "validation": {}},
     "t.elements[0].validation"),
    ({"type": "input", "inputType": "text", "id": "a", "label": "A", "validation": []},
     "t.elements[0].validation"),
])
def test_each_element_problem_is_named_by_its_path(element, field):
    assert field in issue_fields(with_elements(element))


def test_input_ids_must_be_unique_within_a_template():
    text = {"type": "input", "inputType": "text", "id": "a", "label": "A"}
    assert issue_fields(with_elements(text, {"type": "text", "text": "x"}, text)) == ["t.elements[2].id"]


def test_elements_must_be_a_list_of_limited_length():
    assert issue_fields({"id": "t", "name": "T", "elements": {}}) == ["t.elements"]
    assert issue_fields(with_elements(*[{"type": "text", "text": "x"}] * 101)) == ["t.elements"]


def test_link_urls_may_be_placeholders_or_app_links():
    for url in ["{{variables.link}}", "myapp://cards/1", "https://bank.example"]:
        parsed(with_elements({"type": "button", "label": "Go", "action": "link", "url": url}))


def test_templates_round_trip_through_json():
    template = parsed()
    assert parse_card_template(template_to_json(template), "x")[0] == template
    assert template_to_json(template)["expiresIn"] == "PT2H"


@given(st.integers(1, 10), st.one_of(st.none(), st.integers(1, 10**8)), st.sampled_from(
    [["web"], ["ios", "android"], ["web", "ios", "android"]]))
def test_any_valid_template_round_trips(priority, expires, platforms):
    raw = {**FORM, "priority": priority, "platforms": platforms,
           "expiresIn": None if expires is None else f"PT{expires}S"}
    template = parsed(raw)
    assert parse_card_template(template_to_json(template), "x") == (template, [])


# --- rendering ----------------------------------------------------------------------------------------


def test_render_card_fills_every_placeholder_as_text():
    card = render_card(parsed(), CONTEXT)
    assert card["templateId"] == "fraud-check" and card["name"] == "Fraud check"
    assert card["elements"][0] == {"type": "headline", "text": "Did you pay 12.5?"}
    assert card["elements"][2]["url"] == "https://cdn.example/acme.png"
    assert card["push"] == {"title": "Payment of 12.5", "body": "Was it you?"}


def test_a_lone_placeholder_in_card_text_still_renders_as_text():
    template = parsed(with_elements({"type": "text", "text": "{{variables.amount}}"},
                                    {"type": "text", "text": "{{variables.missing}}"}))
    assert [e["text"] for e in render_card(template, CONTEXT)["elements"]] == ["12.5", ""]


def test_a_custom_button_value_keeps_its_type():
    card = render_card(parsed(), CONTEXT)
    assert card["elements"][12]["value"] == {"callback": 5551234}


def test_render_card_does_not_change_the_template():
    template = parsed()
    render_card(template, CONTEXT)
    assert template == parsed()


def test_a_template_without_push_renders_push_as_none():
    assert render_card(parsed({"id": "t", "name": "T"}), CONTEXT) == {
        "templateId": "t", "name": "T", "elements": [], "push": None}


def test_option_labels_and_values_render():
    template = parsed(with_elements({"type": "input", "inputType": "dropdown", "id": "d", "label": "D",
                                     "options": [{"value": "{{variables.merchant}}",
                                                  "label": "At {{variables.merchant}}"}]}))
    assert render_card(template, CONTEXT)["elements"][0]["options"] == [{"value": "ACME", "label": "At ACME"}]


# --- submissions --------------------------------------------------------------------------------------

ELEMENTS = render_card(parsed(), CONTEXT)["elements"]


def test_a_valid_submission_is_normalised():
    values, issues = validate_submission(ELEMENTS, {
        "recognised": "no", "block": True, "pin": "1234", "count": 3.0, "when": "2026-03-01",
        "channels": ["sms", "email", "sms"]})
    assert issues == []
    assert values == {"recognised": "no", "block": True, "pin": "1234", "count": 3, "when": "2026-03-01",
                      "channels": ["sms", "email"]}


def test_required_inputs_must_be_given_and_optional_ones_may_be_left_out():
    assert validate_submission(ELEMENTS, {}) == ({}, [FieldIssue("values.recognised", "is required")])
    assert validate_submission(ELEMENTS, {"recognised": ""})[1] == [
        FieldIssue("values.recognised", "is required")]
    assert validate_submission(ELEMENTS, {"recognised": "yes", "pin": None}) == ({"recognised": "yes"}, [])


def test_unknown_input_ids_are_rejected():
    _, issues = validate_submission(ELEMENTS, {"recognised": "yes", "pinn": "1234"})
    assert issues == [FieldIssue("values.pinn", "is not an input of this card")]


@pytest.mark.parametrize(("input_id", "value", "reason"), [
    ("recognised", "maybe", "must be one of yes, no"),
    ("recognised", 1, "must be one of"),
    ("block", "true", "true or false"),
    ("pin", 1234, "must be a string"),
    ("pin", "123", "at least 4"),
    ("pin", "12345", "at most 4"),
    ("pin", "12a4", "expected format"),
    ("count", "3", "must be a number"),
    ("count", True, "must be a number"),
    ("count", 2.5, "whole number"),
    ("count", 0, "at least 1"),
    ("count", 11, "at most 10"),
    ("when", "2025-12-31", "on or after 2026-01-01"),
    ("when", "2027-01-01", "on or before 2026-12-31"),
    ("when", "March 1st", "ISO date"),
    ("when", "2026-03-01T10:00:00Z", "ISO date"),
    ("channels", "sms", "list"),
    ("channels", ["fax"], "'fax' is not an option"),
    ("channels", [1], "list"),
])
def test_each_input_type_checks_its_value(input_id, value, reason):
    _, issues = validate_submission(ELEMENTS, {"recognised": "yes", input_id: value})
    [issue] = issues
    assert issue.field == f"values.{input_id}" and reason in issue.reason


def test_every_problem_of_a_submission_is_reported():
    _, issues = validate_submission(ELEMENTS, {"recognised": "maybe", "count": 99, "x": 1})
    assert [issue.field for issue in issues] == ["values.x", "values.recognised", "values.count"]


def test_values_must_be_an_object():
    assert validate_submission(ELEMENTS, ["a"]) == ({}, [FieldIssue("values", "must be an object")])


def test_a_card_without_inputs_accepts_only_an_empty_submission():
    assert validate_submission([{"type": "text", "text": "x"}], {}) == ({}, [])
    assert validate_submission([], {"a": 1})[1] == [FieldIssue("values.a", "is not an input of this card")]


def test_a_required_toggle_accepts_false():
    elements = [{"type": "input", "inputType": "toggle", "id": "ok", "label": "OK", "required": True}]
    assert validate_submission(elements, {"ok": False}) == ({"ok": False}, [])


def test_a_required_checkbox_needs_at_least_one_option():
    elements = [{"type": "input", "inputType": "checkbox", "id": "c", "label": "C", "required": True,
                 "options": [{"value": "a", "label": "A"}]}]
    assert validate_submission(elements, {"c": []})[1] == [FieldIssue("values.c", "is required")]


def test_rules_a_rendered_card_lacks_are_not_applied():
    # Validation rules come from the stored (rendered) card; missing or odd rules are skipped.
    elements = [{"type": "input", "inputType": "number", "id": "n", "label": "N",
                 "validation": {"min": None, "max": "x"}},
                {"type": "input", "inputType": "text", "id": "t", "label": "T",
                 "validation": {"pattern": "("}}]
    assert validate_submission(elements, {"n": 5, "t": "x"}) == ({"n": 5}, [FieldIssue(
        "values.t", "does not have the expected format")])


def test_an_input_of_an_unknown_type_refuses_values():
    elements = [{"type": "input", "inputType": "slider", "id": "s", "label": "S"}]
    assert "unknown type" in validate_submission(elements, {"s": 1})[1][0].reason


@given(st.dictionaries(st.text(max_size=5), st.one_of(st.none(), st.booleans(), st.integers(),
                                                       st.floats(), st.text(max_size=5),
                                                       st.lists(st.text(max_size=3), max_size=3))))
def test_validate_submission_never_raises(values):
    clean, issues = validate_submission(ELEMENTS, values)
    assert set(clean) <= {e["id"] for e in ELEMENTS if e["type"] == "input"}

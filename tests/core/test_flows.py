"""Flow definitions: parsing, whole-definition checks, the JSON form and its schema (hub/core/flows.py)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.core.customers import FieldIssue
from hub.core.flow_steps import check_schema
from hub.core.flows import (
    SOURCES,
    STEP_TYPES,
    CardTemplate,
    FlowDefinition,
    FlowError,
    Step,
    Triggers,
    VariableDef,
    json_schema,
    parse_definition,
    to_json,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flows" / "fraud_alert.json"


def minimal(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "Flow", "steps": list(steps) or [{"id": "a", "type": "end"}], **extra}


BASE = {
    "name": "Payments",
    "variables": [{"name": "amount", "type": "number", "required": True},
                  {"name": "merchant", "type": "string", "default": "a shop"}],
    "cardTemplates": [{"id": "ask", "name": "Ask", "elements": [
        {"type": "text", "text": "Pay {{variables.amount}}?"},
        {"type": "input", "inputType": "toggle", "id": "ok", "label": "OK"},
        {"type": "button", "label": "Send", "action": "submit"}]}],
    "steps": [
        {"id": "card", "type": "card", "template": "ask", "next": "wait"},
        {"id": "wait", "type": "wait_for", "card": "card", "timeout": "PT1H", "onTimeout": "done",
         "next": "check"},
        {"id": "check", "type": "branch",
         "cases": [{"when": "steps.card.values.ok == true", "next": "thanks"}],
         "default": "done"},
        {"id": "thanks", "type": "push", "title": "Thanks", "body": "Paid {{variables.amount}}",
         "next": "done"},
        {"id": "done", "type": "end"},
    ],
}


def issues_of(raw: Any, **kwargs: Any) -> list[FieldIssue]:
    with pytest.raises(FlowError) as caught:
        parse_definition(raw, **kwargs)
    return caught.value.issues


def fields_of(raw: Any, **kwargs: Any) -> list[str]:
    return [issue.field for issue in issues_of(raw, **kwargs)]


def with_steps(*steps: dict[str, Any]) -> dict[str, Any]:
    return {**copy.deepcopy(BASE), "steps": list(steps)}


# --- the example and the basics --------------------------------------------------------------------


def test_the_fraud_alert_example_is_a_valid_definition():
    definition = parse_definition(json.loads(EXAMPLE.read_text()))
    assert definition.name == "Fraud alert" and definition.start == "ask"
    assert definition.step("await_answer").config == {
        "card": "ask", "events": ["card-completed", "card-dismissed"], "timeoutSeconds": 1800.0,
        "onTimeout": "remind"}
    assert definition.template("fraud-check").priority == 10
    assert {step.type for step in definition.steps} >= {"card", "wait_for", "branch", "end"}
    assert not definition.allows("list") and definition.allows("api")


def test_the_example_round_trips_through_its_json_form():
    definition = parse_definition(json.loads(EXAMPLE.read_text()))
    assert parse_definition(to_json(definition)) == definition
    assert to_json(parse_definition(to_json(definition))) == to_json(definition)


def test_parse_gives_typed_structs():
    definition = parse_definition(BASE)
    assert isinstance(definition, FlowDefinition)
    assert definition.variables[0] == VariableDef(name="amount", type="number", required=True)
    assert isinstance(definition.card_templates[0], CardTemplate)
    assert definition.steps[0] == Step(id="card", type="card", next="wait", config={"template": "ask"})
    assert definition.step("done") == Step(id="done", type="end", next=None, config={})
    assert definition.variable("merchant").default == "a shop"


def test_start_defaults_to_the_first_step_and_may_be_named():
    assert parse_definition(BASE).start == "card"
    raw = minimal({"id": "a", "type": "end"}, {"id": "b", "type": "delay", "duration": "PT1M", "next": "a"},
                  start="b")
    assert parse_definition(raw).start == "b"
    assert fields_of({**BASE, "start": "nowhere"}) == ["start"]


def test_lookups_raise_key_error_for_unknown_ids():
    definition = parse_definition(BASE)
    for lookup in (definition.step, definition.template, definition.variable):
        with pytest.raises(KeyError):
            lookup("nope")


def test_triggers_default_to_everything_but_the_customer_center():
    definition = parse_definition(minimal())
    assert definition.triggers == Triggers()
    assert [source for source in SOURCES if definition.allows(source)] == [
        "api", "test", "webhook", "sfmc", "marketo", "list"]
    assert not definition.allows("carrier-pigeon")
    opened = parse_definition(minimal(triggers={"customerCenter": True, "api": False}))
    assert opened.allows("customer_center") and not opened.allows("api")
    assert to_json(opened)["triggers"]["customerCenter"] is True


def test_trigger_problems_are_named():
    assert fields_of(minimal(triggers={"customer_center": True, "api": "yes"})) == [
        "triggers.customer_center", "triggers.api"]
    assert fields_of(minimal(triggers=[])) == ["triggers"]


def test_flow_error_is_a_value_error_listing_every_issue():
    with pytest.raises(ValueError, match=r"name: must be .*; steps: a flow needs at least one step"):
        parse_definition({"name": "", "steps": []})


def test_a_definition_must_be_an_object():
    assert issues_of([1]) == [FieldIssue("definition", "must be a JSON object")]


def test_the_step_types_and_sources_are_the_documented_ones():
    assert STEP_TYPES == ("card", "push", "delay", "wait_for", "branch", "http_request", "update_customer",
                          "end", "parallel")
    assert SOURCES == ("api", "test", "webhook", "sfmc", "marketo", "list", "customer_center")


# --- each step type's config ------------------------------------------------------------------------


def only_step(**fields: Any) -> Step:
    return parse_definition(minimal({"id": "s", **fields})).step("s")


def test_delay_config_is_in_seconds():
    assert only_step(type="delay", duration="P1DT2H30M").config == {"seconds": 95400.0}


def test_wait_for_defaults_to_completed_and_dismissed_without_timeout():
    definition = parse_definition(with_steps(
        {"id": "c", "type": "card", "template": "ask", "next": "w"},
        {"id": "w", "type": "wait_for", "card": "c"}))
    assert definition.step("w").config == {"card": "c", "events": ["card-completed", "card-dismissed"],
                                           "timeoutSeconds": None, "onTimeout": None}


def test_http_request_defaults():
    assert only_step(type="http_request", url="https://api.example/x").config == {
        "method": "GET", "url": "https://api.example/x", "headers": {}, "body": None, "timeoutSeconds": 10.0,
        "retries": 0, "allowFailure": False}
    posted = only_step(type="http_request", url="https://api.example/x", body={"a": 1}, timeout="PT60S",
                       retries=5, allowFailure=True, headers={"X-Key": "k"})
    assert posted.config["method"] == "POST" and posted.config["timeoutSeconds"] == 60.0


def test_update_customer_push_parallel_and_end_configs():
    step = only_step(type="update_customer", fields={"plan": "gold", "score": None}, addTags=["vip"])
    assert step.config == {
        "fields": {"plan": "gold", "score": None}, "addTags": ["vip"], "removeTags": []}
    assert only_step(type="push", title="T", body="B").config == {
        "title": "T", "body": "B", "data": {}, "platforms": ["ios", "android", "web"], "priority": "high",
        "allowFailure": False}
    assert only_step(type="push", title="T", body="B", platforms=["web", "web"], priority="normal",
                     allowFailure=True).config == {
        "title": "T", "body": "B", "data": {}, "platforms": ["web"], "priority": "normal",
        "allowFailure": True}
    definition = parse_definition(minimal(
        {"id": "p", "type": "parallel", "branches": ["x", "y"], "next": "z"},
        {"id": "x", "type": "delay", "duration": "PT1M"},
        {"id": "y", "type": "push", "title": "t", "body": "b"},
        {"id": "z", "type": "end"}))
    assert definition.step("p").config == {"branches": ["x", "y"]} and definition.step("p").next == "z"


@pytest.mark.parametrize(("step", "field"), [
    ({"type": "push", "title": "t", "body": "b", "platforms": []}, "steps[0].platforms"),
    ({"type": "push", "title": "t", "body": "b", "platforms": ["huawei"]}, "steps[0].platforms[0]"),
    ({"type": "push", "title": "t", "body": "b", "priority": "urgent"}, "steps[0].priority"),
    ({"type": "push", "title": "t", "body": "b", "allowFailure": "yes"}, "steps[0].allowFailure"),
    ({"type": "delay"}, "steps[0].duration"),
    ({"type": "delay", "duration": "soon"}, "steps[0].duration"),
    ({"type": "delay", "duration": "PT0S"}, "steps[0].duration"),
    ({"type": "delay", "duration": "P3651D"}, "steps[0].duration"),
    ({"type": "http_request", "url": "https://a.example", "timeout": "PT61S"}, "steps[0].timeout"),
    ({"type": "http_request", "url": "https://a.example", "timeout": "PT10"}, "steps[0].timeout"),
    ({"type": "http_request", "url": "https://a.example", "retries": 6}, "steps[0].retries"),
    ({"type": "http_request", "url": "https://a.example", "retries": -1}, "steps[0].retries"),
    ({"type": "http_request", "url": "https://a.example", "method": "BREW"}, "steps[0].method"),
    ({"type": "http_request", "url": "https://a.example", "allowFailure": "no"}, "steps[0].allowFailure"),
    ({"type": "http_request", "url": "https://a.example", "headers": {"Bad Name": "x"}},
     "steps[0].headers.Bad Name"),
    ({"type": "http_request", "url": "https://a.example", "headers": {"X": "a\r\nb"}}, "steps[0].headers.X"),
    ({"type": "http_request", "url": "https://a.example", "headers": []}, "steps[0].headers"),
    ({"type": "http_request", "url": "ftp://a.example"}, "steps[0].url"),
    ({"type": "http_request"}, "steps[0].url"),
    ({"type": "push", "title": "", "body": "b"}, "steps[0].title"),
    ({"type": "push", "title": "t", "body": "b", "data": {"n": 1}}, "steps[0].data"),
    ({"type": "update_customer"}, "steps[0]"),
    ({"type": "update_customer", "fields": {"bad name": 1}}, "steps[0].fields.bad name"),
    ({"type": "update_customer", "fields": {"x": [1]}}, "steps[0].fields.x"),
    ({"type": "update_customer", "addTags": ["a,b"]}, "steps[0].addTags[0]"),
    ({"type": "update_customer", "removeTags": "vip"}, "steps[0].removeTags"),
    ({"type": "update_customer", "fields": []}, "steps[0].fields"),
    ({"type": "parallel", "branches": []}, "steps[0].branches"),
    ({"type": "parallel", "branches": ["s", "s"]}, "steps[0].branches[1]"),
    ({"type": "branch"}, "steps[0].cases"),
    ({"type": "branch", "cases": "x"}, "steps[0].cases"),
    ({"type": "branch", "cases": ["x"]}, "steps[0].cases[0]"),
    ({"type": "branch", "cases": [{"when": "true", "next": "s", "else": "s"}]}, "steps[0].cases[0].else"),
    ({"type": "branch", "cases": [{"when": "variables.x >", "next": "s"}]}, "steps[0].cases[0].when"),
    ({"type": "branch", "cases": [{"when": "len(variables.x)", "next": "s"}]}, "steps[0].cases[0].when"),
    ({"type": "branch", "cases": [{"when": "true"}]}, "steps[0].cases[0].next"),
    ({"type": "branch", "default": "s", "next": "s"}, "steps[0].next"),
    ({"type": "end", "next": "s"}, "steps[0].next"),
    ({"type": "card"}, "steps[0].template"),
    ({"type": "wait_for", "card": "s", "events": ["card-snoozed"]}, "steps[0].events[0]"),
    ({"type": "wait_for", "card": "s", "events": []}, "steps[0].events"),
    ({"type": "wait_for", "card": "s", "events": ["card-completed", "card-completed"]}, "steps[0].events[1]"),
    ({"type": "wait_for", "card": "s", "timeout": "P1M"}, "steps[0].timeout"),
    ({"type": "wait_for", "card": 5}, "steps[0].card"),
    ({"type": "end", "colour": "red"}, "steps[0].colour"),
    ({"type": "delay", "duration": "PT1M", "next": 5}, "steps[0].next"),
    ({"type": "teleport"}, "steps[0].type"),
])
def test_step_field_problems_are_named_by_path(step, field):
    assert field in fields_of(minimal({"id": "s", **step}))


def test_an_unknown_step_type_lists_the_known_ones():
    [issue] = issues_of(minimal({"id": "s", "type": "teleport"}))
    assert issue.reason.startswith("unknown step type 'teleport' (one of card, push, delay")


def test_step_ids_must_be_names():
    assert fields_of(minimal({"id": "has-dash", "type": "end"})) == ["steps[0].id"]


# --- references --------------------------------------------------------------------------------------


def test_references_to_missing_steps_are_reported_at_the_referring_field():
    raw = minimal(
        {"id": "a", "type": "delay", "duration": "PT1M", "next": "ghost"},
        {"id": "b", "type": "branch", "cases": [{"when": "true", "next": "ghost2"}], "default": "ghost3"},
        {"id": "c", "type": "parallel", "branches": ["ghost4"]},
        {"id": "d", "type": "wait_for", "card": "ghost5", "onTimeout": "ghost6"})
    assert fields_of(raw) == ["steps[0].next", "steps[1].cases[0].next", "steps[1].default",
                              "steps[2].branches[0]", "steps[3].onTimeout", "steps[3].card"]


def test_a_card_step_must_name_a_template():
    raw = with_steps({"id": "c", "type": "card", "template": "nope"})
    assert issues_of(raw) == [FieldIssue("steps[0].template", "names no card template ('nope')")]


def test_wait_for_must_name_a_card_step():
    raw = with_steps({"id": "d", "type": "delay", "duration": "PT1M", "next": "w"},
                     {"id": "w", "type": "wait_for", "card": "d"})
    assert issues_of(raw) == [FieldIssue("steps[1].card", "'d' is a delay step, not a card step")]


def test_duplicate_ids_are_reported_with_the_first_occurrence():
    raw = {**copy.deepcopy(BASE)}
    raw["variables"] = raw["variables"] + [{"name": "amount", "type": "string"}]
    raw["cardTemplates"] = raw["cardTemplates"] + [{"id": "ask", "name": "Again"}]
    raw["steps"] = raw["steps"] + [{"id": "done", "type": "end"}]
    issues = issues_of(raw)
    assert issues == [
        FieldIssue("variables[2].name", "duplicate variable name 'amount' (also variables[0])"),
        FieldIssue("cardTemplates[1].id", "duplicate card template id 'ask' (also cardTemplates[0])"),
        FieldIssue("steps[5].id", "duplicate step id 'done' (also steps[4])"),
    ]


def test_a_reference_to_a_broken_step_is_not_reported_twice():
    raw = minimal({"id": "a", "type": "delay", "duration": "PT1M", "next": "b"},
                  {"id": "b", "type": "delay", "duration": "forever"})
    assert fields_of(raw) == ["steps[1].duration"]


# --- the step graph ------------------------------------------------------------------------------------


def test_unreachable_steps_are_reported():
    raw = minimal({"id": "a", "type": "end"}, {"id": "orphan", "type": "push", "title": "t", "body": "b"},
                  {"id": "orphan2", "type": "end"})
    assert issues_of(raw) == [
        FieldIssue("steps[1]", "step 'orphan' is unreachable from the start step 'a'"),
        FieldIssue("steps[2]", "step 'orphan2' is unreachable from the start step 'a'"),
    ]


def test_steps_reached_only_through_branches_parallel_or_timeouts_are_reachable():
    parse_definition(with_steps(
        {"id": "p", "type": "parallel", "branches": ["c"], "next": "b"},
        {"id": "c", "type": "card", "template": "ask", "next": "w"},
        {"id": "w", "type": "wait_for", "card": "c", "onTimeout": "late"},
        {"id": "late", "type": "end"},
        {"id": "b", "type": "branch", "cases": [{"when": "true", "next": "x"}], "default": "y"},
        {"id": "x", "type": "end"}, {"id": "y", "type": "end"}))


def test_a_cycle_without_a_wait_is_reported_once_with_its_path():
    raw = minimal({"id": "a", "type": "push", "title": "t", "body": "b", "next": "b"},
                  {"id": "b", "type": "branch", "cases": [{"when": "variables.x == 1", "next": "a"}],
                   "default": "c"},
                  {"id": "c", "type": "end"},
                  variables=[{"name": "x", "type": "number"}])
    assert issues_of(raw) == [FieldIssue(
        "steps[0]", "step 'a' is on a cycle with no wait_for or delay step: a → b → a")]


def test_a_step_that_loops_to_itself_is_a_cycle():
    raw = minimal({"id": "a", "type": "http_request", "url": "https://x.example", "next": "a"})
    assert issues_of(raw) == [FieldIssue("steps[0]", "step 'a' is on a cycle with no wait_for or delay "
                                                     "step: a → a")]


def test_a_cycle_through_a_delay_or_wait_is_allowed():
    parse_definition(minimal({"id": "a", "type": "push", "title": "t", "body": "b", "next": "d"},
                             {"id": "d", "type": "delay", "duration": "P1D", "next": "a"}))
    parse_definition(with_steps({"id": "c", "type": "card", "template": "ask", "next": "w"},
                                {"id": "w", "type": "wait_for", "card": "c", "next": "c"}))


def test_a_wait_elsewhere_in_the_loop_does_not_excuse_a_busy_inner_cycle():
    raw = minimal({"id": "a", "type": "branch", "cases": [{"when": "true", "next": "b"}], "default": "d"},
                  {"id": "b", "type": "push", "title": "t", "body": "b", "next": "a"},
                  {"id": "d", "type": "delay", "duration": "PT1M", "next": "a"})
    [issue] = issues_of(raw)
    assert issue.field == "steps[0]" and issue.reason.endswith("a → b → a")


def test_two_separate_cycles_are_each_reported():
    raw = minimal({"id": "a", "type": "branch", "cases": [{"when": "true", "next": "a"}], "default": "b"},
                  {"id": "b", "type": "push", "title": "t", "body": "b", "next": "c"},
                  {"id": "c", "type": "push", "title": "t", "body": "b", "next": "b"})
    assert [issue.field for issue in issues_of(raw)] == ["steps[0]", "steps[1]"]


# --- placeholders and expressions -----------------------------------------------------------------------


def test_placeholders_must_name_defined_variables_everywhere():
    raw = copy.deepcopy(BASE)
    raw["cardTemplates"][0]["elements"][0]["text"] = "Pay {{variables.amont}}"
    raw["cardTemplates"][0]["push"] = {"title": "{{variables.nope}}", "body": "b"}
    raw["steps"][3] = {"id": "thanks", "type": "http_request", "url": "https://x.example/{{variables.a}}",
                       "body": {"n": ["{{variables.b}}"]}, "headers": {"X-Id": "{{variables.c}}"},
                       "next": "done"}
    raw["steps"].append({"id": "tag", "type": "update_customer", "fields": {"f": "{{variables.d}}"},
                         "addTags": ["{{variables.e}}"]})
    raw["steps"][4]["type"] = "delay"
    raw["steps"][4]["duration"] = "PT1M"
    raw["steps"][4]["next"] = "tag"
    assert fields_of(raw) == ["cardTemplates[0].elements[0].text", "cardTemplates[0].push.title",
                              "steps[3].url", "steps[3].headers.X-Id", "steps[3].body.n[0]",
                              "steps[5].fields.f", "steps[5].addTags[0]"]


def test_placeholder_issues_say_what_is_wrong():
    raw = with_steps({"id": "p", "type": "push", "title": "{{variables.amont}}", "body": "{{response.body}}"})
    assert issues_of(raw) == [
        FieldIssue("steps[0].title",
                   "placeholder 'variables.amont' names no variable of this flow ('amont')"),
        FieldIssue("steps[0].body",
                   "placeholder 'response.body' starts with an unknown name: use variables., "
                                    "customer., steps. or invocation. (a step's response is "
                                    "steps.<stepId>.response)"),
    ]


@pytest.mark.parametrize("text", [
    "{{customer.userId}}", "{{customer.fields.anything}}", "{{customer.tags}}", "{{invocation.id}}",
    "{{invocation.metadata.campaign}}", "{{invocation.source}}", "{{steps.p.response.body.x}}",
    "{{variables.amount}}", "{{customer}}",
])
def test_placeholders_into_the_context_are_accepted(text):
    parse_definition(with_steps({"id": "p", "type": "push", "title": text, "body": "b"}))


@pytest.mark.parametrize(("text", "reason"), [
    ("{{steps.ghost.values.x}}", "names no step"), ("{{customer.email}}", "customer has userId"),
    ("{{invocation.payload}}", "invocation has id"), ("{{variables}}", "needs a name"),
    ("{{ not valid }}", "malformed placeholder"), ("{{}}", "malformed placeholder"),
])
def test_bad_placeholders_are_refused(text, reason):
    [issue] = issues_of(with_steps({"id": "p", "type": "push", "title": text, "body": "b"}))
    assert issue.field == "steps[0].title" and reason in issue.reason


def test_branch_expressions_must_read_defined_names():
    raw = with_steps({"id": "b", "type": "branch", "cases": [
        {"when": "variables.amont > 5", "next": "e"},
        {"when": "steps.nope.values.x == 1 or foo", "next": "e"}],
        "default": "e"}, {"id": "e", "type": "end"})
    assert [(i.field, i.reason.split(" ")[0]) for i in issues_of(raw)] == [
        ("steps[0].cases[0].when", "'variables.amont'"), ("steps[0].cases[1].when", "'steps.nope.values.x'"),
        ("steps[0].cases[1].when", "'foo'")]


# --- unknown keys, and everything at once -----------------------------------------------------------------


def test_unknown_keys_are_rejected_with_their_path():
    raw = copy.deepcopy(BASE)
    raw["colour"] = "red"
    raw["variables"][0]["colour"] = "red"
    raw["cardTemplates"][0]["colour"] = "red"
    raw["cardTemplates"][0]["elements"][1]["colour"] = "red"
    raw["steps"][0]["colour"] = "red"
    assert fields_of(raw) == ["colour", "variables[0].colour", "cardTemplates[0].colour",
                              "cardTemplates[0].elements[1].colour", "steps[0].colour"]


def test_every_problem_is_reported_at_once():
    raw = {
        "name": "Broken",
        "variables": [{"name": "limit", "type": "number", "default": "high"}],
        "cardTemplates": [{"id": "t", "name": "T", "priority": 11, "elements": [
            {"type": "input", "inputType": "dropdown", "id": "x", "label": "X", "options": []}]}],
        "steps": [
            {"id": "a", "type": "card", "template": "t", "next": "b"},
            {"id": "b", "type": "wait_for", "card": "a", "timeout": "soon", "next": "c"},
            {"id": "c", "type": "branch", "cases": [{"when": "variables.limit >", "next": "a"}]},
            {"id": "d", "type": "jump"},
        ],
    }
    assert fields_of(raw) == ["variables[0].default", "cardTemplates[0].priority",
                              "cardTemplates[0].elements[0].options", "steps[1].timeout",
                              "steps[2].cases[0].when", "steps[3].type"]


# --- plugin step types -----------------------------------------------------------------------------------

SMS_SCHEMA = {"type": "object", "required": ["to", "text"], "properties": {
    "to": {"type": "string", "pattern": "^\\+?[0-9{}. a-z]+$"}, "text": {"type": "string", "maxLength": 160},
    "retries": {"type": "integer", "minimum": 0, "maximum": 3},
    "channel": {"enum": ["sms", "whatsapp"]}}}


def test_a_plugin_step_type_is_accepted_with_its_config():
    raw = with_steps({"id": "s", "type": "send_sms", "to": "{{customer.fields.phone}}",
                      "text": "Pay {{variables.amount}}",
                      "retries": 2, "next": "e"}, {"id": "e", "type": "end"})
    definition = parse_definition(raw, step_types={"send_sms": SMS_SCHEMA})
    assert definition.step("s") == Step(id="s", type="send_sms", next="e", config={
        "to": "{{customer.fields.phone}}", "text": "Pay {{variables.amount}}", "retries": 2})
    assert parse_definition(to_json(definition), step_types={"send_sms": SMS_SCHEMA}) == definition


def test_a_plugin_step_config_is_checked_against_its_schema():
    raw = minimal({"id": "s", "type": "send_sms", "text": 5, "retries": 9, "channel": "fax", "colour": "red"})
    assert fields_of(raw, step_types={"send_sms": SMS_SCHEMA}) == [
        "steps[0].to", "steps[0].text", "steps[0].retries", "steps[0].channel", "steps[0].colour"]


def test_placeholders_in_plugin_steps_are_checked_too():
    raw = minimal({"id": "s", "type": "send_sms", "to": "1", "text": "{{variables.ghost}}"})
    assert fields_of(raw, step_types={"send_sms": SMS_SCHEMA}) == ["steps[0].text"]


def test_unknown_type_message_names_plugin_types_and_builtins_cannot_be_replaced():
    [issue] = issues_of(minimal({"id": "s", "type": "fax"}), step_types={"send_sms": SMS_SCHEMA})
    assert issue.reason.endswith("end, parallel, send_sms)")
    with pytest.raises(FlowError):  # the built-in delay still needs a duration
        parse_definition(minimal({"id": "s", "type": "delay"}), step_types={"delay": {}})


def test_a_plugin_type_without_properties_accepts_any_config():
    raw = minimal({"id": "s", "type": "noop", "anything": [1]})
    definition = parse_definition(raw, step_types={"noop": {}})
    assert definition.step("s").config == {"anything": [1]}


@pytest.mark.parametrize(("value", "schema", "ok"), [
    (1, {"type": "integer"}, True), (1.0, {"type": "integer"}, True), (1.5, {"type": "integer"}, False),
    (True, {"type": "number"}, False), (None, {"type": ["string", "null"]}, True),
    ("ab", {"minLength": 3}, False), ([1, 2], {"maxItems": 1}, False), ([], {"minItems": 1}, False),
    (["a", 1], {"items": {"type": "string"}}, False),
    ({"a": 1}, {"additionalProperties": {"type": "string"}}, False),
    (0, {"exclusiveMinimum": 0}, True), (5, {"const": 5}, True), (4, {"const": 5}, False),
    ("x", {"pattern": "("}, True), (-1, {"minimum": 0}, False),
])
def test_the_small_schema_checker(value, schema, ok):
    assert (check_schema(value, schema, "v") == []) is ok


# --- the JSON form and its schema -------------------------------------------------------------------------


def test_to_json_writes_the_camel_case_form_with_durations():
    data = to_json(parse_definition(BASE))
    assert list(data) == ["name", "description", "variables", "cardTemplates", "steps", "start", "triggers"]
    assert data["steps"][1] == {"id": "wait", "type": "wait_for", "next": "check", "card": "card",
                                "events": ["card-completed", "card-dismissed"], "timeout": "PT1H",
                                "onTimeout": "done"}
    assert data["steps"][2] == {"id": "check", "type": "branch", "cases": [
        {"when": "steps.card.values.ok == true", "next": "thanks"}], "default": "done"}
    assert data["steps"][4] == {"id": "done", "type": "end"}
    assert data["triggers"] == {"api": True, "test": True, "webhook": True, "sfmc": True, "marketo": True,
                                "list": True, "customerCenter": False}


def _validate(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> bool:
    """Enough of JSON Schema 2020-12 to check our own schema ($ref, oneOf, anyOf and the rest)."""
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return _validate(value, target, root)
    if "oneOf" in schema and sum(_validate(value, s, root) for s in schema["oneOf"]) != 1:
        return False
    if "anyOf" in schema and not any(_validate(value, s, root) for s in schema["anyOf"]):
        return False
    if check_schema(value, {k: v for k, v in schema.items() if k not in ("properties", "items",
                                                                        "additionalProperties")}, "v"):
        return False
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                if not _validate(item, properties[key], root):
                    return False
            elif schema.get("additionalProperties") is False:
                return False
            elif isinstance(schema.get("additionalProperties"), dict):
                if not _validate(item, schema["additionalProperties"], root):
                    return False
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return all(_validate(item, schema["items"], root) for item in value)
    return True


def test_json_schema_describes_the_json_form():
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert [v["properties"]["type"]["const"] for v in schema["$defs"]["step"]["oneOf"]] == list(STEP_TYPES)
    json.dumps(schema)  # plain JSON
    example = json.loads(EXAMPLE.read_text())
    assert _validate(example, schema, schema)
    assert _validate(to_json(parse_definition(example)), schema, schema)
    assert _validate(to_json(parse_definition(BASE)), schema, schema)
    assert not _validate({**example, "colour": "red"}, schema, schema)
    assert not _validate({**example, "steps": [{"id": "a", "type": "end", "next": "b"}]}, schema, schema)


def test_json_schema_patterns_are_portable_regular_expressions():
    for pattern in re.findall(r'"pattern": "((?:[^"\\]|\\.)*)"', json.dumps(json_schema())):
        assert "(?P<" not in pattern
        re.compile(json.loads(f'"{pattern}"'))


def test_json_schema_includes_plugin_step_types():
    schema = json_schema({"send_sms": SMS_SCHEMA})
    [variant] = [v for v in schema["$defs"]["step"]["oneOf"]
                 if v["properties"]["type"]["const"] == "send_sms"]
    assert variant["required"] == ["id", "type", "to", "text"] and "next" in variant["properties"]


# --- round trips of generated definitions -------------------------------------------------------------------

durations = st.integers(1, 10**7).map(lambda s: f"PT{s}S") | st.sampled_from(["PT0.5S", "P1DT2H", "P2W"])
texts = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="{}"),
                min_size=1, max_size=10)


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    """A random valid definition: a chain of steps ending in `end`, with a card/wait pair and a branch."""
    count = draw(st.integers(0, 6))
    kinds = draw(st.lists(st.sampled_from(["push", "delay", "http_request", "update_customer", "card"]),
                          min_size=count, max_size=count))
    steps: list[dict[str, Any]] = []
    for index, kind in enumerate(kinds):
        step: dict[str, Any] = {"id": f"s{index}", "type": kind}
        if kind == "push":
            step |= {"title": draw(texts), "body": "{{variables.v}} " + draw(texts),
                     "data": draw(st.dictionaries(st.sampled_from(["a", "b"]), texts, max_size=2))}
        elif kind == "delay":
            step["duration"] = draw(durations)
        elif kind == "http_request":
            step |= {"url": "https://api.example/{{customer.userId}}", "method": draw(st.sampled_from(
                ["GET", "POST", "DELETE"])),
                "body": draw(st.one_of(st.none(), st.dictionaries(texts, texts))),
                "retries": draw(st.integers(0, 5)), "allowFailure": draw(st.booleans()),
                "timeout": draw(st.sampled_from(["PT1S", "PT10S", "PT0.25S", "PT1M"]))}
        elif kind == "update_customer":
            step |= {"fields": {"plan": draw(st.one_of(st.none(), st.booleans(), st.integers(), texts))},
                     "addTags": draw(st.lists(st.sampled_from(["a", "b"]), max_size=2, unique=True))}
        else:
            step["template"] = "t"
        steps.append(step)
    steps += [
        {"id": "card", "type": "card", "template": "t"},
        {"id": "wait", "type": "wait_for", "card": "card", "events": draw(st.sampled_from(
            [["card-completed"], ["card-dismissed", "card-expired"]])),
         **({"timeout": draw(durations), "onTimeout": "end"} if draw(st.booleans()) else {})},
        {"id": "check", "type": "branch", "cases": [{"when": "steps.card.values.ok == true", "next": "end"}],
         **({"default": "end"} if draw(st.booleans()) else {})},
        {"id": "end", "type": "end"},
    ]
    for step, following in zip(steps, steps[1:], strict=False):
        if step["type"] not in ("branch", "end"):
            step["next"] = following["id"]
    variable_type = draw(st.sampled_from(["string", "number", "boolean", "date", "object"]))
    default = {"string": "x", "number": 2.5, "boolean": False, "date": "2026-01-01T10:00:00+01:00",
               "object": {"k": [1]}}[variable_type]
    return {
        "name": draw(texts), "description": draw(st.text(max_size=20)),
        "variables": [{"name": "v", "type": variable_type,
                       "default": default if draw(st.booleans()) else None,
                       "overridable": draw(st.booleans())}],
        "cardTemplates": [{"id": "t", "name": draw(texts), "priority": draw(st.integers(1, 10)),
                           "expiresIn": draw(st.one_of(st.none(), durations)),
                           "embargoFor": draw(st.one_of(st.none(), durations)),
                           "elements": [{"type": "text", "text": draw(texts)},
                                        {"type": "input", "inputType": "toggle", "id": "ok", "label": "OK"}],
                           "push": draw(st.one_of(st.none(), st.just({"title": "T", "body": "B"})))}],
        "steps": steps,
        "triggers": draw(st.fixed_dictionaries(
            {}, optional={"customerCenter": st.booleans(), "api": st.booleans()})),
    }


@settings(max_examples=150, deadline=None)
@given(definitions())
def test_any_valid_definition_round_trips_through_json(raw):
    definition = parse_definition(raw)
    data = to_json(definition)
    assert parse_definition(data) == definition
    assert to_json(parse_definition(data)) == data
    assert json.loads(json.dumps(data)) == data
    schema = json_schema()
    assert _validate(data, schema, schema)


# --- hostile input ---------------------------------------------------------------------------------------

json_leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
                        st.sampled_from(["PT1M", "end", "ask", "{{variables.amount}}", "{{x y}}", "card"]))
json_values = st.recursive(json_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=8)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_mutation_of_a_valid_definition_parses_or_raises_flow_error(data):
    raw = json.loads(EXAMPLE.read_text())
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(raw)))
        replacement = data.draw(json_values)
        if not path:
            raw = replacement
            continue
        parent = raw
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = replacement
    try:
        definition = parse_definition(raw)
    except FlowError as exc:
        assert exc.issues and all(isinstance(issue, FieldIssue) for issue in exc.issues)
    else:
        assert parse_definition(to_json(definition)) == definition


def test_the_example_in_the_docs_is_a_valid_definition():
    docs = (EXAMPLE.parents[2] / "docs" / "flows.md").read_text()
    block = re.search(r"## A complete example.*?```json\n(.*?)```", docs, re.DOTALL)
    assert block is not None
    definition = parse_definition(json.loads(block.group(1)))
    assert definition.name == "Fraud alert" and not definition.allows("list")


def test_a_definition_without_steps_is_refused_naming_steps():
    import pytest

    from hub.core.flows import FlowError, parse_definition

    with pytest.raises(FlowError) as error:
        parse_definition({"name": "x"})
    assert any(issue.field == "steps" and "required" in issue.reason for issue in error.value.issues)


# --- push platforms plugins add (hub_register_push_platforms) ------------------------------------


def test_a_push_step_may_name_a_platform_a_plugin_added_and_no_other():
    step = {"id": "s", "type": "push", "title": "t", "body": "b", "platforms": ["android", "pager"]}
    definition = parse_definition(minimal(step), push_platforms=["pager"])
    assert definition.step("s").config["platforms"] == ["android", "pager"]
    assert issues_of(minimal(step)) == [FieldIssue(
        "steps[0].platforms[1]", "unknown push platform 'pager' (known: ios, android, web; a plugin adds "
                                 "one with hub_register_push_platforms)")]
    typo = {**step, "platforms": ["pagr"]}
    assert issues_of(minimal(typo), push_platforms=["pager"]) == [FieldIssue(
        "steps[0].platforms[0]", "unknown push platform 'pagr' (known: ios, android, web, pager; a plugin "
                                 "adds one with hub_register_push_platforms)")]


def test_a_card_push_names_extra_platforms_a_plugin_added_and_keeps_them_through_json():
    raw = copy.deepcopy(BASE)
    raw["cardTemplates"][0]["push"] = {"title": "Pay?", "body": "{{variables.amount}}",
                                       "extraPlatforms": ["pager", "pager"]}
    definition = parse_definition(raw, push_platforms=["pager"])
    assert definition.template("ask").push == {"title": "Pay?", "body": "{{variables.amount}}",
                                               "extraPlatforms": ["pager"]}
    assert parse_definition(to_json(definition), push_platforms=["pager"]) == definition
    raw["cardTemplates"][0]["push"]["extraPlatforms"] = ["ios", "pagr"]
    assert issues_of(raw, push_platforms=["pager"]) == [
        FieldIssue("cardTemplates[0].push.extraPlatforms[0]",
                   "'ios' is a card platform: list it in the template's platforms"),
        FieldIssue("cardTemplates[0].push.extraPlatforms[1]",
                   "unknown push platform 'pagr' (known: pager; a plugin adds one with "
                   "hub_register_push_platforms)")]
    raw["cardTemplates"][0]["push"]["extraPlatforms"] = ["pager"]
    assert fields_of(raw) == ["cardTemplates[0].push.extraPlatforms[0]"]  # no plugin added it


def test_the_schema_lists_the_push_platforms_plugins_added():
    push = next(v for v in json_schema(push_platforms=["pager"])["$defs"]["step"]["oneOf"]
                if v["properties"]["type"] == {"const": "push"})
    assert push["properties"]["platforms"]["items"] == {"enum": ["ios", "android", "web", "pager"]}

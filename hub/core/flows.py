"""Flow definitions: the JSON a flow author writes, checked whole, and the typed form the engine runs.

:func:`parse_definition` reads the JSON form (camelCase keys) and raises :class:`FlowError` with
*every* problem it finds, each named by a path (``steps[2].next``,
``cardTemplates[0].elements[3].options``). Beyond the shape of each part it checks the
definition as a whole: every reference resolves, every step is reachable from ``start``, no cycle
can spin without a ``wait_for`` or ``delay``, and every placeholder and branch expression names a
defined variable or an existing step. :func:`to_json` gives the JSON form back;
``parse_definition(to_json(d)) == d``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from hub.core.cards import RENDERED_KEYS, CardTemplate, parse_card_template, template_schema, template_to_json
from hub.core.customers import FieldIssue
from hub.core.expressions import compile_expression
from hub.core.flow_steps import (
    NO_NEXT,
    STEP_ID,
    STEP_ID_SCHEMA,
    STEP_TYPES,
    WAITING_STEPS,
    config_to_json,
    parse_step_config,
    step_field_schemas,
    step_targets,
)
from hub.core.templates import malformed_placeholders, placeholders, strings
from hub.core.variables import VariableDef, parse_variable, variable_schema, variable_to_json

__all__ = ["SOURCES", "STEP_TYPES", "CardTemplate", "FlowDefinition", "FlowError", "Step", "Triggers",
           "VariableDef", "json_schema", "parse_definition", "to_json"]

SOURCES = ("api", "test", "webhook", "sfmc", "marketo", "list", "customer_center")
DEFINITION_KEYS = ("name", "description", "variables", "cardTemplates", "steps", "start", "triggers")
TRIGGER_KEYS = {"api": "api", "test": "test", "webhook": "webhook", "sfmc": "sfmc", "marketo": "marketo",
                "list": "list", "customerCenter": "customer_center"}
CONTEXT_ROOTS = {"variables": None, "customer": ("userId", "fields", "tags"), "steps": None,
                 "invocation": ("id", "metadata", "source")}
# Steps whose strings are rendered with the context (card templates are checked on their own).
RENDERED_STEPS = ("push", "http_request", "update_customer")
NAME_MAX = 200
DESCRIPTION_MAX = 5000
MAX_STEPS = 500
MAX_TEMPLATES = 100
MAX_VARIABLES = 200


class FlowError(ValueError):
    """A flow definition is not valid; ``issues`` names every problem found."""

    def __init__(self, issues: list[FieldIssue]):
        super().__init__("; ".join(f"{issue.field}: {issue.reason}" for issue in issues))
        self.issues = issues


class Step(msgspec.Struct, kw_only=True, frozen=True):
    """One step: ``config`` holds the type's own fields, checked and normalised (durations in
    seconds: ``delay`` → ``seconds``, ``wait_for``/``http_request`` → ``timeoutSeconds``)."""

    id: str
    type: str
    next: str | None = None
    config: dict[str, Any] = msgspec.field(default_factory=dict)


class Triggers(msgspec.Struct, kw_only=True, frozen=True):
    """Which sources may start the flow (JSON key ``customerCenter`` for ``customer_center``)."""

    api: bool = True
    test: bool = True
    webhook: bool = True
    sfmc: bool = True
    marketo: bool = True
    list: bool = True
    customer_center: bool = False


class FlowDefinition(msgspec.Struct, kw_only=True, frozen=True):
    """A checked flow definition, as the engine runs it."""

    name: str
    description: str = ""
    variables: list[VariableDef] = msgspec.field(default_factory=list)
    card_templates: list[CardTemplate] = msgspec.field(default_factory=list)
    steps: list[Step] = msgspec.field(default_factory=list)
    start: str
    triggers: Triggers = msgspec.field(default_factory=Triggers)

    def step(self, step_id: str) -> Step:
        """The step with this id; KeyError if there is none."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def template(self, template_id: str) -> CardTemplate:
        """The card template with this id; KeyError if there is none."""
        for template in self.card_templates:
            if template.id == template_id:
                return template
        raise KeyError(template_id)

    def variable(self, name: str) -> VariableDef:
        """The variable with this name; KeyError if there is none."""
        for variable in self.variables:
            if variable.name == name:
                return variable
        raise KeyError(name)

    def allows(self, source: str) -> bool:
        """Whether a trigger from ``source`` (one of :data:`SOURCES`) may start this flow."""
        return source in SOURCES and bool(getattr(self.triggers, source))


# --- parsing ----------------------------------------------------------------------------------


def parse_definition(raw: Any, step_types: Mapping[str, Mapping[str, Any]] | None = None,
                     push_platforms: Sequence[str] = ()) -> FlowDefinition:
    """The checked definition from its JSON form; raises :class:`FlowError` with all issues.

    ``step_types`` maps a plugin step type's name to the JSON Schema of its config; built-in
    type names cannot be overridden. ``push_platforms`` are the push platforms plugins added
    (``hub_register_push_platforms``): push steps and card templates' pushes may name them.
    """
    if not isinstance(raw, Mapping):
        raise FlowError([FieldIssue("definition", "must be a JSON object")])
    issues = [FieldIssue(key, f"unknown key (expected one of {', '.join(DEFINITION_KEYS)})")
              for key in raw if key not in DEFINITION_KEYS]
    name, description = raw.get("name"), raw.get("description", "")
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX:
        issues.append(FieldIssue("name", f"must be a non-empty string of at most {NAME_MAX} characters"))
    if not isinstance(description, str) or len(description) > DESCRIPTION_MAX:
        issues.append(FieldIssue("description", f"must be a string of at most {DESCRIPTION_MAX} characters"))
    variables, variable_names = _parse_list(raw, "variables", MAX_VARIABLES, parse_variable, "name",
                                            "variable", issues)
    def parse_template(item: Any, path: str) -> tuple[CardTemplate | None, list[FieldIssue]]:
        return parse_card_template(item, path, push_platforms)

    templates, template_ids = _parse_list(raw, "cardTemplates", MAX_TEMPLATES, parse_template, "id",
                                          "card template", issues)
    plugin_types = {k: v for k, v in (step_types or {}).items() if k not in STEP_TYPES}

    def parse_step(item: Any, path: str) -> tuple[Step | None, list[FieldIssue]]:
        return _parse_step(item, path, plugin_types, push_platforms)

    steps, step_ids = _parse_list(raw, "steps", MAX_STEPS, parse_step, "id", "step", issues)
    if "steps" not in raw:
        issues.append(FieldIssue("steps", "required: a flow needs at least one step"))
    elif isinstance(raw.get("steps"), list) and not raw["steps"]:
        issues.append(FieldIssue("steps", "a flow needs at least one step"))
    start = raw.get("start")
    if start is None and step_ids:
        start = step_ids[0]
    elif start is not None and start not in step_ids:
        issues.append(FieldIssue("start", f"names no step ({start!r})"))
    triggers = _parse_triggers(raw.get("triggers", {}), issues)
    indexed = {step.id: (index, step) for index, step in steps}
    # The graph is only meaningful when every step parsed: a broken step would make its
    # successors look unreachable.
    whole = not any(issue.field.startswith("steps") for issue in issues)
    issues += _reference_issues(indexed, set(step_ids), set(template_ids))
    if whole and isinstance(start, str) and start in indexed and all(
            target in indexed for _, step in steps for _, target in _edges(step)):
        issues += _graph_issues(indexed, start)
    issues += _placeholder_issues(templates, steps, set(variable_names), set(step_ids))
    if issues:
        raise FlowError(issues)
    return FlowDefinition(
        name=str(name), description=str(description), variables=[v for _, v in variables],
        card_templates=[t for _, t in templates], steps=[s for _, s in steps], start=str(start),
        triggers=triggers)


def _parse_list(raw: Mapping[str, Any], key: str, limit: int, parse: Any, id_key: str, noun: str,
                issues: list[FieldIssue]) -> tuple[list[tuple[int, Any]], list[str]]:
    """Parse each item of ``raw[key]``; returns ``[(index, parsed)]`` and every id seen (valid
    items or not, so a reference to a broken item is not reported a second time)."""
    items = raw.get(key, [])
    if not isinstance(items, list):
        issues.append(FieldIssue(key, "must be a list"))
        return [], []
    if len(items) > limit:
        issues.append(FieldIssue(key, f"at most {limit} items"))
        return [], []
    parsed: list[tuple[int, Any]] = []
    ids: list[str] = []
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        path = f"{key}[{index}]"
        value, item_issues = parse(item, path)
        issues += item_issues
        item_id = item.get(id_key) if isinstance(item, Mapping) else None
        if isinstance(item_id, str):
            if item_id in first:
                issues.append(FieldIssue(f"{path}.{id_key}", f"duplicate {noun} {id_key} {item_id!r} "
                                                             f"(also {key}[{first[item_id]}])"))
                continue
            first[item_id] = index
            ids.append(item_id)
        if value is not None:
            parsed.append((index, value))
    return parsed, ids


def _parse_step(raw: Any, path: str, plugin_types: Mapping[str, Mapping[str, Any]],
                push_platforms: Sequence[str]) -> tuple[Step | None, list[FieldIssue]]:
    if not isinstance(raw, Mapping):
        return None, [FieldIssue(path, "must be an object")]
    issues: list[FieldIssue] = []
    step_id, type_, next_ = raw.get("id"), raw.get("type"), raw.get("next")
    if not isinstance(step_id, str) or not STEP_ID.fullmatch(step_id):
        issues.append(FieldIssue(f"{path}.id", "must start with a letter or '_' and hold only letters, "
                                               "digits and '_' (at most 64)"))
    if not isinstance(type_, str) or (type_ not in STEP_TYPES and type_ not in plugin_types):
        known = ", ".join([*STEP_TYPES, *sorted(plugin_types)])
        return None, [*issues, FieldIssue(f"{path}.type", f"unknown step type {type_!r} (one of {known})")]
    if next_ is not None:
        if type_ in NO_NEXT:
            hint = "use the cases and default" if type_ == "branch" else "an end step ends the instance"
            issues.append(FieldIssue(f"{path}.next", f"a {type_} step takes no next ({hint})"))
        elif not isinstance(next_, str) or not STEP_ID.fullmatch(next_):
            issues.append(FieldIssue(f"{path}.next", "must be a step id or null"))
    config, config_issues = parse_step_config(str(type_), raw, path, plugin_types.get(str(type_)),
                                              push_platforms)
    issues += config_issues
    if issues:
        return None, issues
    return Step(id=str(step_id), type=str(type_), next=next_, config=config), []


def _parse_triggers(raw: Any, issues: list[FieldIssue]) -> Triggers:
    if not isinstance(raw, Mapping):
        issues.append(FieldIssue("triggers", "must be an object"))
        return Triggers()
    values: dict[str, bool] = {}
    for key, value in raw.items():
        if key not in TRIGGER_KEYS:
            issues.append(FieldIssue(f"triggers.{key}",
                                     f"unknown trigger (one of {', '.join(TRIGGER_KEYS)})"))
        elif not isinstance(value, bool):
            issues.append(FieldIssue(f"triggers.{key}", "must be true or false"))
        else:
            values[TRIGGER_KEYS[key]] = value
    return Triggers(**values)


# --- whole-definition checks -------------------------------------------------------------------


def _edges(step: Step) -> list[tuple[str, str]]:
    """``[(field, target)]`` for every way out of a step."""
    targets = [("next", step.next)] if step.next else []
    return targets + step_targets(step.type, step.config)


def _reference_issues(steps: Mapping[str, tuple[int, Step]], step_ids: set[str],
                      template_ids: set[str]) -> list[FieldIssue]:
    issues = []
    for index, step in steps.values():
        path = f"steps[{index}]"
        for field, target in _edges(step):
            if target not in step_ids:
                issues.append(FieldIssue(f"{path}.{field}", f"names no step ({target!r})"))
            elif target == step.id and step.type == "parallel" and field != "next":
                issues.append(FieldIssue(f"{path}.{field}", "a parallel step cannot run itself"))
        if step.type == "card" and step.config["template"] not in template_ids:
            issues.append(FieldIssue(f"{path}.template",
                                     f"names no card template ({step.config['template']!r})"))
        if step.type == "wait_for":
            card = step.config["card"]
            if card in steps and steps[card][1].type != "card":
                issues.append(FieldIssue(f"{path}.card", f"{card!r} is a {steps[card][1].type} step, "
                                                         "not a card step"))
            elif card not in step_ids:
                issues.append(FieldIssue(f"{path}.card", f"names no step ({card!r})"))
    return issues


def _reachable(graph: Mapping[str, list[str]], start: str) -> list[str]:
    """Steps reachable from ``start`` (itself included) in breadth-first order."""
    seen = {start: None}
    queue = [start]
    for node in queue:
        for target in graph.get(node, []):
            if target not in seen:
                seen[target] = None
                queue.append(target)
    return list(seen)


def _graph_issues(steps: Mapping[str, tuple[int, Step]], start: str) -> list[FieldIssue]:
    graph = {step_id: [target for _, target in _edges(step)] for step_id, (_, step) in steps.items()}
    reachable = set(_reachable(graph, start))
    issues = [FieldIssue(f"steps[{index}]", f"step {step_id!r} is unreachable from the start step "
                                            f"{start!r}")
              for step_id, (index, _) in steps.items() if step_id not in reachable]
    # A cycle that never lets time pass would spin forever: look for cycles once waiting steps
    # are taken out of the graph.
    busy = {node: [t for t in targets if steps[t][1].type not in WAITING_STEPS]
            for node, targets in graph.items() if steps[node][1].type not in WAITING_STEPS}
    reported: set[str] = set()
    for node in sorted(busy, key=lambda n: steps[n][0]):
        if node in reported:
            continue
        cycle = _cycle_through(busy, node)
        if cycle is None:
            continue
        forward = set(_reachable(busy, node))
        reported |= {n for n in forward if node in _reachable(busy, n)}
        issues.append(FieldIssue(f"steps[{steps[node][0]}]", f"step {node!r} is on a cycle with no "
                                 "wait_for or delay step: " + " → ".join(cycle)))
    return issues


def _cycle_through(graph: Mapping[str, list[str]], node: str) -> list[str] | None:
    """The shortest path from ``node`` back to itself, as ``[node, ..., node]``, if any."""
    parents: dict[str, str] = {}
    queue = [node]
    for current in queue:
        for target in graph.get(current, []):
            if target == node:
                path = [current]
                while path[-1] != node:
                    path.append(parents[path[-1]])
                return [node, *reversed(path[:-1]), node] if current != node else [node, node]
            if target not in parents:
                parents[target] = current
                queue.append(target)
    return None


def _reference_reason(path: str, variables: set[str], step_ids: set[str]) -> str | None:
    """Why a context path cannot resolve in this definition, or None when it can."""
    segments = path.split(".")
    root = segments[0]
    if root not in CONTEXT_ROOTS:
        hint = " (a step's response is steps.<stepId>.response)" if root == "response" else ""
        return f"{path!r} starts with an unknown name: use variables., customer., steps. or " \
               f"invocation.{hint}"
    if len(segments) == 1:
        return None if root in ("customer", "invocation") else f"{path!r} needs a name after {root}."
    second = segments[1]
    allowed = CONTEXT_ROOTS[root]
    if allowed is not None and second not in allowed:
        return f"{path!r}: {root} has {', '.join(allowed)}"
    if root == "variables" and second not in variables:
        return f"{path!r} names no variable of this flow ({second!r})"
    if root == "steps" and second not in step_ids:
        return f"{path!r} names no step of this flow ({second!r})"
    return None


def _check_strings(value: Any, path: str, variables: set[str], step_ids: set[str]) -> Iterable[FieldIssue]:
    for where, text in strings(value, path):
        for bad in malformed_placeholders(text):
            yield FieldIssue(where, f"malformed placeholder {bad} (write {{{{variables.name}}}})")
        for placeholder in placeholders(text):
            reason = _reference_reason(placeholder, variables, step_ids)
            if reason is not None:
                yield FieldIssue(where, f"placeholder {reason}")


def _placeholder_issues(templates: list[tuple[int, CardTemplate]], steps: list[tuple[int, Step]],
                        variables: set[str], step_ids: set[str]) -> list[FieldIssue]:
    issues: list[FieldIssue] = []
    for index, template in templates:
        path = f"cardTemplates[{index}]"
        rendered = [{k: v for k, v in element.items() if k in RENDERED_KEYS} for element in template.elements]
        issues += _check_strings({"elements": rendered, "push": template.push}, path, variables, step_ids)
    for index, step in steps:
        path = f"steps[{index}]"
        if step.type == "branch":
            for case_index, case in enumerate(step.config["cases"]):
                for name in compile_expression(case["when"]).names():
                    reason = _reference_reason(name, variables, step_ids)
                    if reason is not None:
                        issues.append(FieldIssue(f"{path}.cases[{case_index}].when", reason))
        elif step.type in RENDERED_STEPS or step.type not in STEP_TYPES:
            # Paths follow the JSON form (``steps[2].timeout``), not the normalised config.
            issues += _check_strings(config_to_json(step.type, step.config), path, variables, step_ids)
    return issues


# --- the JSON form -----------------------------------------------------------------------------


def to_json(definition: FlowDefinition) -> dict[str, Any]:
    """The JSON form (camelCase) of a definition; :func:`parse_definition` reads it back equal."""
    steps = []
    for step in definition.steps:
        item: dict[str, Any] = {"id": step.id, "type": step.type}
        if step.type not in NO_NEXT:
            item["next"] = step.next
        item.update(config_to_json(step.type, step.config))
        steps.append(item)
    triggers = {key: getattr(definition.triggers, attr) for key, attr in TRIGGER_KEYS.items()}
    return {
        "name": definition.name, "description": definition.description,
        "variables": [variable_to_json(variable) for variable in definition.variables],
        "cardTemplates": [template_to_json(template) for template in definition.card_templates],
        "steps": steps, "start": definition.start, "triggers": triggers,
    }


def json_schema(step_types: Mapping[str, Mapping[str, Any]] | None = None,
                push_platforms: Sequence[str] = ()) -> dict[str, Any]:
    """JSON Schema (2020-12) of the JSON form; ``step_types`` adds plugin step types and
    ``push_platforms`` the push platforms plugins added.

    The schema describes the shape; :func:`parse_definition` also checks what a schema cannot
    (references, reachability, cycles, placeholders, expressions).
    """
    common = {"id": STEP_ID_SCHEMA, "next": {"anyOf": [STEP_ID_SCHEMA, {"type": "null"}]}}
    variants = []
    fields = dict(step_field_schemas(push_platforms))
    for name, schema in (step_types or {}).items():
        if name not in fields:
            fields[name] = {"properties": dict(schema.get("properties", {})),
                            "required": list(schema.get("required", []))}
    for name, spec in fields.items():
        properties = {"type": {"const": name}, **spec["properties"]}
        if name not in NO_NEXT:
            properties.update(common)
        else:
            properties["id"] = common["id"]
        variants.append({"type": "object", "additionalProperties": False,
                         "required": ["id", "type", *spec["required"]], "properties": properties})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://hub.dev/schemas/flow-definition.json",
        "title": "Hub flow definition",
        "type": "object", "additionalProperties": False, "required": ["name", "steps"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": NAME_MAX},
            "description": {"type": "string", "maxLength": DESCRIPTION_MAX, "default": ""},
            "variables": {"type": "array", "items": {"$ref": "#/$defs/variable"}, "maxItems": MAX_VARIABLES},
            "cardTemplates": {"type": "array", "items": {"$ref": "#/$defs/cardTemplate"},
                              "maxItems": MAX_TEMPLATES},
            "steps": {"type": "array", "items": {"$ref": "#/$defs/step"}, "minItems": 1,
                      "maxItems": MAX_STEPS},
            "start": {**STEP_ID_SCHEMA, "description": "the first step (default: the first in steps)"},
            "triggers": {"type": "object", "additionalProperties": False, "properties": {
                key: {"type": "boolean", "default": attr != "customer_center"}
                for key, attr in TRIGGER_KEYS.items()}},
        },
        "$defs": {"variable": variable_schema(), "cardTemplate": template_schema(),
                  "step": {"oneOf": variants}},
    }


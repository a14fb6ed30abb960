"""From an incoming body to core start requests, and core errors back to the body's paths.

With a mapping, a body is one start of the trigger's flow (:mod:`mapping`). Without one, the body
is a start request of the API itself (PROTOCOLS.md §1): one ``{"flowInvocationId"?, "target",
"payload"?}`` object or ``{"flows": [...]}``.

Idempotency: the mapping's ``idempotencyKey``, else the ``Idempotency-Key`` header, else the
Standard Webhooks ``webhook-id``. The key becomes the ``flowInvocationId``
``<trigger id>:<first 40 hex of SHA-256(key)>``, so the same event delivered twice (or twenty
times, concurrently) starts one invocation: the core returns the first one and starts nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import Any

from hub.core.customers import FieldIssue
from hub.services.triggers import TriggerError
from hub_plugins.webhooks.mapping import SECTIONS, apply_mapping, parse_mapping


def invocation_id(trigger_id: str, key: str) -> str:
    """The ``flowInvocationId`` of an event: the same (trigger, key) always gives the same id."""
    return f"{trigger_id}:{hashlib.sha256(key.encode()).hexdigest()[:40]}"


@dataclass
class Plan:
    """The start requests a body makes, and where each mapped value came from in the body."""

    items: list[dict[str, Any]]
    mapped: bool
    single: bool
    sources: dict[str, str] = field(default_factory=dict)


def plan_start(trigger_id: str, mapping_raw: Any, body: Any, *, max_users: int,
               header_key: str | None) -> tuple[Plan | None, list[FieldIssue]]:
    """The start requests for ``body``, or every reason it does not map (body paths named)."""
    mapping, issues = parse_mapping(mapping_raw)
    if issues:  # a stored mapping is checked when saved; a dry-run's candidate may be wrong
        return None, issues
    if mapping is None:
        return _unmapped(trigger_id, body, header_key)
    mapped, issues = apply_mapping(mapping, body, max_users=max_users, header_key=header_key)
    if issues:
        return None, issues
    item: dict[str, Any] = {"target": {"usersById": mapped.user_ids},
                            "payload": {s: mapped.values[s] for s in SECTIONS}}
    if mapped.idempotency_key is not None:
        item["flowInvocationId"] = invocation_id(trigger_id, mapped.idempotency_key)
    sources = dict(mapped.sources)
    if "userIds" in sources:
        sources["target.usersById"] = sources.pop("userIds")
    if "userId" in sources:
        sources["target.usersById"] = sources.pop("userId")
    return Plan([item], mapped=True, single=True, sources=sources), []


def _unmapped(trigger_id: str, body: Any, header_key: str | None) -> tuple[Plan | None, list[FieldIssue]]:
    if not isinstance(body, MappingABC):
        return None, [FieldIssue("body", "must be a JSON object: a start request, or {\"flows\": [...]} "
                                         "(or give the trigger a mapping)")]
    single = "flows" not in body
    items = [body] if single else body["flows"]
    if not isinstance(items, list) or not items:
        return None, [FieldIssue("flows", "must be a non-empty list of start requests")]
    out = []
    for index, item in enumerate(items):
        if isinstance(item, MappingABC) and "flowInvocationId" not in item and header_key is not None:
            key = header_key if single else f"{header_key}#{index}"
            item = {**item, "flowInvocationId": invocation_id(trigger_id, key)}
        out.append(item)
    return Plan(out, mapped=False, single=single), []


def translate(exc: TriggerError, plan: Plan, flow_id: str) -> tuple[int, list[FieldIssue]]:
    """The core's verdict on the start requests, as status and issues naming body paths."""
    if exc.status == 404:  # the trigger's flow was deleted since the trigger was made
        return 409, [FieldIssue("flowConfigId", f"the trigger's flow {flow_id!r} no longer exists")]
    if exc.status == 403:
        return 409, [FieldIssue("flowConfigId", f"flow {flow_id!r} does not allow webhook triggers "
                                                "(set triggers.webhook to true in its definition)")]
    if exc.status == 409:
        return 409, [FieldIssue("flowConfigId", str(exc))]
    issues = exc.issues or [FieldIssue("body", str(exc))]
    return exc.status, [_translate_issue(issue, plan) for issue in issues]


def _translate_issue(issue: FieldIssue, plan: Plan) -> FieldIssue:
    name = issue.field
    if plan.single and name.startswith("flows[0]."):
        name = name.removeprefix("flows[0].")
    if not plan.mapped:
        return FieldIssue(name, issue.reason)
    target = name.removeprefix("payload.")
    for known, source in plan.sources.items():
        if target == known or target.startswith(known + "[") or target.startswith(known + "."):
            return FieldIssue(source, f"{issue.reason} (mapped to {known})")
    if target.startswith("variables."):
        return FieldIssue(f"mapping.{target}", f"{issue.reason}: the trigger's mapping gives no value for it")
    return FieldIssue(f"mapping.{target}", issue.reason)

"""What the Workbench's flow pages show and share: the audit entry of a change, a readable view
of a definition, card previews, the issues of a refused definition, and share-link tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from hub.core.flow_steps import NO_NEXT, step_targets
from hub.core.templates import PLACEHOLDER, lookup, to_text
from hub_plugins.workbench import staff as staff_service
from hub_plugins.workbench.staff import Staff

SHARE_PURPOSE = b"hub workbench flow share link v1"
# Keys of a step that are shown as its own columns rather than among its options.
_STEP_KEYS = ("id", "type", "next")


async def audit(hub: Any, member: Staff, env: str, action: str, flow_id: str,
                detail: dict[str, Any] | None = None) -> None:
    """Record ``action`` on ``flow_id`` by ``member`` after a change made elsewhere (a test send:
    the trigger service's own transaction has committed it)."""
    async with hub.db.begin() as conn:
        await staff_service.record(conn, member, env, action, f"flow:{flow_id}", detail)


def recorder(member: Staff, env: str, action: str, detail: dict[str, Any] | None = None) -> Any:
    """An ``on_write`` for the flow service: the audit entry of ``action`` written in the change's
    own transaction, so the change and its entry commit (or roll back) together."""
    async def write(conn: Any, facts: dict[str, Any]) -> None:
        extra = {k: v for k, v in facts.items() if k != "flowConfigId"}
        await staff_service.record(conn, member, env, action, f"flow:{facts['flowConfigId']}",
                                   {**(detail or {}), **extra})
    return write


def issues_of(exc: Any) -> list[dict[str, str]]:
    """``[{"path", "reason"}]`` of an :class:`~hub.services.flows.InvalidFlow` (or anything
    carrying ``issues``), paths without the ``definition.`` prefix the editor's JSON does not have."""
    out = []
    for issue in getattr(exc, "issues", []):
        path = issue.field
        if path.startswith("definition."):
            path = path[len("definition."):]
        out.append({"path": path, "reason": issue.reason})
    return out or [{"path": "", "reason": str(exc)}]


def parse_json(text: str) -> tuple[Any, list[dict[str, str]]]:
    """The JSON document in ``text``, or the issue saying where it stops being JSON."""
    try:
        return json.loads(text), []
    except json.JSONDecodeError as exc:
        return None, [{"path": f"line {exc.lineno}, column {exc.colno}", "reason": f"not JSON: {exc.msg}"}]


def pretty(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


# --- the readable view ---------------------------------------------------------------------


def readable(definition: Mapping[str, Any]) -> dict[str, Any]:
    """Steps (type, id, where they go), variables and card templates of a stored definition."""
    steps = []
    for step in definition.get("steps", []):
        options = {k: v for k, v in step.items() if k not in _STEP_KEYS}
        try:
            targets = step_targets(step.get("type", ""), step)
        except (KeyError, TypeError):
            targets = []
        steps.append({"id": step.get("id"), "type": step.get("type"),
                      "next": None if step.get("type") in NO_NEXT else step.get("next"),
                      "targets": targets, "options": options})
    variables = [{"name": v.get("name"), "type": v.get("type"), "default": v.get("default"),
                  "required": bool(v.get("required")), "overridable": v.get("overridable", True),
                  "description": v.get("description", "")} for v in definition.get("variables", [])]
    templates = [{"id": t.get("id"), "name": t.get("name"), "priority": t.get("priority"),
                  "streams": t.get("streams", ["default"]), "platforms": t.get("platforms", []),
                  "push": t.get("push"), "card": preview_card(t, definition.get("variables", []))}
                 for t in definition.get("cardTemplates", [])]
    triggers = [key for key, on in (definition.get("triggers") or {}).items() if on]
    return {"steps": steps, "variables": variables, "templates": templates, "triggers": triggers,
            "start": definition.get("start")}


# --- card previews -------------------------------------------------------------------------


def _fill(value: Any, context: Mapping[str, Any]) -> Any:
    """Placeholders with a value in ``context`` filled in; the others left as ``{{path}}``."""
    if isinstance(value, str):
        def one(match: Any) -> str:
            found = lookup(context, match.group(1))
            return match.group(0) if found is None else to_text(found)
        return PLACEHOLDER.sub(one, value)
    if isinstance(value, list):
        return [_fill(item, context) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, context) for key, item in value.items()}
    return value


def preview_card(template: Mapping[str, Any], variables: list[Mapping[str, Any]]) -> dict[str, Any]:
    """A feed-shaped card (as ``/feed`` gives it to the SDK) of ``template``: placeholders of
    variables with a default show the default, every other placeholder shows as written."""
    defaults = {v["name"]: v["default"] for v in variables
                if isinstance(v, Mapping) and v.get("default") is not None and "name" in v}
    content = {"templateId": template.get("id"), "name": template.get("name"),
               "elements": _fill(template.get("elements", []), {"variables": defaults}),
               "push": _fill(template.get("push"), {"variables": defaults})}
    return {"cardInstanceId": f"preview-{template.get('id')}", "status": "active",
            "priority": template.get("priority", 5), "targetStreamIds": ["default"],
            "targetPlatforms": ["web"], "templateId": template.get("id"),
            "templateName": template.get("name"), "content": content, "values": {},
            "createdAt": None, "updatedAt": None}


# --- share links ---------------------------------------------------------------------------


def _share_key(hub: Any) -> bytes:
    return hmac.new(hub.secret_key.encode(), SHARE_PURPOSE, hashlib.sha256).digest()


def share_token(hub: Any, env: str, flow_id: str, version: int) -> str:
    """``<env/flow/version, base64url>.<HMAC-SHA256 of it>``: names one version, unforgeable."""
    body = base64.urlsafe_b64encode(f"{env}/{flow_id}/{version}".encode()).decode().rstrip("=")
    mac = hmac.new(_share_key(hub), body.encode(), hashlib.sha256).digest()
    return f"{body}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def read_share_token(hub: Any, token: str) -> tuple[str, str, int] | None:
    """(env, flow id, version) a token from :func:`share_token` names, or None if it is not one."""
    body, _, mac = token.partition(".")
    if not body or not mac or len(token) > 400:
        return None
    expected = hmac.new(_share_key(hub), body.encode(), hashlib.sha256).digest()
    try:
        given = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
        env, flow_id, version = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode().split("/")
    except (ValueError, UnicodeDecodeError):
        return None
    if not hmac.compare_digest(given, expected) or not version.isdigit():
        return None
    return env, flow_id, int(version)

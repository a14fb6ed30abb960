"""The ``config.json`` documents Journey Builder loads: the custom activity and the decision split.

Generated per environment from its settings (timeout, retries, concurrency) and its activity URL,
in the shape of the official example (``salesforce-marketingcloud/sfmc-example-jb-custom-activity``).
"""

from __future__ import annotations

from typing import Any

from hub_plugins.salesforce_mc.config import ActivityConfig

WORKFLOW_API_VERSION = "1.1"
LIFECYCLE = ("save", "publish", "validate", "stop")
# The decision split's outcomes, checked in this order; the first that holds is the branch.
OUTCOMES = (("open_card", "Has an open card of the flow"),
            ("push_device", "Has a valid push device"),
            ("seen_recently", "Seen in the app recently"),
            ("not_reachable", "None of these"))
DEFAULT_SEEN_DAYS = 30


def _text(name: str) -> dict[str, Any]:
    return {name: {"dataType": "Text", "isNullable": False, "direction": "out", "access": "visible"}}


def _common(url: str, config: ActivityConfig, kind: str) -> dict[str, Any]:
    return {
        "workflowApiVersion": WORKFLOW_API_VERSION,
        "metaData": {"icon": f"{url}/icon.png", "iconSmall": f"{url}/icon-small.png",
                     "category": "message" if kind == "REST" else "flow",
                     "isConfigured": False, "configOnDrop": True},
        "type": kind,
        "configurationArguments": {name: {"url": f"{url}/{name}", "useJwt": True} for name in LIFECYCLE},
        "userInterfaces": {"configModal": {"height": 560, "width": 720, "fullscreen": False},
                           "configInspector": {"size": "scm-lg", "emptyIframe": True}},
    }


def _execute(url: str, config: ActivityConfig, out: list[dict[str, Any]], in_: list[dict[str, Any]]
             ) -> dict[str, Any]:
    return {"inArguments": in_, "outArguments": out, "url": f"{url}/execute", "verb": "POST",
            "useJwt": True, "timeout": config.timeout_ms, "retryCount": config.retry_count,
            "retryDelay": config.retry_delay_ms, "concurrentRequests": config.concurrent_requests}


def activity(url: str, config: ActivityConfig) -> dict[str, Any]:
    """The custom activity: starts a Hub flow for each contact."""
    document = _common(url, config, "REST")
    document["lang"] = {"en-US": {"name": "Hub flow",
                                  "description": "Start a Hub flow (action cards, push) for the contact."}}
    out = [{"flowInvocationId": ""}, {"reachable": ""}]
    document["arguments"] = {"execute": _execute(url, config, out, [{"flowConfigId": ""}])}
    document["schema"] = {"arguments": {"execute": {
        "inArguments": [],
        "outArguments": [_text("flowInvocationId"),
                         {"reachable": {"dataType": "Boolean", "isNullable": False, "direction": "out",
                                        "access": "visible"}}]}}}
    return document


def split(url: str, config: ActivityConfig) -> dict[str, Any]:
    """The decision split: one branch per fact Hub knows about the contact."""
    document = _common(url, config, "RESTDECISION")
    document["lang"] = {"en-US": {"name": "Hub reachability split",
                                  "description": "Branch on what Hub knows: open cards, push devices, "
                                                 "app activity."}}
    document["arguments"] = {"execute": _execute(
        url, config, [], [{"flowConfigId": ""}, {"seenWithinDays": str(DEFAULT_SEEN_DAYS)}])}
    document["outcomes"] = [{"arguments": {"branchResult": key}, "metaData": {"label": label}}
                            for key, label in OUTCOMES]
    document["schema"] = {"arguments": {"execute": {"inArguments": [], "outArguments": []}}}
    return document

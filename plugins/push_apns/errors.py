"""APNs' answers mapped to the push contract's statuses (PROTOCOLS.md §5, docs/push-apns.md).

| APNs answer                                        | status          |
| 200                                                | sent            |
| 410 Unregistered / ExpiredToken (any 410)          | invalid_device  |
| 400 BadDeviceToken / DeviceTokenNotForTopic        | invalid_device  |
| 403 ExpiredProviderToken / InvalidProviderToken    | mint a new provider token once and resend (the
|                                                    | caller); a second refusal is failed |
| 429 TooManyRequests (any 429)                      | retry, retryAfter = Retry-After or 60 s |
| 500, 503 and other 5xx                             | retry, retryAfter = Retry-After or None |
| GOAWAY, connection lost                            | resend once on a new connection (the caller),
|                                                    | then retry |
| any other 4xx (PayloadTooLarge, BadTopic, ...)     | failed, with the reason |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from hub_plugins.push_fcm.errors import retry_after

__all__ = ["ApnsFailure", "classify", "parse_failure", "result", "retry_after"]

INVALID_DEVICE_REASONS = frozenset({"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered",
                                    "ExpiredToken"})
PROVIDER_TOKEN_REASONS = frozenset({"ExpiredProviderToken", "InvalidProviderToken"})
_HINTS = {
    "BadDeviceToken": "the token is malformed, or belongs to the other APNs environment (a development "
                      "build's token sent to production, or the reverse)",
    "DeviceTokenNotForTopic": "the token belongs to another app than the topic",
    "Unregistered": "the app was uninstalled, or the token is no longer active for the topic",
    "ExpiredToken": "the token has expired",
    "TopicDisallowed": "the key's team may not push to this topic",
    "BadTopic": "the topic is not a valid bundle id",
    "MissingTopic": "no apns-topic was sent",
    "PayloadTooLarge": "the payload is over 4096 bytes",
    "Forbidden": "the key may not send this notification",
}


@dataclass(frozen=True)
class ApnsFailure:
    """An error answer of ``POST /3/device/{token}``: ``{"reason", "timestamp"?}``."""

    http_status: int
    reason: str  # Apple's reason, or the HTTP status when the body held none
    timestamp: int | None  # 410: milliseconds since the epoch when the token stopped being valid

    @property
    def needs_new_provider_token(self) -> bool:
        return self.http_status == 403 and self.reason in PROVIDER_TOKEN_REASONS

    def describe(self) -> str:
        said = f"APNs answered {self.http_status} {self.reason}"
        hint = _HINTS.get(self.reason)
        if hint:
            said += f": {hint}"
        if self.timestamp is not None:
            when = datetime.fromtimestamp(self.timestamp / 1000, UTC).isoformat(timespec="seconds")
            said += f" (since {when.replace('+00:00', 'Z')})"
        return said


def parse_failure(response: httpx.Response) -> ApnsFailure:
    """The ``{"reason"}`` body; a body that is not one (a proxy's page) still gives the status."""
    try:
        body = response.json()
    except ValueError:
        body = None
    reason = body.get("reason") if isinstance(body, dict) else None
    timestamp = body.get("timestamp") if isinstance(body, dict) else None
    return ApnsFailure(response.status_code,
                       reason[:100] if isinstance(reason, str) and reason else str(response.status_code),
                       timestamp if isinstance(timestamp, int) and not isinstance(timestamp, bool) else None)


def result(status: str, detail: str, *, retry_after: float | None = None,
           message_id: str | None = None) -> dict[str, Any]:
    """A ``hub_send_push`` result of the contract."""
    return {"status": status, "provider": "apns", "detail": detail, "retryAfter": retry_after,
            "providerMessageId": message_id}


def classify(response: httpx.Response, failure: ApnsFailure, throttle_retry_seconds: float) -> dict[str, Any]:
    """The result for an error answer other than a provider-token refusal a new token may cure."""
    http, reason = failure.http_status, failure.reason
    said = failure.describe()
    if http == 410 or (http == 400 and reason in INVALID_DEVICE_REASONS):
        return result("invalid_device", said)
    if http == 429:
        wait = retry_after(response)
        return result("retry", said, retry_after=throttle_retry_seconds if wait is None else wait)
    if http >= 500:
        return result("retry", said, retry_after=retry_after(response))
    return result("failed", said)

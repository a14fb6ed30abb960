"""FCM's answers mapped to the push contract's statuses (PROTOCOLS.md §4, docs/push-fcm.md).

| FCM answer                                   | status          |
| 200                                          | sent            |
| 404 UNREGISTERED                             | invalid_device  |
| 400 INVALID_ARGUMENT about the token         | invalid_device  |
| 400 INVALID_ARGUMENT about anything else     | failed          |
| 403 SENDER_ID_MISMATCH                       | invalid_device  |
| 401/403 THIRD_PARTY_AUTH_ERROR               | failed          |
| 401 otherwise                                | refresh the access token once and resend (the
|                                              | caller); a second 401 is failed |
| 429 QUOTA_EXCEEDED                           | retry, retryAfter = max(60 s, Retry-After) |
| 500, 503 and other 5xx; network errors        | retry, retryAfter = Retry-After or None |
| any other 4xx                                | failed          |
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import Any

import httpx

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
QUOTA_MIN_WAIT = 60.0
"""§4: after QUOTA_EXCEEDED back off at least a minute, whatever ``Retry-After`` says."""


@dataclass(frozen=True)
class FcmFailure:
    """An error answer of ``messages:send``, as parsed from its envelope."""

    http_status: int
    status: str  # the google.rpc status name: INVALID_ARGUMENT, UNAUTHENTICATED...
    error_code: str  # the FcmError errorCode, "" when absent
    message: str
    fields: tuple[str, ...]  # fieldViolations of a BadRequest detail

    @property
    def code(self) -> str:
        return self.error_code or self.status or str(self.http_status)

    @property
    def about_token(self) -> bool:
        """Whether an INVALID_ARGUMENT names the registration token (the device's fault)."""
        if "message.token" in self.fields:
            return True
        return not self.fields and "registration token" in self.message.lower()

    @property
    def needs_new_access_token(self) -> bool:
        return self.http_status == 401 and self.error_code != "THIRD_PARTY_AUTH_ERROR"


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date), None when absent."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def parse_failure(response: httpx.Response) -> FcmFailure:
    """The error envelope ``{"error": {"code", "message", "status", "details": [...]}}``; a body
    that is not one (a proxy's HTML page) still gives the HTTP status."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return FcmFailure(response.status_code, "", "", response.text[:200], ())
    error_code, fields = "", []
    for detail in error.get("details") or []:
        if not isinstance(detail, dict):
            continue
        if detail.get("@type") == FCM_ERROR_TYPE and isinstance(detail.get("errorCode"), str):
            error_code = detail["errorCode"]
        if detail.get("@type") == BAD_REQUEST_TYPE:
            fields.extend(str(v.get("field", "")) for v in detail.get("fieldViolations") or []
                          if isinstance(v, dict))
    return FcmFailure(response.status_code, str(error.get("status", "")), error_code,
                      str(error.get("message", ""))[:300], tuple(fields))


def result(status: str, detail: str, *, retry_after: float | None = None,
           message_id: str | None = None) -> dict[str, Any]:
    """A ``hub_send_push`` result of the contract."""
    return {"status": status, "provider": "fcm", "detail": detail, "retryAfter": retry_after,
            "providerMessageId": message_id}


def classify(response: httpx.Response, failure: FcmFailure, quota_retry_seconds: float) -> dict[str, Any]:
    """The result for an error answer other than a 401 that a new access token may cure.

    A 429 waits the longest of :data:`QUOTA_MIN_WAIT`, ``quota_retry_seconds`` and
    ``Retry-After`` (the dispatcher's backoff with jitter applies on top when it is longer).
    """
    code, http = failure.code, failure.http_status
    said = f"FCM answered {http} {code}" + (f": {failure.message}" if failure.message else "")
    if code == "UNREGISTERED":
        return result("invalid_device", f"FCM answered {http} UNREGISTERED: the token is no longer valid")
    if code == "SENDER_ID_MISMATCH":
        return result("invalid_device", said + " (the token belongs to another Firebase project than "
                                               "this environment's service account)")
    if http == 400 and failure.about_token:
        return result("invalid_device", said)
    if http == 429 or code == "QUOTA_EXCEEDED":
        wait = max(QUOTA_MIN_WAIT, quota_retry_seconds, retry_after(response) or 0.0)
        return result("retry", said, retry_after=wait)
    if http >= 500 or code in ("UNAVAILABLE", "INTERNAL"):
        return result("retry", said, retry_after=retry_after(response))
    if code == "THIRD_PARTY_AUTH_ERROR":
        return result("failed", said + " (the APNs certificate or web push key in the Firebase project "
                                       "is missing or invalid)")
    return result("failed", said)

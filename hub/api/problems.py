"""Every error answer is RFC 9457 ``application/problem+json``, naming the field and the reason.

Body: ``{"type", "title", "status", "detail", "errors": [{"field", "reason"}]}``. ``field`` is a
JSON path into the request (``users[3].preferences.timezone``), a query parameter
(``query.limit``), a path parameter (``path.userId``) or a header (``header.authorization``).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from hub.logging import get_logger

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://hub.dev/problems/"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


class FieldError(msgspec.Struct, frozen=True):
    field: str
    reason: str


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(self, status: int, detail: str, *, errors: list[FieldError] | None = None,
                 title: str | None = None, type: str | None = None,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.title = title or _TITLES.get(status, "Error")
        self.type = type or TYPE_BASE + self.title.lower().replace(" ", "-")
        self.headers = headers or {}
        self.extra = extra or {}


def invalid(field: str, reason: str, status: int = 422) -> Problem:
    """A one-field validation problem."""
    return Problem(status, f"{field}: {reason}", errors=[FieldError(field, reason)])


def problem_response(problem: Problem, request: Request[Any, Any, Any] | None = None) -> Response[Any]:
    body: dict[str, Any] = {
        "type": problem.type,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if request is not None:
        body["instance"] = request.url.path
    if problem.errors:
        body["errors"] = [{"field": e.field, "reason": e.reason} for e in problem.errors]
    body.update(problem.extra)
    request_id = request.scope.get("state", {}).get("request_id") if request is not None else None
    if request_id:
        body["requestId"] = request_id
    return Response(body, status_code=problem.status, media_type=PROBLEM_JSON,
                    headers=problem.headers)


_MSGSPEC_PATH = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)


def msgspec_field_error(exc: msgspec.ValidationError | msgspec.DecodeError, prefix: str = "") -> FieldError:
    """Turn msgspec's ``"Expected `int`, got `str` - at `$.users[0].age`"`` into a FieldError."""
    match = _MSGSPEC_PATH.match(str(exc))
    assert match is not None
    path = (match.group("path") or "").lstrip(".")
    reason = match.group("reason")
    field = f"{prefix}.{path}" if prefix and path else (path or prefix or "body")
    if reason.startswith("Object missing required field"):
        missing = reason.split("`")[1] if "`" in reason else ""
        field = f"{field}.{missing}" if field != "body" and missing else (missing or field)
        reason = "required"
    elif reason.startswith("Object contains unknown field"):
        unknown = reason.split("`")[1] if "`" in reason else ""
        field = f"{field}.{unknown}" if field != "body" and unknown else (unknown or field)
        reason = "unknown field (unknown fields are rejected)"
    return FieldError(field, reason)


def _validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors: list[FieldError] = []
    status = 422
    for item in exc.extra if isinstance(exc.extra, list) else []:
        message = str(item.get("message", "invalid")) if isinstance(item, dict) else str(item)
        key = str(item.get("key") or "") if isinstance(item, dict) else ""
        source = str(item.get("source") or "") if isinstance(item, dict) else ""
        if source == "body" or not source:
            fe = msgspec_field_error(msgspec.ValidationError(message))
            field = fe.field if fe.field != "body" else (key or "body")
            if "malformed" in message.lower() or "JSON is malformed" in message:
                status = 400
                field, reason = "body", "malformed JSON: " + message
            else:
                reason = fe.reason
        else:
            field, reason = f"{source}.{key}" if key else source, message
        errors.append(FieldError(field, reason))
    detail = str(exc.detail or "invalid request")
    if "malformed" in detail.lower() or "decode" in detail.lower():
        status = 400
    if not errors:
        errors.append(FieldError("body", detail))
    first = errors[0]
    return problem_response(Problem(status, f"{first.field}: {first.reason}", errors=errors), request)


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    detail = str(exc.detail or _TITLES.get(status, "error"))
    if status == 413:
        detail = "request body is larger than HUB_MAX_BODY_BYTES allows"
    return problem_response(Problem(status, detail, headers=dict(exc.headers or {})), request)


def _problem(request: Request[Any, Any, Any], exc: Problem) -> Response[Any]:
    return problem_response(exc, request)


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled_error", path=request.url.path, error=type(exc).__name__)
    return problem_response(
        Problem(HTTP_500_INTERNAL_SERVER_ERROR, "an internal error occurred; it has been logged"),
        request,
    )


def exception_handlers() -> dict[Any, Any]:
    return {
        Problem: _problem,
        ValidationException: _validation,
        HTTPException: _http,
        Exception: _internal,
    }

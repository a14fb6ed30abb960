"""Every error answer is RFC 9457 ``application/problem+json``, naming the field and the reason.

Body: ``{"type", "title", "status", "detail", "instance", "errors": [{"field", "reason"}],
"requestId"}``. ``field`` is a JSON path into the request body (``users[3].preferences.timezone``,
or ``body`` for the body as a whole), a query parameter (``query.limit``), a path parameter
(``path.userId``), a header (``header.content-type``), or ``path`` / ``method`` for a request
that matches no route. Every 4xx carries at least one entry in ``errors``; ``detail`` repeats the
first one as a sentence. A 5xx never tells the client more than that something failed, and the
``requestId`` to quote.

The user-facing description of this format is ``docs/errors.md``; keep the two in step.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.enums import ParamType
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    SerializationException,
    ValidationException,
)
from litestar.handlers import BaseRouteHandler
from litestar.params import BodyKwarg, ParameterKwarg
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from hub.logging import get_logger

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:hub:problem:"  # a URN, so it names no web page

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

# The field a 4xx names when whoever raised it named none.
_DEFAULT_FIELDS = {
    400: "body",
    401: "header.authorization",
    403: "header.authorization",
    404: "path",
    405: "method",
    409: "body",
    413: "body",
    415: "header.content-type",
    422: "body",
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


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def problem_response(problem: Problem, request: Request[Any, Any, Any] | None = None) -> Response[Any]:
    errors = list(problem.errors)
    if not errors and 400 <= problem.status < 500:
        errors = [FieldError(_DEFAULT_FIELDS.get(problem.status, "request"), problem.detail)]
    body: dict[str, Any] = {
        "type": problem.type,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if request is not None:
        body["instance"] = request.url.path
    if errors:
        body["errors"] = [{"field": e.field, "reason": e.reason} for e in errors]
    body.update(problem.extra)
    headers = dict(problem.headers)
    if request is not None:
        state = request.scope.setdefault("state", {})  # type: ignore[typeddict-item]
        request_id = state.get("request_id")
        if not request_id:
            # No route matched (404, 405), so the request-context middleware did not run: give the
            # answer a request id all the same, the client's own when it sent a usable one.
            given = request.headers.get("x-request-id", "")
            request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
            state["request_id"] = request_id
            headers.setdefault("x-request-id", request_id)
        body["requestId"] = request_id
    return Response(body, status_code=problem.status, media_type=PROBLEM_JSON, headers=headers)


# --- msgspec / Litestar validation messages -> field + reason ---------------------------------

_MSGSPEC_PATH = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_EXPECTED_GOT = re.compile(r"^Expected `(?P<want>[^`]+)`, got `(?P<got>[^`]+)`$")
_EXPECTED_CONSTRAINT = re.compile(r"^Expected `(?P<want>[^`]+)` (?P<rest>.+)$", re.S)
_TYPE_WORDS = {
    "int": "an integer", "float": "a number", "str": "a string", "bool": "a boolean",
    "array": "an array", "object": "an object", "null": "null", "bytes": "base64 bytes",
    "datetime": "an RFC 3339 date-time", "date": "an ISO 8601 date", "time": "an ISO 8601 time",
    "uuid": "a UUID", "decimal": "a decimal number", "duration": "an ISO 8601 duration",
}


def _type_words(name: str, *, drop_null: bool = False) -> str:
    parts = [p.strip() for p in name.split("|")]
    if drop_null and len(parts) > 1:
        parts = [p for p in parts if p != "null"]
    words = [_TYPE_WORDS.get(p, f"`{p}`") for p in parts]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def humanize(message: str, *, from_text: bool = False) -> str:
    """msgspec's ``Expected `int`, got `str``` in words: ``must be an integer, got a string``.

    ``from_text``: the value came from a query string, path or header, where every value is text
    and ``null`` is spelled by leaving the parameter out, so neither is worth mentioning.
    """
    message = message.strip()
    if match := _EXPECTED_GOT.match(message):
        want = _type_words(match["want"], drop_null=from_text)
        if match["want"].split("|")[0].strip() == "bool" and from_text:
            return "must be true or false"
        if from_text:
            return f"must be {want}"
        return f"must be {want}, got {_type_words(match['got'])}"
    if match := _EXPECTED_CONSTRAINT.match(message):
        return f"must be {_type_words(match['want'], drop_null=True)} {match['rest']}"
    if message.startswith("Invalid enum value"):
        return "not an allowed value: " + message.removeprefix("Invalid enum value").strip()
    if message.startswith("Invalid RFC3339 encoded datetime"):
        return "must be an RFC 3339 date-time"
    if message.startswith("Invalid "):
        return "invalid " + message.removeprefix("Invalid ").strip()
    return _lower_first(message)


def _lower_first(message: str) -> str:
    """``Input data was truncated`` -> ``input data was truncated``; ``JSON ...`` stays."""
    return message[:1].lower() + message[1:] if message[:2] != message[:2].upper() else message


def _join(prefix: str, path: str) -> str:
    if not prefix or prefix == "body":
        return "body" + path if path.startswith("[") else (path or "body")
    if not path:
        return prefix
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


def _body_error(message: str, path: str) -> FieldError:
    """An error at JSON path ``path`` of the body (``""`` for the body itself)."""
    if message.startswith("Object missing required field"):
        missing = message.split("`")[1] if "`" in message else ""
        return FieldError(_join(path, missing), "required")
    if message.startswith("Object contains unknown field"):
        unknown = message.split("`")[1] if "`" in message else ""
        return FieldError(_join(path, unknown), "unknown field (unknown fields are rejected)")
    return FieldError(path or "body", humanize(message))


def msgspec_field_error(exc: msgspec.ValidationError | msgspec.DecodeError, prefix: str = "") -> FieldError:
    """Turn msgspec's ``"Expected `int`, got `str` - at `$.users[0].age`"`` into a FieldError.

    ``prefix`` is where the decoded document sits in the request, e.g. ``users[3]``.
    """
    match = _MSGSPEC_PATH.match(str(exc))
    assert match is not None
    path = _join(prefix, (match.group("path") or "").lstrip("."))
    if not isinstance(exc, msgspec.ValidationError):  # a DecodeError that is not a ValidationError
        message = match.group("reason").removeprefix("JSON is malformed: ")
        return FieldError(path or "body", "malformed JSON: " + _lower_first(message))
    return _body_error(match.group("reason"), "" if path == "body" else path)


def _parameter_alias(request: Request[Any, Any, Any], key: str) -> tuple[str, str] | None:
    """(source, public name) of the handler's parameter ``key``: ``("query", "isTestUser")``."""
    handler = request.scope.get("route_handler")
    model = getattr(handler, "signature_model", None)
    field = getattr(model, "_fields", {}).get(key)
    if field is None:
        return None
    kwarg = field.kwarg_definition
    if isinstance(kwarg, BodyKwarg) or key == "data":
        return "body", ""
    if key in request.path_params:
        return "path", key
    if isinstance(kwarg, ParameterKwarg):
        return str(kwarg.param_type.value), kwarg.name or key
    return "query", key


def _validation_error(request: Request[Any, Any, Any], item: Any) -> FieldError:
    if not isinstance(item, dict):
        return FieldError("body", humanize(str(item)))
    message = str(item.get("message") or "invalid")
    key = str(item.get("key") or "")
    source = item.get("source")
    source = source.value if isinstance(source, ParamType) else str(source or "")
    first = re.split(r"[.\[]", key, maxsplit=1)[0]
    if source != "body" and first:
        resolved = _parameter_alias(request, first)
        if resolved is not None:
            source, name = resolved
            if source != "body":
                key = name + key[len(first):]
    if source == "body" or not source:
        if key == "data":  # the body as a whole
            key = ""
        if message == "'data'" or (not key and "missing required field `data`" in message):
            return FieldError("body", "required: send a JSON document")
        return _body_error(message, key)
    if source == "header":
        key = key.lower()
    if message.startswith("Object missing required field") or message.startswith("Missing required"):
        return FieldError(f"{source}.{key}", "required")
    return FieldError(f"{source}.{key}", humanize(message, from_text=True))


_MISSING_PARAMETER = re.compile(r"^Missing required (?P<source>\w+) parameter '(?P<name>[^']+)'")


def _validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    items = exc.extra if isinstance(exc.extra, list) else []
    errors = [_validation_error(request, item) for item in items]
    detail = str(exc.detail or "invalid request")
    if not errors and (missing := _MISSING_PARAMETER.match(detail)):
        source, name = missing["source"], missing["name"]
        errors.append(FieldError(f"{source}.{name.lower() if source == 'header' else name}", "required"))
    if not errors:
        errors.append(FieldError("body", humanize(detail)))
    return problem_response(Problem(422, _detail(errors), errors=errors), request)


def _detail(errors: list[FieldError]) -> str:
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{first.field}: {first.reason}{more}"


# --- content types --------------------------------------------------------------------------


def _media_type(request: ASGIConnection[Any, Any, Any, Any]) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def is_json_media_type(media_type: str) -> bool:
    return media_type == "application/json" or (media_type.startswith("application/")
                                                and media_type.endswith("+json"))


def _unsupported_media_type(given: str, expected: str = "application/json") -> Problem:
    reason = f"send {expected}" + (f", not {given}" if given else "")
    return Problem(415, f"header.content-type: {reason}",
                   errors=[FieldError("header.content-type", reason)],
                   headers={"Accept-Post": expected})


def _expected_body_media_type(handler: BaseRouteHandler) -> str | None:
    signature = getattr(handler, "parsed_fn_signature", None)
    data = signature.parameters.get("data") if signature is not None else None
    if data is None:
        return None
    kwarg = data.kwarg_definition
    media_type = getattr(kwarg, "media_type", "application/json") if kwarg is not None else "application/json"
    return str(getattr(media_type, "value", media_type))


async def json_body_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """415 for a body of another declared media type sent to a route that reads a JSON ``data``.

    A body sent without a ``Content-Type`` is read as JSON. Run for every request by
    :func:`hub.api.auth.request_guard`.
    """
    if _expected_body_media_type(handler) != "application/json":
        return
    given = _media_type(connection)
    if given and not is_json_media_type(given):
        headers = connection.headers
        if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
            raise _unsupported_media_type(given)


# --- exception handlers ---------------------------------------------------------------------


def _limit(request: Request[Any, Any, Any]) -> int | None:
    handler = request.scope.get("route_handler")
    resolve = getattr(handler, "resolve_request_max_body_size", None)
    try:
        return int(resolve()) if resolve is not None and resolve() is not None else None
    except (TypeError, ValueError):  # pragma: no cover - Litestar internals changed
        return None


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    headers = {str(k): str(v) for k, v in (exc.headers or {}).items()}
    if status >= 500:
        return _internal(request, exc)
    if isinstance(exc.__cause__, SerializationException) or (
            status == 400 and isinstance(exc.__cause__, msgspec.DecodeError)):
        given = _media_type(request)
        if given and not is_json_media_type(given):
            return problem_response(_unsupported_media_type(given), request)
        message = str(exc.detail or exc.__cause__).removeprefix("JSON is malformed: ")
        reason = "malformed JSON: " + _lower_first(message)
        return problem_response(Problem(400, f"body: {reason}", errors=[FieldError("body", reason)]),
                                request)
    if status == 413:
        limit = _limit(request)
        reason = (f"larger than {limit} bytes" if limit else "too large") + " (HUB_MAX_BODY_BYTES)"
        return problem_response(Problem(413, f"body: {reason}", errors=[FieldError("body", reason)],
                                        headers=headers), request)
    if isinstance(exc, NotFoundException) and request.scope.get("route_handler") is None:
        reason = f"no route matches {request.url.path}"
        return problem_response(Problem(404, reason, errors=[FieldError("path", reason)]), request)
    if isinstance(exc, MethodNotAllowedException):
        allowed = headers.get("allow", "")
        reason = f"{request.method} is not allowed here" + (f"; allowed: {allowed}" if allowed else "")
        return problem_response(Problem(405, reason, errors=[FieldError("method", reason)],
                                        headers=headers), request)
    detail = str(exc.detail or _TITLES.get(status, "error"))
    return problem_response(Problem(status, detail, headers=headers), request)


def _problem(request: Request[Any, Any, Any], exc: Problem) -> Response[Any]:
    if exc.status >= 500:
        log.warning("problem", status=exc.status, detail=exc.detail, path=request.url.path)
    return problem_response(exc, request)


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("unhandled_error", path=request.url.path, method=request.method,
              error=type(exc).__name__, exc_info=exc)
    status = getattr(exc, "status_code", HTTP_500_INTERNAL_SERVER_ERROR)
    if not isinstance(status, int) or status < 500:
        status = HTTP_500_INTERNAL_SERVER_ERROR
    detail = ("the service is unavailable; try again later" if status == 503
              else "an internal error occurred; it has been logged")
    return problem_response(Problem(status, detail), request)


def exception_handlers() -> dict[Any, Any]:
    return {
        Problem: _problem,
        ValidationException: _validation,
        HTTPException: _http,
        Exception: _internal,
    }

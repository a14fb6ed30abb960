"""List upload API: ``POST /v1/{env}/uploads``, ``GET /v1/{env}/uploads[/{id}[/errors.csv]]``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from hub.api.problems import FieldError, Problem, invalid
from hub.app import HubDep
from hub.services.flows import FLOW_ID
from hub_plugins.list_upload import service
from hub_plugins.list_upload.csvstream import MultipartSource, UploadRefused, boundary_of, counted
from hub_plugins.list_upload.receive import parse_mapping, receive_upload

TAGS = ["uploads"]
CSV_TYPES = ("text/csv", "application/csv", "text/plain", "application/vnd.ms-excel")
FORM_FIELDS = ("flowConfigId", "userColumn", "variable", "metadataColumn", "allowDuplicate")


class ColumnMappingOut(msgspec.Struct):
    userColumn: str
    variables: dict[str, str]
    metadataColumns: list[str]


class Upload(msgspec.Struct):
    uploadId: str
    flowConfigId: str
    filename: str | None
    state: str
    contentHash: str | None
    mapping: ColumnMappingOut
    rowsRead: int
    rowsValid: int
    rowsStarted: int
    rowsRejected: int
    error: str | None
    createdAt: str | None
    updatedAt: str | None
    queuedAt: str | None
    startedAt: str | None
    completedAt: str | None
    errorsUrl: str


class UploadPage(msgspec.Struct):
    uploads: list[Upload]
    nextCursor: str | None


def refused(exc: UploadRefused) -> Problem:
    return Problem(
        exc.status, f"{exc.field}: {exc.reason}", errors=[FieldError(exc.field, exc.reason)], extra=exc.extra
    )


def _flag(value: str, field: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no", ""):
        return False
    raise UploadRefused(422, field, "must be true or false")


@post(
    "/v1/{env:str}/uploads",
    opt={"permission": "flows:trigger"},
    tags=TAGS,
    status_code=202,
    request_max_body_size=None,
    summary="Upload a CSV list: start a flow for every row",
)
async def create_upload(
    request: Request[Any, Any, Any],
    hub: HubDep,
    env: FromPath[str],
    flow_config_id: Annotated[str | None, QueryParameter(name="flowConfigId")] = None,
    user_column: Annotated[
        str | None, QueryParameter(name="userColumn", description="Column holding the user id")
    ] = None,
    variable: Annotated[
        list[str] | None,
        QueryParameter(description="name:column, repeat for each flow variable mapped to a column"),
    ] = None,
    metadata_column: Annotated[
        list[str] | None,
        QueryParameter(
            name="metadataColumn", description="Column copied into the invocation's metadata; repeat"
        ),
    ] = None,
    allow_duplicate: Annotated[bool, QueryParameter(name="allowDuplicate")] = False,
    filename: Annotated[str | None, QueryParameter(max_length=255)] = None,
) -> Upload:
    """The body is the CSV itself (``Content-Type: text/csv``) with the mapping in the query, or
    ``multipart/form-data`` whose fields (the same names as the query parameters) come before a
    part named ``file``. The first row names the columns. The file is read as it arrives; rows
    are checked and stored, then a 202 answers with the upload (state ``queued``); workers start
    the rows. Bad rows are listed in ``errorsUrl``."""
    settings = hub.plugin_settings["list_upload"]
    media_type = request.headers.get("content-type", "")
    base = media_type.split(";")[0].strip().lower()
    try:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_bytes:
            raise UploadRefused(
                413, "body", f"is larger than {settings.max_bytes} bytes (HUB_LIST_UPLOAD_MAX_BYTES)"
            )
        seen = [0]
        stream = counted(request.stream(), settings.max_bytes, seen)
        if base == "multipart/form-data":
            source = MultipartSource(stream, boundary_of(media_type))
            form = await source.fields()
            unknown = sorted(set(form) - set(FORM_FIELDS))
            if unknown:
                raise UploadRefused(
                    422, f"form.{unknown[0]}", f"unknown field (fields: {', '.join(FORM_FIELDS)}, then file)"
                )
            origin = "form" if form else "query"
            if form:
                flow_config_id = (form.get("flowConfigId") or [flow_config_id])[0]
                user_column = (form.get("userColumn") or [user_column])[0]
                variable = form.get("variable", variable)
                metadata_column = form.get("metadataColumn", metadata_column)
                allow_duplicate = _flag(
                    (form.get("allowDuplicate") or [str(allow_duplicate)])[0], "form.allowDuplicate"
                )
            chunks: AsyncIterator[bytes] = source.file()
            filename = source.filename or filename
        elif base in CSV_TYPES or not base:
            charset = request.headers.get("content-type", "").lower().partition("charset=")[2].strip(' "')
            if charset and charset not in ("utf-8", "utf8", "us-ascii"):
                raise UploadRefused(415, "header.content-type", f"send UTF-8 CSV, not charset {charset}")
            origin, chunks = "query", stream
        else:
            raise UploadRefused(
                415, "header.content-type", f"send text/csv or multipart/form-data, not {base}"
            )
        if not flow_config_id:
            raise UploadRefused(422, f"{origin}.flowConfigId", "required: the flow to start for each row")
        mapping = parse_mapping(origin, user_column, variable or [], metadata_column or [])
        upload = await receive_upload(
            hub,
            env,
            flow_id=flow_config_id,
            mapping=mapping,
            chunks=chunks,
            filename=filename,
            allow_duplicate=allow_duplicate,
            source=origin,
        )
    except UploadRefused as exc:
        raise refused(exc) from None
    return msgspec.convert(upload, Upload)


@get(
    "/v1/{env:str}/uploads", opt={"permission": "flows:read"}, tags=TAGS, summary="List uploads, newest first"
)
async def list_uploads(
    hub: HubDep,
    env: FromPath[str],
    flow_config_id: Annotated[str | None, QueryParameter(name="flowConfigId", max_length=64)] = None,
    cursor: Annotated[str | None, QueryParameter(max_length=500)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> UploadPage:
    if flow_config_id is not None and not FLOW_ID.match(flow_config_id):
        raise invalid("query.flowConfigId", "must be a flow id (lowercase letters, digits, _ and -)")
    try:
        page = await service.list_uploads(
            hub, env, flow_id=flow_config_id, cursor=cursor, limit=min(limit, hub.settings.max_page_size)
        )
    except ValueError as exc:
        raise invalid("query.cursor", str(exc)) from None
    return msgspec.convert(page, UploadPage)


def _not_found(upload_id: str) -> Problem:
    return Problem(404, f"no upload {upload_id!r}", errors=[FieldError("path.uploadId", "no such upload")])


@get(
    "/v1/{env:str}/uploads/{upload_id:str}",
    opt={"permission": "flows:read"},
    tags=TAGS,
    summary="One upload and its progress",
)
async def get_upload(hub: HubDep, env: FromPath[str], upload_id: FromPath[str]) -> Upload:
    try:
        return msgspec.convert(await service.get_upload(hub, env, upload_id), Upload)
    except service.UploadNotFound:
        raise _not_found(upload_id) from None


@get(
    "/v1/{env:str}/uploads/{upload_id:str}/errors.csv",
    opt={"permission": "flows:read"},
    tags=TAGS,
    summary="The rejected rows of an upload, as CSV (row, reason)",
)
async def get_errors(hub: HubDep, env: FromPath[str], upload_id: FromPath[str]) -> Stream:
    """Streamed: ``row`` is the CSV record number (the header is row 1), ``reason`` says why."""
    try:
        await service.get_upload(hub, env, upload_id)
    except service.UploadNotFound:
        raise _not_found(upload_id) from None
    return Stream(
        service.error_report(hub, env, upload_id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="upload-{upload_id}-errors.csv"'},
    )


ROUTES = (create_upload, list_uploads, get_upload, get_errors)

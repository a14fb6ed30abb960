"""Flows API (``/v1/{env}/flows``, PROTOCOLS.md §1) and the ``hub flows`` commands.

A flow has at most one draft and many frozen versions: ``PUT .../draft`` edits the draft,
``POST .../publish`` freezes it (the previously published version becomes ``archived``). Running
instances stay on the version they started with. See :mod:`hub.services.flows`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import typer
from litestar import Response, get, post, put
from litestar.params import FromPath, JSONBody, QueryParameter

from hub.api.problems import FieldError, Problem
from hub.app import HubDep
from hub.core import flows as core
from hub.hookspecs import hookimpl
from hub.services import flows as service

TAGS = ["flows"]
READ = {"permission": "flows:read"}
WRITE = {"permission": "flows:write"}


# --- shapes ---------------------------------------------------------------------------------


class CreateFlow(msgspec.Struct, forbid_unknown_fields=True):
    """``id``: the flowConfigId (``^[a-z0-9][a-z0-9_-]{0,63}$``; generated as ``fl_`` + 16 hex
    digits when left out). ``definition``: the flow definition (``GET .../flows/schema``)."""

    definition: dict[str, Any]
    id: str | None = None


class UpdateDraft(msgspec.Struct, forbid_unknown_fields=True):
    definition: dict[str, Any]


class CloneFlow(msgspec.Struct, forbid_unknown_fields=True):
    """``id`` of the copy (generated when left out); ``name`` (default: the source's + " (copy)")."""

    id: str | None = None
    name: str | None = None


class VersionSummary(msgspec.Struct, rename="camel"):
    version: int
    state: str
    created_at: datetime
    published_at: datetime | None


class FlowVersion(VersionSummary, rename="camel"):
    definition: dict[str, Any]


class FlowSummary(msgspec.Struct, rename="camel"):
    flow_config_id: str
    name: str
    description: str
    state: str
    published_version: int | None
    draft_version: int | None
    customer_center_enabled: bool
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class FlowDetail(FlowSummary, rename="camel"):
    draft: FlowVersion | None
    published: FlowVersion | None


class FlowPage(msgspec.Struct, rename="camel"):
    flows: list[FlowSummary]
    next_cursor: str | None


class VersionPage(msgspec.Struct, rename="camel"):
    versions: list[VersionSummary]
    next_cursor: str | None


class FlowExport(msgspec.Struct, rename="camel"):
    format_version: int
    flow_config_id: str
    name: str
    definition: dict[str, Any]


@contextmanager
def _answers(id_field: str = "id") -> Iterator[None]:
    """Turn the flow service's errors into problem documents."""
    try:
        yield
    except service.InvalidFlow as exc:
        errors = [FieldError(i.field, i.reason) for i in exc.issues]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise Problem(422, f"{errors[0].field}: {errors[0].reason}{more}", errors=errors) from None
    except service.FlowNotFound as exc:
        raise Problem(404, str(exc), errors=[FieldError("path.flowConfigId", str(exc))]) from None
    except service.EnvironmentNotFound as exc:
        raise Problem(404, str(exc), errors=[FieldError("path.env", str(exc))]) from None
    except service.FlowConflict as exc:
        raise Problem(409, str(exc), errors=[FieldError(id_field, str(exc))]) from None
    except service.FlowArchived as exc:
        raise Problem(409, str(exc), errors=[FieldError("path.flowConfigId", str(exc))]) from None
    except service.NoDraft as exc:
        raise Problem(422, str(exc), errors=[FieldError("path.flowConfigId", str(exc))]) from None


def _detail(value: dict[str, Any]) -> FlowDetail:
    return msgspec.convert(value, FlowDetail)


# --- routes ---------------------------------------------------------------------------------

Cursor = Annotated[str | None, QueryParameter(description="nextCursor of the previous page")]
Limit = Annotated[int, QueryParameter(ge=1, le=1000)]


@get("/v1/{env:str}/flows", opt=READ, tags=TAGS, summary="List flows")
async def list_flows(
    hub: HubDep, env: FromPath[str],
    flow_state: Annotated[Literal["published", "draft", "archived"] | None, QueryParameter(
        name="state", description=(
        "published: has a published version; draft: never published; archived: archived"))] = None,
    cursor: Cursor = None, limit: Limit = 100,
) -> FlowPage:
    """Flow summaries ordered by flowConfigId, a page at a time."""
    with _answers():
        page = await service.list_flows(hub, env, state=flow_state, cursor=cursor,
                                        limit=min(limit, hub.settings.max_page_size))
    return msgspec.convert(page, FlowPage)


@post("/v1/{env:str}/flows", opt=WRITE, tags=TAGS, status_code=201,
      summary="Create a flow (its version 1 is a draft)")
async def create_flow(hub: HubDep, env: FromPath[str], data: JSONBody[CreateFlow]) -> FlowDetail:
    """Every problem with the definition is named in ``errors`` (``definition.steps[0].type``...);
    409 when the id is taken."""
    with _answers():
        return _detail(await service.create_flow(hub, env, data.definition, data.id))


@get("/v1/{env:str}/flows/schema", opt=READ, tags=TAGS,
     summary="JSON Schema of a flow definition (with this server's plugin step types)")
async def flow_schema(hub: HubDep, env: FromPath[str]) -> dict[str, Any]:
    """The schema checks the shape only: creating or updating a flow also checks references,
    reachability, cycles, placeholders and expressions."""
    return core.json_schema(service.step_types(hub), service.push_platforms(hub))


@get("/v1/{env:str}/flows/{flow_id:str}", opt=READ, tags=TAGS,
     summary="One flow with its draft and published definitions")
async def get_flow(hub: HubDep, env: FromPath[str], flow_id: FromPath[str]) -> FlowDetail:
    with _answers():
        return _detail(await service.get_flow(hub, env, flow_id))


@put("/v1/{env:str}/flows/{flow_id:str}/draft", opt=WRITE, tags=TAGS, status_code=200,
     summary="Replace the flow's draft (opens a new draft after the latest version if none)")
async def update_draft(hub: HubDep, env: FromPath[str], flow_id: FromPath[str],
                       data: JSONBody[UpdateDraft]) -> FlowDetail:
    """What runs live does not change until the draft is published; 409 for an archived flow."""
    with _answers():
        return _detail(await service.update_draft(hub, env, flow_id, data.definition))


@post("/v1/{env:str}/flows/{flow_id:str}/publish", opt=WRITE, tags=TAGS, status_code=200,
      summary="Publish the draft; the previously published version is archived")
async def publish_flow(hub: HubDep, env: FromPath[str], flow_id: FromPath[str]) -> FlowDetail:
    """New runs start on the published version; running instances stay on theirs. 422 when the
    flow has no draft, 409 when it is archived."""
    with _answers():
        return _detail(await service.publish(hub, env, flow_id))


@post("/v1/{env:str}/flows/{flow_id:str}/archive", opt=WRITE, tags=TAGS, status_code=200,
      summary="Archive a flow: it can no longer be started or edited")
async def archive_flow(hub: HubDep, env: FromPath[str], flow_id: FromPath[str]) -> FlowDetail:
    """Running instances go on. Archiving an archived flow changes nothing."""
    with _answers():
        return _detail(await service.set_archived(hub, env, flow_id, True))


@post("/v1/{env:str}/flows/{flow_id:str}/unarchive", opt=WRITE, tags=TAGS, status_code=200,
      summary="Unarchive a flow")
async def unarchive_flow(hub: HubDep, env: FromPath[str], flow_id: FromPath[str]) -> FlowDetail:
    with _answers():
        return _detail(await service.set_archived(hub, env, flow_id, False))


@post("/v1/{env:str}/flows/{flow_id:str}/clone", opt=WRITE, tags=TAGS, status_code=201,
      summary="Copy a flow's draft (or published) definition into a new flow")
async def clone_flow(hub: HubDep, env: FromPath[str], flow_id: FromPath[str],
                     data: JSONBody[CloneFlow | None] = None) -> FlowDetail:
    """Body (optional): ``{"id"?, "name"?}``. The copy starts as a draft."""
    data = data or CloneFlow()
    with _answers():
        return _detail(await service.clone_flow(hub, env, flow_id, data.id, data.name))


@get("/v1/{env:str}/flows/{flow_id:str}/export", opt=READ, tags=TAGS,
     summary="Export a flow as JSON (for POST /v1/{env}/flows/import)")
async def export_flow(hub: HubDep, env: FromPath[str], flow_id: FromPath[str],
                      version: Annotated[int | None, QueryParameter(ge=1, description=(
                          "Export this version (default: the draft, else the published one)"))] = None,
                      ) -> FlowExport:
    """``{"formatVersion": 1, "flowConfigId", "name", "definition"}``."""
    with _answers():
        return msgspec.convert(await service.export_flow(hub, env, flow_id, version), FlowExport)


@post("/v1/{env:str}/flows/import", opt=WRITE, tags=TAGS, status_code=201,
      summary="Import an exported flow as a new draft flow")
async def import_flow(hub: HubDep, env: FromPath[str], data: JSONBody[dict[str, Any]],
                      replace: Annotated[bool, QueryParameter(description=(
                          "When the flowConfigId exists, replace its draft (200) instead of "
                          "answering 409"))] = False) -> Response[FlowDetail]:
    """The body is what ``GET .../export`` gave. 201 when created."""
    with _answers(id_field="flowConfigId"):
        detail, created = await service.import_flow(hub, env, data, replace=replace)
    return Response(_detail(detail), status_code=201 if created else 200)


@get("/v1/{env:str}/flows/{flow_id:str}/versions", opt=READ, tags=TAGS,
     summary="List a flow's versions, newest first")
async def list_versions(hub: HubDep, env: FromPath[str], flow_id: FromPath[str],
                        cursor: Cursor = None, limit: Limit = 100) -> VersionPage:
    """Without their definitions: ``GET .../versions/{version}`` has one."""
    with _answers():
        page = await service.list_versions(hub, env, flow_id, cursor=cursor,
                                           limit=min(limit, hub.settings.max_page_size))
    return msgspec.convert(page, VersionPage)


@get("/v1/{env:str}/flows/{flow_id:str}/versions/{version:int}", opt=READ, tags=TAGS,
     summary="One version of a flow with its definition")
async def get_version(hub: HubDep, env: FromPath[str], flow_id: FromPath[str],
                      version: FromPath[int]) -> FlowVersion:
    try:
        found = await service.get_version(hub, env, flow_id, version)
    except service.FlowNotFound as exc:
        field = "path.version" if "version" in str(exc) else "path.flowConfigId"
        raise Problem(404, str(exc), errors=[FieldError(field, str(exc))]) from None
    return msgspec.convert(found, FlowVersion)


ROUTES = (list_flows, create_flow, flow_schema, get_flow, update_draft, publish_flow, archive_flow,
          unarchive_flow, clone_flow, export_flow, import_flow, list_versions, get_version)


@hookimpl
def hub_register_routes(register: Any) -> None:
    for handler in ROUTES:
        register(handler)


# --- command line ---------------------------------------------------------------------------


def _read_flow_file(path: Path, flow_id: str | None) -> tuple[str | None, Any]:
    """(flowConfigId, definition) from a definition file (an optional top-level ``"id"``) or an
    export document; ``flow_id`` (``--id``) wins over the file's."""
    from hub.cli import CliError

    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CliError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise CliError(f"{path} must hold a JSON object (a flow definition)")
    if "formatVersion" in document:
        try:
            file_id, definition = service.check_export(document)
        except service.InvalidFlow as exc:
            raise CliError(f"{path}: {exc}") from None
    else:
        definition = dict(document)
        file_id = definition.pop("id", None)
    return flow_id or file_id, definition


def _flows_command(settings: Any, env: str, action: Any) -> Any:
    """Run ``action(hub)`` on a Hub built from ``settings``; flow errors become one-line errors."""
    from hub.app import Hub
    from hub.cli import CliError, _run
    from hub.services import environments

    async def go() -> Any:
        hub = Hub(settings)
        try:
            if await environments.get_environment(hub.db, env) is None:
                raise CliError(f"environment {env!r} does not exist (hub env create {env})")
            return await action(hub)
        finally:
            await hub.close()

    try:
        return _run(go)
    except (service.InvalidFlow, service.FlowNotFound, service.FlowArchived, service.FlowConflict,
            service.NoDraft, service.EnvironmentNotFound) as exc:
        raise CliError(str(exc)) from None


def make_flows_cli() -> typer.Typer:
    """The ``hub flows`` command group."""
    from hub.cli import _settings

    app = typer.Typer(help="Flows: apply definitions from files, list and export them.",
                      no_args_is_help=True)

    @app.command("apply")
    def apply(
        file: Path = typer.Argument(..., metavar="FILE", help="A flow definition (JSON), or an export."),
        env: str = typer.Option(..., "--env", help="Environment the flow belongs to."),
        flow_id: str | None = typer.Option(None, "--id", help="flowConfigId (default: the file's "
                                                               "top-level \"id\", else generated)."),
        publish: bool = typer.Option(True, "--publish/--no-publish",
                                     help="Publish the new draft (the default)."),
    ) -> None:
        """Create the flow, or replace its draft when its id exists, then publish it.

        Prints the flowConfigId alone, so scripts can capture it.
        Give the file a top-level "id" (or pass --id): applying it again makes a new version.

        Example: hub flows apply examples/flows/fraud_alert.json --env production --id fraud-alert
        """
        chosen_id, definition = _read_flow_file(file, flow_id)
        if chosen_id is not None and (issues := service.check_flow_id(chosen_id)):
            from hub.cli import CliError

            raise CliError(f"flow id {chosen_id!r}: {issues[0].reason}")
        detail, created = _flows_command(_settings(), env, lambda hub: service.apply_flow(
            hub, env, definition, chosen_id, publish_it=publish))
        if chosen_id is None:
            typer.echo(f"created a new flow; add \"id\": \"{detail['flowConfigId']}\" to {file} "
                       "(or pass --id) to update it next time", err=True)
        typer.echo(detail["flowConfigId"])

    @app.command("list")
    def list_(
        env: str = typer.Option(..., "--env", help="Environment to list."),
        state: str | None = typer.Option(None, help="Only flows in this state: published, draft, "
                                                    "archived."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON summary per line."),
    ) -> None:
        """List flows: id, state, published version, draft version, name (tab-separated).

        Example: hub flows list --env production --state published
        """
        from hub.cli import CliError

        if state is not None and state not in service.STATES:
            raise CliError(f"--state must be one of {', '.join(service.STATES)}")

        async def every(hub: Any) -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = []
            cursor = None
            while True:
                page = await service.list_flows(hub, env, state=state, cursor=cursor,
                                                limit=500)
                rows += page["flows"]
                if not (cursor := page["nextCursor"]):
                    return rows

        for row in _flows_command(_settings(), env, every):
            if as_json:
                typer.echo(msgspec.json.encode(row).decode())
                continue
            versions = [str(v) if v is not None else "-" for v in (row["publishedVersion"],
                                                                   row["draftVersion"])]
            typer.echo("\t".join([row["flowConfigId"], row["state"], *versions, row["name"]]))

    @app.command("export")
    def export(
        flow_id: str = typer.Argument(..., metavar="ID", help="flowConfigId of the flow."),
        env: str = typer.Option(..., "--env", help="Environment the flow belongs to."),
        version: int | None = typer.Option(None, help="Version to export (default: the draft, "
                                                      "else the published one)."),
    ) -> None:
        """Print a flow as JSON, ready for `hub flows apply` or POST /v1/{env}/flows/import.

        Example: hub flows export fraud-alert --env staging > fraud-alert.json
        """
        document = _flows_command(_settings(), env,
                                  lambda hub: service.export_flow(hub, env, flow_id, version))
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))

    return app


@hookimpl
def hub_register_cli(cli: typer.Typer) -> None:
    cli.add_typer(make_flows_cli(), name="flows")

"""Cards API: ``/v1/{env}/cards`` (PROTOCOLS.md §1)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from hub.api.problems import FieldError, Problem, invalid
from hub.app import HubDep
from hub.core.lifecycle import ALL_STATES
from hub.hookspecs import hookimpl
from hub.services import cards as service

TAGS = ["cards"]


class Card(msgspec.Struct):
    cardInstanceId: str
    lifecycleId: str
    userId: str
    status: str
    priority: int
    targetStreamIds: list[str]
    targetPlatforms: list[str]
    flowConfigId: str | None
    flowVersion: int | None
    flowInvocationId: str | None
    flowInstanceId: str | None
    stepId: str | None
    templateId: str
    templateName: str
    content: dict[str, Any]
    values: dict[str, Any] | None
    test: bool
    embargoUntil: str | None
    expiresAt: str | None
    snoozedUntil: str | None
    createdAt: str | None
    updatedAt: str | None
    publishedAt: str | None
    closedAt: str | None


class Transition(msgspec.Struct):
    to: str
    event: str | None
    source: str
    detail: dict[str, Any]
    at: str | None
    from_: str | None = msgspec.field(name="from", default=None)


class CardWithHistory(Card):
    history: list[Transition] = []


class CardPage(msgspec.Struct):
    cards: list[Card]
    nextCursor: str | None


class CancelCards(msgspec.Struct, forbid_unknown_fields=True):
    """Cancel one card or many (``multiple: true``, at most ``HUB_MAX_BATCH_SIZE``)."""

    cardInstanceIds: list[str]
    reason: str = "cancelled through the API"
    multiple: bool = False


class CancelResult(msgspec.Struct, omit_defaults=True):
    cardInstanceId: str
    status: str
    reason: str | None = None


class CancelResults(msgspec.Struct):
    results: list[CancelResult]


@get("/v1/{env:str}/cards", opt={"permission": "cards:read"}, tags=TAGS,
     summary="Cards, newest first, filtered")
async def list_cards(
    hub: HubDep, env: FromPath[str],
    user_id: Annotated[str | None, QueryParameter(name="userId")] = None,
    status: Annotated[list[str] | None, QueryParameter(description="Repeat for several")] = None,
    flow_instance_id: Annotated[str | None, QueryParameter(name="flowInstanceId")] = None,
    lifecycle_id: Annotated[str | None, QueryParameter(name="lifecycleId")] = None,
    flow_invocation_id: Annotated[str | None, QueryParameter(name="flowInvocationId")] = None,
    cursor: Annotated[str | None, QueryParameter()] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> CardPage:
    for name, value in (("userId", user_id), ("flowInstanceId", flow_instance_id),
                        ("lifecycleId", lifecycle_id), ("flowInvocationId", flow_invocation_id)):
        if value is not None and (not value or len(value) > 255 or any(ord(ch) < 32 for ch in value)):
            raise invalid(f"query.{name}", "must be 1-255 characters without control characters")
    unknown = [s for s in status or [] if s not in ALL_STATES]
    if unknown:
        raise invalid("query.status",
                      f"unknown status {unknown[0]!r}; one of {', '.join(sorted(ALL_STATES))}")
    try:
        page = await service.list_cards(hub, env, user_id=user_id, statuses=status or [],
                                        instance_id=flow_instance_id, lifecycle_id=lifecycle_id,
                                        invocation_id=flow_invocation_id, cursor=cursor,
                                        limit=min(limit, hub.settings.max_page_size))
    except ValueError as exc:
        raise invalid("query.cursor", str(exc)) from None
    return msgspec.convert(page, CardPage)


@get("/v1/{env:str}/cards/{card_id:str}", opt={"permission": "cards:read"}, tags=TAGS,
     summary="One card with its history")
async def get_card(hub: HubDep, env: FromPath[str], card_id: FromPath[str]) -> CardWithHistory:
    try:
        return msgspec.convert(await service.get_card(hub, env, card_id), CardWithHistory)
    except service.CardNotFound:
        raise Problem(404, f"no card {card_id!r}",
                      errors=[FieldError("path.cardInstanceId", "no such card")]) from None


@post("/v1/{env:str}/cards/cancel", opt={"permission": "cards:write"}, tags=TAGS, status_code=200,
      summary="Cancel one card or many")
async def cancel_cards(hub: HubDep, env: FromPath[str], data: JSONBody[CancelCards]) -> CancelResults:
    ids = list(dict.fromkeys(data.cardInstanceIds))
    if not ids:
        raise invalid("cardInstanceIds", "must hold at least one card id")
    if len(ids) > 1 and not data.multiple:
        raise invalid("multiple", "must be true to cancel more than one card")
    for index, card_id in enumerate(data.cardInstanceIds):
        if not 1 <= len(card_id) <= 64 or "\x00" in card_id:  # no stored card id looks like this
            raise invalid(f"cardInstanceIds[{index}]", "is not a card id (1-64 characters, no NUL)")
    if "\x00" in data.reason or len(data.reason) > 1000:
        raise invalid("reason", "must be at most 1,000 characters, without NUL")
    if len(ids) > hub.settings.max_batch_size:
        raise Problem(413, f"at most {hub.settings.max_batch_size} cards per request",
                      errors=[FieldError("cardInstanceIds", f"at most {hub.settings.max_batch_size}")])
    results = await service.cancel_cards(hub, env, ids, data.reason)
    return CancelResults([msgspec.convert(r, CancelResult) for r in results])


class StreamContainer(msgspec.Struct):
    id: str
    name: str
    createdAt: str | None


class StreamContainerIn(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    name: str


class StreamContainers(msgspec.Struct):
    containers: list[StreamContainer]


@get("/v1/{env:str}/stream-containers", opt={"permission": "cards:read"}, tags=TAGS,
     summary="Stream containers (where apps show cards)")
async def list_containers(hub: HubDep, env: FromPath[str]) -> StreamContainers:
    return msgspec.convert({"containers": await service.list_containers(hub, env)}, StreamContainers)


@post("/v1/{env:str}/stream-containers", opt={"permission": "cards:write"}, tags=TAGS,
      status_code=201, summary="Create a stream container")
async def create_container(hub: HubDep, env: FromPath[str],
                           data: JSONBody[StreamContainerIn]) -> Response[StreamContainer]:
    """Creating one that exists answers 200 with it; card templates and ``cardOptions`` name
    containers in ``streams`` / ``targetStreamIds``."""
    try:
        container, created = await service.create_container(hub, env, data.id, data.name)
    except service.CardActionError as exc:
        errors = [FieldError(i.field, i.reason) for i in exc.issues]
        raise Problem(exc.status, str(exc), errors=errors) from None
    return Response(msgspec.convert(container, StreamContainer), status_code=201 if created else 200)


@hookimpl
def hub_register_cli(cli: Any) -> None:
    import typer

    from hub.cli import CliError, parse_json_option, run_with_hub

    cards_cli = typer.Typer(help="Look at cards and act on them as their customer would (support, "
                                 "testing, demos).", no_args_is_help=True)
    cli.add_typer(cards_cli, name="cards")

    @cards_cli.command("list")
    def list_(env: str = typer.Option(..., "--env"), user: str = typer.Option(None, "--user"),
              status: list[str] = typer.Option([], "--status")) -> None:
        """Cards newest first. Example: hub cards list --env demo --user demo-user --status active"""
        page = run_with_hub(env, lambda hub: service.list_cards(hub, env, user_id=user, statuses=status))
        for card in page["cards"]:
            typer.echo(f"{card['cardInstanceId']}  {card['status']:<10} {card['userId']:<20} "
                       f"{card['templateName']}")

    def _act(env: str, card_id: str, action: str, **kwargs: Any) -> None:
        async def go(hub: Any) -> dict[str, Any]:
            try:
                if action == "cancel":
                    [result] = await service.cancel_cards(hub, env, [card_id], kwargs["reason"], "internal")
                    if result["status"] != "cancelled":
                        raise CliError(f"{card_id}: {result['status']} {result.get('reason', '')}".strip())
                    return result
                return await service.act(hub, env, card_id, action, source="internal", **kwargs)
            except service.CardNotFound:
                raise CliError(f"no card {card_id} in {env}") from None
            except service.CardActionError as exc:
                details = "; ".join(f"{i.field}: {i.reason}" for i in exc.issues)
                raise CliError(f"{exc}" + (f" ({details})" if details else "")) from None

        run_with_hub(env, go)
        typer.echo(f"{card_id}: {action} done")

    @cards_cli.command("submit")
    def submit(card_id: str, env: str = typer.Option(..., "--env"),
               values: str = typer.Option("{}", "--values", help="JSON object of input values.")) -> None:
        """Submit a card's form. Example: hub cards submit CARD --env demo --values '{"recognised": "no"}'"""
        _act(env, card_id, "submit", values=parse_json_option(values, "--values"))

    @cards_cli.command("dismiss")
    def dismiss(card_id: str, env: str = typer.Option(..., "--env")) -> None:
        """Dismiss a card. Example: hub cards dismiss CARD --env demo"""
        _act(env, card_id, "dismiss")

    @cards_cli.command("cancel")
    def cancel(card_id: str, env: str = typer.Option(..., "--env"),
               reason: str = typer.Option("cancelled from the command line", "--reason")) -> None:
        """Cancel a card. Example: hub cards cancel CARD --env demo --reason 'sent in error'"""
        _act(env, card_id, "cancel", reason=reason)


@hookimpl
def hub_register_routes(register: Any) -> None:
    for handler in (list_cards, get_card, cancel_cards, list_containers, create_container):
        register(handler)

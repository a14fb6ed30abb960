"""``PUT/GET/DELETE /v1/{env}/integrations/sfmc`` and ``POST .../rotate``: the activity's settings.

The JWT signing secret is write-only (sealed at rest, never returned or logged); answers name
``activityUrl`` (install it in Marketing Cloud: Journey Builder loads ``{activityUrl}/config.json``)
and ``decisionUrl`` (the decision split). User docs: ``docs/sfmc.md``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, delete, get, post, put
from litestar.params import FromPath, JSONBody

from hub.api.problems import FieldError, Problem
from hub.app import HubDep
from hub_plugins.salesforce_mc import config

TAGS = ["sfmc"]
READ = {"permission": "sfmc:read"}
WRITE = {"permission": "sfmc:write"}
PATH = "/v1/{env:str}/integrations/sfmc"


class SfmcSettingsIn(msgspec.Struct, forbid_unknown_fields=True):
    """``jwtSigningSecret``: the installed package's JWT signing secret (required the first time,
    write-only); ``timeoutMs`` 1,000-100,000 (default 20,000), ``retryCount`` 0-5 (default 0),
    ``retryDelayMs`` 0-60,000 (default 1,000), ``concurrentRequests`` 1-50 (default 10): what
    config.json tells Journey Builder; ``userIdFrom``: ``keyValue`` (the contact key, default) or
    the name of an inArgument holding the user id. Fields left out keep their value."""

    jwtSigningSecret: str | None = None
    timeoutMs: int | None = None
    retryCount: int | None = None
    retryDelayMs: int | None = None
    concurrentRequests: int | None = None
    userIdFrom: str | None = None


class SfmcSettingsOut(msgspec.Struct):
    environmentId: str
    activityUrl: str
    decisionUrl: str
    timeoutMs: int
    retryCount: int
    retryDelayMs: int
    concurrentRequests: int
    userIdFrom: str
    jwtSigningSecretSet: bool
    createdAt: str | None
    updatedAt: str | None
    tokenRotatedAt: str | None


def base_url(hub: Any, request: Request[Any, Any, Any]) -> str:
    return str(hub.plugin_settings[config.SETTINGS].public_base_url or request.base_url)


def _not_found(env: str) -> Problem:
    reason = f"environment {env} has no SFMC integration (PUT {PATH.replace('{env:str}', env)})"
    return Problem(404, reason, errors=[FieldError("path", reason)])


@put(PATH, opt=WRITE, tags=TAGS, status_code=200,
     summary="Set the SFMC custom activity's settings (answers its activityUrl)")
async def put_sfmc(hub: HubDep, request: Request[Any, Any, Any], env: FromPath[str],
                   data: JSONBody[SfmcSettingsIn]) -> SfmcSettingsOut:
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not None}
    try:
        row = await config.save(hub, env, changes)
    except config.ConfigError as exc:
        raise Problem(422, f"{exc.field}: {exc.reason}", errors=[FieldError(exc.field, exc.reason)]) from None
    return msgspec.convert(config.view(row, base_url(hub, request)), SfmcSettingsOut)


@get(PATH, opt=READ, tags=TAGS, summary="The SFMC custom activity's settings (never the secret)")
async def get_sfmc(hub: HubDep, request: Request[Any, Any, Any], env: FromPath[str]) -> SfmcSettingsOut:
    row = await config.get(hub, env)
    if row is None:
        raise _not_found(env)
    return msgspec.convert(config.view(row, base_url(hub, request)), SfmcSettingsOut)


@delete(PATH, opt=WRITE, tags=TAGS, status_code=204,
        summary="Remove the SFMC integration (its activity URL answers 404)")
async def delete_sfmc(hub: HubDep, env: FromPath[str]) -> None:
    if not await config.remove(hub, env):
        raise _not_found(env)


@post(f"{PATH}/rotate", opt=WRITE, tags=TAGS, status_code=200,
      summary="New activity URL (the old one answers 404 at once): reinstall it in Marketing Cloud")
async def rotate_sfmc(hub: HubDep, request: Request[Any, Any, Any], env: FromPath[str]) -> SfmcSettingsOut:
    row = await config.rotate(hub, env)
    if row is None:
        raise _not_found(env)
    return msgspec.convert(config.view(row, base_url(hub, request)), SfmcSettingsOut)


ROUTES: list[Any] = [put_sfmc, get_sfmc, delete_sfmc, rotate_sfmc]

"""``PUT/GET/DELETE /v1/{env}/integrations/sfmc/profile-sync`` and ``POST .../run``: the
Salesforce profile sync's settings and state.

The password and security token are write-only (sealed at rest, never returned or logged). The
answer carries ``status``: the state of the latest run, its counts and error, the watermark and
when the next run is due. ``run`` queues a run at once (202); a worker does it. User docs:
``docs/sfmc.md``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import delete, get, post, put
from litestar.params import FromPath, JSONBody

from hub.api.problems import FieldError, Problem
from hub.app import HubDep
from hub_plugins.salesforce_mc import profile_sync, sync_config
from hub_plugins.salesforce_mc.api import PATH as SFMC_PATH
from hub_plugins.salesforce_mc.api import READ, TAGS, WRITE
from hub_plugins.salesforce_mc.config import ConfigError

PATH = f"{SFMC_PATH}/profile-sync"


class ProfileSyncIn(msgspec.Struct, forbid_unknown_fields=True):
    """``loginUrl``: https://login.salesforce.com (default), https://test.salesforce.com or your
    My Domain URL; ``username``, ``password`` and ``securityToken`` (empty when the org trusts
    Hub's IP addresses) of the Salesforce integration user: the password and token write-only;
    ``object``: ``Contact`` (default) or ``Lead``; ``userIdField``: the Salesforce field holding
    the Hub user id (default ``Id``); ``fields``: Salesforce field -> customer field (built in
    or defined), 1-100 of them; ``enabled`` (default true); ``intervalMinutes`` 1-1,440 (default
    15). Fields left out keep their value; changing the login, object, user id field or fields
    makes the next run start over from the oldest record."""

    loginUrl: str | None = None
    username: str | None = None
    password: str | None = None
    securityToken: str | None = None
    object: str | None = None
    userIdField: str | None = None
    fields: dict[str, str] | None = None
    enabled: bool | None = None
    intervalMinutes: int | None = None


class RunIn(msgspec.Struct, forbid_unknown_fields=True):
    """``full``: start over from the oldest record instead of after the watermark."""

    full: bool = False


class ProfileSyncError(msgspec.Struct):
    code: str | None
    message: str | None
    at: str | None


class Watermark(msgspec.Struct):
    lastModifiedDate: str
    id: str | None


class ProfileSyncStatus(msgspec.Struct):
    state: str
    nextRunAt: str | None
    lastRunStartedAt: str | None
    lastRunFinishedAt: str | None
    lastRunRecords: int
    lastRunSkipped: int
    lastSkip: str | None
    lastSuccessAt: str | None
    lastError: ProfileSyncError | None
    watermark: Watermark | None
    totalRecords: int


class ProfileSyncOut(msgspec.Struct):
    environmentId: str
    loginUrl: str
    username: str
    passwordSet: bool
    securityTokenSet: bool
    object: str
    userIdField: str
    fields: dict[str, str]
    enabled: bool
    intervalMinutes: int
    status: ProfileSyncStatus
    createdAt: str | None
    updatedAt: str | None


def _out(row: Any) -> ProfileSyncOut:
    return msgspec.convert(sync_config.view(row), ProfileSyncOut)


def _not_found(env: str) -> Problem:
    reason = f"environment {env} has no Salesforce profile sync (PUT {PATH.replace('{env:str}', env)})"
    return Problem(404, reason, errors=[FieldError("path", reason)])


@put(PATH, opt=WRITE, tags=TAGS, status_code=200,
     summary="Set the Salesforce profile sync (login, object, fields, schedule)")
async def put_profile_sync(hub: HubDep, env: FromPath[str], data: JSONBody[ProfileSyncIn]) -> ProfileSyncOut:
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not None}
    try:
        row = await sync_config.save(hub, env, changes)
    except ConfigError as exc:
        raise Problem(422, f"{exc.field}: {exc.reason}", errors=[FieldError(exc.field, exc.reason)]) from None
    return _out(row)


@get(PATH, opt=READ, tags=TAGS,
     summary="The Salesforce profile sync's settings and latest run (never the password or token)")
async def get_profile_sync(hub: HubDep, env: FromPath[str]) -> ProfileSyncOut:
    row = await sync_config.get(hub, env)
    if row is None:
        raise _not_found(env)
    return _out(row)


@delete(PATH, opt=WRITE, tags=TAGS, status_code=204,
        summary="Remove the Salesforce profile sync (customers keep the values synced so far)")
async def delete_profile_sync(hub: HubDep, env: FromPath[str]) -> None:
    if not await sync_config.remove(hub, env):
        raise _not_found(env)


@post(f"{PATH}/run", opt=WRITE, tags=TAGS, status_code=202,
      summary="Run the Salesforce profile sync now (a worker runs it; watch status)")
async def run_profile_sync(hub: HubDep, env: FromPath[str], data: JSONBody[RunIn | None] = None
                           ) -> ProfileSyncOut:
    if not await profile_sync.enqueue_run(hub, env, full=bool(data and data.full)):
        raise _not_found(env)
    row = await sync_config.get(hub, env)
    if row is None:
        raise _not_found(env)
    return _out(row)


ROUTES: list[Any] = [put_profile_sync, get_profile_sync, delete_profile_sync, run_profile_sync]

"""``PUT/GET/DELETE /v1/{env}/push/providers/fcm``: an environment's FCM service account (docs/push-fcm.md).

The service account is validated on save (problem+json naming the field); its private key is
sealed at rest and never returned: answers show the project, client e-mail, key id and platforms.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import delete, get, put
from litestar.params import FromPath, JSONBody

from hub.api.problems import FieldError, Problem
from hub.app import HubDep
from hub_plugins.push_fcm import config, sender

TAGS = ["push"]
READ = {"permission": "push:read"}
WRITE = {"permission": "push:write"}
PATH = "/v1/{env:str}/push/providers/fcm"


class FcmConfigIn(msgspec.Struct, forbid_unknown_fields=True):
    """``serviceAccount``: the JSON key file of a service account of the Firebase project;
    ``platforms``: which devices go through FCM (default android and web; add ios to send to iOS
    through FCM instead of APNs)."""

    serviceAccount: dict[str, Any]
    platforms: list[str] | None = None


class FcmConfigOut(msgspec.Struct):
    environmentId: str
    projectId: str
    clientEmail: str
    privateKeyId: str | None
    tokenUri: str
    platforms: list[str]
    createdAt: str | None
    updatedAt: str | None


def _not_found(env: str) -> Problem:
    reason = f"environment {env} has no FCM configuration"
    return Problem(404, reason, errors=[FieldError("path", reason)])


@put(PATH, opt=WRITE, tags=TAGS, status_code=200, summary="Set the environment's FCM service account")
async def put_fcm(hub: HubDep, env: FromPath[str], data: JSONBody[FcmConfigIn]) -> FcmConfigOut:
    try:
        saved = await config.save(hub, env, data.serviceAccount, data.platforms)
    except config.ConfigError as exc:
        raise Problem(422, f"{exc.field}: {exc.reason}", errors=[FieldError(exc.field, exc.reason)]) from None
    sender.forget_config(hub, env)
    return msgspec.convert(saved, FcmConfigOut)


@get(PATH, opt=READ, tags=TAGS, summary="The environment's FCM configuration (never the key)")
async def get_fcm(hub: HubDep, env: FromPath[str]) -> FcmConfigOut:
    found = await config.get_view(hub, env)
    if found is None:
        raise _not_found(env)
    return msgspec.convert(found, FcmConfigOut)


@delete(PATH, opt=WRITE, tags=TAGS, status_code=204, summary="Remove the environment's FCM configuration")
async def delete_fcm(hub: HubDep, env: FromPath[str]) -> None:
    if not await config.remove(hub, env):
        raise _not_found(env)
    sender.forget_config(hub, env)


ROUTES = [put_fcm, get_fcm, delete_fcm]

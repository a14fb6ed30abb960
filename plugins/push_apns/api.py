"""``PUT/GET/DELETE /v1/{env}/push/providers/apns``: an environment's APNs auth key (docs/push-apns.md).

The key is validated on save (problem+json naming the field); it is sealed at rest and never
returned: answers show the key id, team id, topic and APNs environment.
"""

from __future__ import annotations

import msgspec
from litestar import delete, get, put
from litestar.params import FromPath, JSONBody

from hub.api.problems import FieldError, Problem
from hub.app import HubDep
from hub_plugins.push_apns import config, sender

TAGS = ["push"]
READ = {"permission": "push:read"}
WRITE = {"permission": "push:write"}
PATH = "/v1/{env:str}/push/providers/apns"


class ApnsConfigIn(msgspec.Struct, forbid_unknown_fields=True):
    """``keyP8``: the text of the AuthKey_XXXXXXXXXX.p8 file; ``keyId`` and ``teamId``: the key's
    Key ID and the account's Team ID; ``topic``: the app's bundle id; ``environment``: ``sandbox``
    for development builds, ``production`` for TestFlight and App Store builds."""

    keyP8: str
    keyId: str
    teamId: str
    topic: str
    environment: str


class ApnsConfigOut(msgspec.Struct):
    environmentId: str
    keyId: str
    teamId: str
    topic: str
    environment: str
    createdAt: str | None
    updatedAt: str | None


def _not_found(env: str) -> Problem:
    reason = f"environment {env} has no APNs configuration"
    return Problem(404, reason, errors=[FieldError("path", reason)])


@put(PATH, opt=WRITE, tags=TAGS, status_code=200, summary="Set the environment's APNs auth key")
async def put_apns(hub: HubDep, env: FromPath[str], data: JSONBody[ApnsConfigIn]) -> ApnsConfigOut:
    try:
        saved = await config.save(hub, env, data.keyP8, data.keyId, data.teamId, data.topic, data.environment)
    except config.ConfigError as exc:
        raise Problem(422, f"{exc.field}: {exc.reason}", errors=[FieldError(exc.field, exc.reason)]) from None
    sender.forget_config(hub, env)
    return msgspec.convert(saved, ApnsConfigOut)


@get(PATH, opt=READ, tags=TAGS, summary="The environment's APNs configuration (never the key)")
async def get_apns(hub: HubDep, env: FromPath[str]) -> ApnsConfigOut:
    found = await config.get_view(hub, env)
    if found is None:
        raise _not_found(env)
    return msgspec.convert(found, ApnsConfigOut)


@delete(PATH, opt=WRITE, tags=TAGS, status_code=204, summary="Remove the environment's APNs configuration")
async def delete_apns(hub: HubDep, env: FromPath[str]) -> None:
    if not await config.remove(hub, env):
        raise _not_found(env)
    sender.forget_config(hub, env)


ROUTES = [put_apns, get_apns, delete_apns]

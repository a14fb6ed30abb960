"""The Salesforce profile sync: Contact or Lead fields pulled into customer fields.

``sfmc_profile_sync_sweep`` (cron, every minute) enqueues a run for each environment whose sync
is enabled and due; ``POST .../profile-sync/run`` enqueues one at once. A run (the job
``sfmc_profile_sync``, or ``hub sfmc sync-run``) first takes the environment's lease, so two runs
never overlap; it logs in and queries in a thread (simple-salesforce blocks), asking for records
modified after the watermark, oldest first (``ORDER BY LastModifiedDate, Id``). Each page is
written through the core's :func:`hub.services.customers.upsert_customers`, then the watermark
(the page's last record) and the run's counts are committed and the lease renewed, so a run cut
short (a worker killed, Salesforce down on page 5) leaves the next run to start after the last
page written: nothing is lost, at most that one page is written twice. Failures are recorded in
the sync's status (and logged, without secrets); they never fail the job.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select, update

from hub.core import customers as core
from hub.core.clock import now
from hub.db import lock_for_write
from hub.logging import get_logger
from hub.net import UnsafeURL, check_url
from hub.services import customers
from hub.services.outbox import transaction
from hub_plugins.salesforce_mc import sync_config
from hub_plugins.salesforce_mc.salesforce import Connection, SalesforceProblem, build_query
from hub_plugins.salesforce_mc.tables import profile_sync as sync_table

if TYPE_CHECKING:
    from hub.app import Hub

log = get_logger(__name__)
S = sync_table.c
RUN_JOB = "sfmc_profile_sync"
SETTINGS = "sfmc"


def run_budget(hub: Hub) -> float:
    """Seconds a run may start new pages for: ``HUB_SFMC_SYNC_RUN_SECONDS``, but always leaving
    one Salesforce call's time and a margin inside the worker's job timeout, so the job finishes
    and hands over rather than being cut off. (The job has the worker's usual timeout: arq leases
    every job of a worker for its longest job timeout plus 10 s, so one long timeout would keep
    the jobs of a killed worker waiting that long.)"""
    settings = hub.plugin_settings[SETTINGS]
    room = hub.settings.job_timeout_seconds - settings.sync_http_timeout_seconds - 5
    return max(1.0, min(float(settings.sync_run_seconds), room))


class ConversionError(ValueError):
    pass


class Superseded(Exception):
    """The run lost its lease, or the settings changed under it: it stops quietly."""


# --- records to customers -------------------------------------------------------------------


def lookup(record: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` (``Email``, ``Account.Name``) of a record as Salesforce answers it;
    names match whatever their case (SOQL's are case-insensitive)."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        if part in value:
            value = value[part]
            continue
        value = next((v for k, v in value.items() if k.lower() == part.lower()), None)
    return value


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ConversionError("is true/false, not a number")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
        try:
            number = float(value)
        except ValueError:
            raise ConversionError(f"{value[:40]!r} is not a number") from None
        if math.isfinite(number):
            return number
    raise ConversionError("is not a number")


def convert(type_: str, value: Any) -> Any:
    """A Salesforce value as the value of a Hub field of ``type_`` (None clears the field)."""
    if value is None:
        return None
    if isinstance(value, dict | list):
        raise ConversionError("is a compound value (an address or location): map one of its parts, "
                              "such as MailingCity")
    if type_ == "text":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value).replace("\x00", "")[:core.TEXT_MAX]
    if type_ == "number":
        return _number(value)
    if type_ == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConversionError("is not true or false")
    if type_ == "date":
        if not isinstance(value, str):
            raise ConversionError("is not a date")
        try:  # Salesforce writes date-times as 2026-05-01T12:34:56.000+0000
            return core.normalize_value("date", value if len(value) == 10 else
                                        datetime.fromisoformat(value).isoformat())
        except ValueError:
            raise ConversionError(f"{value[:40]!r} is not a date") from None
    raise ConversionError(f"cannot fill a field of type {type_}")


def to_item(record: Mapping[str, Any], user_id_field: str, field_map: Mapping[str, str],
            types: Mapping[str, str]) -> dict[str, Any]:
    """The upsert item of one record; :class:`ConversionError` says why it cannot be written."""
    user_id = lookup(record, user_id_field)
    if isinstance(user_id, int | float) and not isinstance(user_id, bool):
        user_id = str(user_id)
    issues = core.check_user_id(user_id)
    if issues:
        raise ConversionError(f"{user_id_field} (the user id) {issues[0].reason}")
    fields = {}
    for sf_field, hub_field in field_map.items():
        try:
            fields[hub_field] = convert(types[hub_field], lookup(record, sf_field))
        except ConversionError as exc:
            raise ConversionError(f"{sf_field} {exc} (customer field {hub_field} is "
                                  f"{types[hub_field]})") from None
    return {"userId": user_id.strip(), "fields": fields}


# --- scheduling -----------------------------------------------------------------------------


def _job_id(env: str) -> str:
    return f"sfmc-sync:{env}:{uuid.uuid4().hex}"


async def enqueue_run(hub: Hub, env: str, *, full: bool = False) -> bool:
    """Queue a run of ``env``'s sync now (``full``: from the oldest record); False when ``env``
    has no profile sync. A run already going carries on; the queued one waits for its lease."""
    stamp = now()
    lease = _lease_seconds(hub)
    async with transaction(hub) as tx:
        await lock_for_write(tx.conn)
        if full and not await sync_config.restart(tx.conn, env):
            return False
        result = await tx.conn.execute(update(sync_table).where(S.environment_id == env).values(
            next_run_at=stamp + timedelta(seconds=lease), run_requested_at=stamp, updated_at=stamp))
        if not result.rowcount:
            return False
        await tx.enqueue(RUN_JOB, [env], job_id=_job_id(env))
    return True


async def sfmc_profile_sync_sweep(ctx: dict[str, Any]) -> int:
    """Cron: queue a run for every enabled sync that is due and not running; returns how many."""
    hub: Hub = ctx["hub"]
    stamp = now()
    due = (S.enabled.is_(True) & (S.next_run_at <= stamp)
           & or_(S.lease_until.is_(None), S.lease_until < stamp))
    async with hub.db.connect() as conn:
        envs = [r.environment_id for r in await conn.execute(select(S.environment_id).where(due))]
    queued = 0
    for env in envs:
        async with transaction(hub) as tx:
            # Only one sweep (of several workers') moves next_run_at on and enqueues.
            claimed = await tx.conn.execute(update(sync_table).where(S.environment_id == env, due).values(
                next_run_at=stamp + timedelta(seconds=_lease_seconds(hub))))
            if claimed.rowcount:
                await tx.enqueue(RUN_JOB, [env], job_id=_job_id(env))
                queued += 1
    return queued


async def sfmc_profile_sync(ctx: dict[str, Any], env: str) -> str:
    """The job: one run of ``env``'s sync (see :func:`run`); returns its outcome."""
    outcome = await run(ctx["hub"], env)
    return str(outcome["outcome"])


# --- a run ----------------------------------------------------------------------------------


def _lease_seconds(hub: Hub) -> float:
    return float(hub.plugin_settings[SETTINGS].sync_lease_seconds)


async def _claim(hub: Hub, env: str, owner: str) -> Any:
    """Take ``env``'s lease for a new run; the row, or None when there is no sync or a run holds it."""
    stamp = now()
    async with hub.db.begin() as conn:
        await lock_for_write(conn)
        claimed = await conn.execute(update(sync_table).where(
            S.environment_id == env, or_(S.lease_until.is_(None), S.lease_until < stamp)).values(
            lease_owner=owner, lease_until=stamp + timedelta(seconds=_lease_seconds(hub)),
            next_run_at=stamp + timedelta(seconds=_lease_seconds(hub)), run_started_at=stamp,
            run_finished_at=None, run_records=0, run_skipped=0, last_skip=None))
        if not claimed.rowcount:
            return None
        return (await conn.execute(select(sync_table).where(S.environment_id == env))).mappings().first()


def _mine(env: str, owner: str, version: int) -> Any:
    return and_(S.environment_id == env, S.lease_owner == owner, S.settings_version == version)


async def _commit_page(hub: Hub, env: str, owner: str, version: int, last: tuple[str, str],
                       written: int, skipped: int, skip: str | None) -> None:
    stamp = now()
    values: dict[str, Any] = {
        "watermark_at": last[0], "watermark_id": last[1], "run_records": S.run_records + written,
        "run_skipped": S.run_skipped + skipped, "total_records": S.total_records + written,
        "lease_until": stamp + timedelta(seconds=_lease_seconds(hub))}
    if skip is not None:
        values["last_skip"] = skip[:1000]
    async with hub.db.begin() as conn:
        result = await conn.execute(update(sync_table).where(_mine(env, owner, version)).values(**values))
    if not result.rowcount:
        raise Superseded()


async def _release(hub: Hub, env: str, owner: str, row: Any, values: dict[str, Any], *,
                   again: bool = False) -> None:
    """End the run holding the lease with ``values``; queue the next run at once when ``again``
    or when someone asked for a run after this one started."""
    stamp = now()
    async with transaction(hub) as tx:
        await lock_for_write(tx.conn)
        current = (await tx.conn.execute(select(S.run_requested_at).where(
            S.environment_id == env, S.lease_owner == owner).with_for_update())).first()
        if current is None:
            return
        requested = current.run_requested_at
        again = again or (requested is not None and requested > row["run_started_at"])
        if again:
            values["next_run_at"] = stamp
        values.update(lease_owner=None, lease_until=None)
        await tx.conn.execute(update(sync_table).where(
            S.environment_id == env, S.lease_owner == owner).values(**values))
        if again:
            await tx.enqueue(RUN_JOB, [env], job_id=_job_id(env))


async def _finish(hub: Hub, env: str, owner: str, row: Any, problem: SalesforceProblem | None, *,
                  hand_over: bool = False) -> None:
    stamp = now()
    values: dict[str, Any] = {"run_finished_at": stamp,
                              "next_run_at": stamp + timedelta(minutes=row["interval_minutes"])}
    if problem is None:
        values.update(last_success_at=stamp, last_error_code=None, last_error=None, last_error_at=None)
    else:
        values.update(last_error_code=problem.code, last_error=problem.message, last_error_at=stamp)
    await _release(hub, env, owner, row, values, again=hand_over)


async def _write(hub: Hub, env: str, records: list[Any], row: Any, types: Mapping[str, str]
                 ) -> tuple[int, int, str | None]:
    """Upsert a page's records; (written, skipped, why the last skipped one was)."""
    items: dict[str, dict[str, Any]] = {}
    skipped, skip = 0, None
    for record in records:
        try:
            item = to_item(record, row["user_id_field"], row["field_map"], types)
        except ConversionError as exc:
            skipped, skip = skipped + 1, f"{lookup(record, 'Id')}: {exc}"
            continue
        if item["userId"] in items:  # the later record of the same user wins, as it would in Hub
            skipped += 1
        items.pop(item["userId"], None)
        items[item["userId"]] = item
    batch = list(items.values())
    written = 0
    size = max(1, hub.settings.max_batch_size)
    for lo in range(0, len(batch), size):
        answer = await customers.upsert_customers(hub, env, batch[lo:lo + size])
        written += answer["created"] + answer["updated"]
        for result in answer["results"]:
            if result["status"] == "error":
                skipped += 1
                error = result["errors"][0]
                skip = f"user {result['userId']}: {error['field']} {error['reason']}"
    return written, skipped, skip


async def _check_host(hub: Hub, url: str) -> None:
    try:
        await check_url(url, allow_private=hub.settings.allow_private_urls)
    except UnsafeURL as exc:
        raise SalesforceProblem("UNSAFE_URL", str(exc)) from None


async def _pages(hub: Hub, env: str, owner: str, row: Any, connection: Connection) -> bool:
    """Pull and write every page after the watermark; True when the run should hand over."""
    async with hub.db.connect() as conn:
        defined = await customers.field_types(conn, env)
    types = {**defined, **core.BUILTIN_FIELDS}
    missing = sorted(set(row["field_map"].values()) - set(types))
    if missing:
        raise SalesforceProblem("HUB_FIELD_MISSING", f"customer field {missing[0]} is not defined any more "
                                                     "(define it again or change the mapping)")
    await _check_host(hub, row["login_url"])
    instance = await asyncio.to_thread(connection.login)
    await _check_host(hub, f"https://{instance}")
    watermark = (row["watermark_at"], row["watermark_id"]) if row["watermark_at"] else None
    soql = build_query(row["sobject"], [row["user_id_field"], *row["field_map"]], watermark)
    started = time.monotonic()
    budget = run_budget(hub)
    page = await asyncio.to_thread(connection.first_page, soql)
    while True:
        records = page["records"]
        if records:
            written, skipped, skip = await _write(hub, env, records, row, types)
            last = records[-1]
            await _commit_page(hub, env, owner, row["settings_version"],
                               (str(lookup(last, "LastModifiedDate")), str(lookup(last, "Id"))),
                               written, skipped, skip)
        if page.get("done", True) or not page.get("nextRecordsUrl"):
            return False
        if time.monotonic() - started > budget:
            return True
        page = await asyncio.to_thread(connection.next_page, str(page["nextRecordsUrl"]))


async def run(hub: Hub, env: str) -> dict[str, Any]:
    """One run of ``env``'s sync. ``outcome``: ``ok``, ``failed`` (recorded in the status),
    ``handed_over`` (a long run continues in a new job), ``busy`` (another run holds the lease),
    ``superseded`` (settings changed or removed mid-run) or ``absent`` (no sync)."""
    owner = uuid.uuid4().hex
    row = await _claim(hub, env, owner)
    if row is None:
        exists = await sync_config.get(hub, env) is not None
        return {"outcome": "busy" if exists else "absent"}
    settings = hub.plugin_settings[SETTINGS]
    problem: SalesforceProblem | None = None
    hand_over = False
    try:
        credentials = sync_config.credentials(hub, row)
    except ValueError:
        problem = SalesforceProblem("SECRET_UNREADABLE", "the stored password cannot be read (HUB_SECRET_KEY "
                                                         "changed): set the password again")
    if problem is None:
        connection = Connection(credentials, api_version=settings.salesforce_api_version,
                                timeout=settings.sync_http_timeout_seconds,
                                ca_file=settings.salesforce_ca_file, batch_size=settings.sync_batch_size)
        try:
            hand_over = await _pages(hub, env, owner, row, connection)
        except SalesforceProblem as exc:
            problem = exc
        except Superseded:
            log.info("sfmc_profile_sync_superseded", environment=env)
            await _release(hub, env, owner, row, {"run_finished_at": now()})
            return {"outcome": "superseded"}
        except Exception as exc:  # recorded, so an operator sees it; the worker carries on
            log.exception("sfmc_profile_sync_crashed", environment=env)
            problem = SalesforceProblem("INTERNAL",
                                        f"{type(exc).__name__} while syncing (see the worker's log)")
        finally:
            connection.close()
    await _finish(hub, env, owner, row, problem, hand_over=hand_over)
    if problem is not None:
        log.warning("sfmc_profile_sync_failed", environment=env, code=problem.code, reason=problem.message,
                    username=row["username"])
        return {"outcome": "failed", "code": problem.code, "message": problem.message}
    log.info("sfmc_profile_sync_done", environment=env, handed_over=hand_over)
    return {"outcome": "handed_over" if hand_over else "ok"}

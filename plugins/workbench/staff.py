"""Staff members, groups, permissions, sessions and the audit log.

Permissions, each granted per environment by a group:

- ``workbench:view``: see flows, customers and analytics in the Workbench;
- ``workbench:edit``: also write, test, publish, clone and import flows;
- ``workbench:admin``: also the settings pages plugins contribute (webhooks, push providers, ...);
- ``customer_center:view``: search customers and see their feeds in the Customer Center;
- ``customer_center:edit``: also send them flows enabled for the Customer Center.

Each implies those before it in its family (admin ⊃ edit ⊃ view).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update

from hub.app import Hub
from hub.core.clock import now as utcnow
from hub_plugins.workbench import tables
from hub_plugins.workbench.settings import WorkbenchSettings

SETTINGS = "workbench"
PERMISSIONS: tuple[str, ...] = ("workbench:view", "workbench:edit", "workbench:admin",
                                "customer_center:view", "customer_center:edit")
IMPLIES: dict[str, tuple[str, ...]] = {
    "workbench:admin": ("workbench:edit", "workbench:view"),
    "workbench:edit": ("workbench:view",),
    "customer_center:edit": ("customer_center:view",),
}
ALL_ENVIRONMENTS = "*"
SESSION_COOKIE = "hub_staff_session"

# scrypt at n=2**14, r=8, p=1 (16 MiB, about 50 ms here): OWASP's minimum for scrypt.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class StaffError(ValueError):
    """A staff or group change was refused; ``field`` names what was wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def settings_of(hub: Hub) -> WorkbenchSettings:
    return hub.plugin_settings[SETTINGS]


# --- passwords -----------------------------------------------------------------------------


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                                  p=int(p), dklen=len(digest) // 2)
    except ValueError:
        return False
    return hmac.compare_digest(computed.hex(), digest)


# A hash to check against when the email is unknown, so a wrong email costs as long as a wrong
# password and timing does not tell which emails have accounts.
_DUMMY_HASH = hash_password(secrets.token_hex(16))


# --- permissions ---------------------------------------------------------------------------


def expand(permissions: Iterable[str]) -> frozenset[str]:
    granted = set(permissions)
    for permission in list(granted):
        granted.update(IMPLIES.get(permission, ()))
    return frozenset(granted)


@dataclass(frozen=True)
class Staff:
    """A signed-in staff member and what their groups grant, environment by environment."""

    id: int
    email: str
    name: str
    groups: tuple[str, ...]
    grants: dict[str, frozenset[str]] = field(default_factory=dict)  # env or "*" -> permissions
    csrf_token: str = ""

    def permissions(self, env: str) -> frozenset[str]:
        return self.grants.get(env, frozenset()) | self.grants.get(ALL_ENVIRONMENTS, frozenset())

    def can(self, permission: str, env: str) -> bool:
        return permission in self.permissions(env)

    def environments(self, known: Sequence[str]) -> list[str]:
        """The environments among ``known`` where the member holds any permission."""
        return [env for env in known if self.permissions(env)]

    def landing(self, env: str) -> str:
        """Where the member lands in ``env``: the Workbench, or the Customer Center for those who
        hold only Customer Center permissions."""
        return "workbench" if self.can("workbench:view", env) else "customer_center"


def _grants(groups: Iterable[Any]) -> dict[str, frozenset[str]]:
    grants: dict[str, set[str]] = {}
    for row in groups:
        for env in row.environments:
            grants.setdefault(env, set()).update(expand(row.permissions))
    return {env: frozenset(permissions) for env, permissions in grants.items()}


async def _load(conn: Any, row: Any, csrf_token: str = "") -> Staff:
    groups = (await conn.execute(
        select(tables.group).join(tables.member, tables.member.c.group_name == tables.group.c.name)
        .where(tables.member.c.staff_id == row.id).order_by(tables.group.c.name))).all()
    return Staff(id=row.id, email=row.email, name=row.name, groups=tuple(g.name for g in groups),
                 grants=_grants(groups), csrf_token=csrf_token)


# --- groups --------------------------------------------------------------------------------


def _check_permissions(permissions: Sequence[str]) -> list[str]:
    unknown = [p for p in permissions if p not in PERMISSIONS]
    if unknown:
        raise StaffError("permissions", f"unknown permission {unknown[0]!r}; known: {', '.join(PERMISSIONS)}")
    if not permissions:
        raise StaffError("permissions", "a group needs at least one permission")
    return sorted(set(permissions))


async def save_group(hub: Hub, name: str, permissions: Sequence[str], environments: Sequence[str],
                     description: str = "") -> dict[str, Any]:
    """Create the group, or replace its permissions and environments."""
    name = name.strip()
    if not name or len(name) > 100:
        raise StaffError("name", "a group name is 1 to 100 characters")
    checked = _check_permissions(permissions)
    envs = sorted(set(environments)) or [ALL_ENVIRONMENTS]
    async with hub.db.begin() as conn:
        exists = (await conn.execute(select(tables.group.c.name).where(tables.group.c.name == name))).first()
        values = {"permissions": checked, "environments": envs, "description": description}
        if exists:
            await conn.execute(update(tables.group).where(tables.group.c.name == name).values(**values))
        else:
            await conn.execute(insert(tables.group).values(name=name, created_at=utcnow(), **values))
    return {"name": name, "permissions": checked, "environments": envs, "description": description}


async def list_groups(hub: Hub) -> list[dict[str, Any]]:
    async with hub.db.connect() as conn:
        rows = (await conn.execute(select(tables.group).order_by(tables.group.c.name))).all()
    return [{"name": r.name, "permissions": list(r.permissions), "environments": list(r.environments),
             "description": r.description} for r in rows]


# --- staff ---------------------------------------------------------------------------------


def _normal_email(email: str) -> str:
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > 320:
        raise StaffError("email", f"{email!r} is not an email address")
    return email


async def create_staff(hub: Hub, email: str, *, name: str = "", password: str | None,
                       groups: Sequence[str]) -> dict[str, Any]:
    """Create a staff member in ``groups`` (which must exist). ``password`` None: OIDC only."""
    email = _normal_email(email)
    minimum = settings_of(hub).min_password_length
    if password is not None and len(password) < minimum:
        raise StaffError("password", f"a password is at least {minimum} characters")
    async with hub.db.begin() as conn:
        known = set((await conn.execute(select(tables.group.c.name))).scalars())
        missing = [g for g in groups if g not in known]
        if missing:
            raise StaffError("groups", f"no group named {missing[0]!r} "
                                       f"(hub staff group-set {missing[0]} ...)")
        if (await conn.execute(select(tables.staff.c.id).where(tables.staff.c.email == email))).first():
            raise StaffError("email", f"a staff member with email {email} already exists")
        staff_id = (await conn.execute(insert(tables.staff).values(
            email=email, name=name or email.split("@")[0],
            password_hash=None if password is None else hash_password(password),
            disabled=False, created_at=utcnow()).returning(tables.staff.c.id))).scalar_one()
        for group_name in sorted(set(groups)):
            await conn.execute(insert(tables.member).values(staff_id=staff_id, group_name=group_name))
    return {"id": staff_id, "email": email, "groups": sorted(set(groups))}


async def set_staff(hub: Hub, email: str, *, password: str | None = None,
                    groups: Sequence[str] | None = None, disabled: bool | None = None) -> None:
    """Change a member's password, groups or disabled flag; disabling or a new password ends
    their sessions."""
    email = _normal_email(email)
    async with hub.db.begin() as conn:
        row = (await conn.execute(select(tables.staff).where(tables.staff.c.email == email))).first()
        if row is None:
            raise StaffError("email", f"no staff member with email {email}")
        values: dict[str, Any] = {}
        if password is not None:
            minimum = settings_of(hub).min_password_length
            if len(password) < minimum:
                raise StaffError("password", f"a password is at least {minimum} characters")
            values["password_hash"] = hash_password(password)
        if disabled is not None:
            values["disabled"] = disabled
        if values:
            await conn.execute(update(tables.staff).where(tables.staff.c.id == row.id).values(**values))
        if password is not None or disabled:
            await conn.execute(delete(tables.session).where(tables.session.c.staff_id == row.id))
        if groups is not None:
            known = set((await conn.execute(select(tables.group.c.name))).scalars())
            missing = [g for g in groups if g not in known]
            if missing:
                raise StaffError("groups", f"no group named {missing[0]!r}")
            await conn.execute(delete(tables.member).where(tables.member.c.staff_id == row.id))
            for group_name in sorted(set(groups)):
                await conn.execute(insert(tables.member).values(staff_id=row.id, group_name=group_name))


async def list_staff(hub: Hub) -> list[dict[str, Any]]:
    async with hub.db.connect() as conn:
        rows = (await conn.execute(select(tables.staff).order_by(tables.staff.c.email))).all()
        members = (await conn.execute(select(tables.member))).all()
    groups: dict[int, list[str]] = {}
    for m in members:
        groups.setdefault(m.staff_id, []).append(m.group_name)
    return [{"email": r.email, "name": r.name, "disabled": r.disabled, "groups": sorted(groups.get(r.id, [])),
             "lastLoginAt": r.last_login_at} for r in rows]


# --- sign-in and sessions ------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def authenticate(hub: Hub, email: str, password: str) -> Staff | None:
    """The member whose email and password these are, or None (unknown, wrong, disabled)."""
    try:
        email = _normal_email(email)
    except StaffError:
        check_password(password, _DUMMY_HASH)
        return None
    async with hub.db.connect() as conn:
        row = (await conn.execute(select(tables.staff).where(tables.staff.c.email == email))).first()
        if row is None or not check_password(password, row.password_hash):
            if row is None:
                check_password(password, _DUMMY_HASH)
            return None
        if row.disabled:
            return None
        return await _load(conn, row)


async def staff_by_email(hub: Hub, email: str) -> Staff | None:
    """An enabled member by email (for OIDC sign-in, where the issuer vouched for the email)."""
    async with hub.db.connect() as conn:
        row = (await conn.execute(select(tables.staff).where(
            tables.staff.c.email == email.strip().lower()))).first()
        if row is None or row.disabled:
            return None
        return await _load(conn, row)


async def open_session(hub: Hub, member: Staff, user_agent: str = "") -> tuple[str, datetime]:
    """A new session for ``member``: the cookie's token and when it expires."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    expires = now + timedelta(hours=settings_of(hub).session_hours)
    async with hub.db.begin() as conn:
        await conn.execute(insert(tables.session).values(
            token_hash=_token_hash(token), staff_id=member.id, csrf_token=secrets.token_urlsafe(32),
            created_at=now, expires_at=expires, user_agent=user_agent[:300]))
        await conn.execute(update(tables.staff).where(tables.staff.c.id == member.id)
                           .values(last_login_at=now))
        # Expired sessions of this member go as they sign in again.
        await conn.execute(delete(tables.session).where(
            tables.session.c.staff_id == member.id, tables.session.c.expires_at < now))
    return token, expires


async def session_staff(hub: Hub, token: str) -> Staff | None:
    """The member whose session this cookie token opens, or None (unknown, expired, disabled)."""
    if not token or len(token) > 100:
        return None
    async with hub.db.connect() as conn:
        row = (await conn.execute(
            select(tables.staff, tables.session.c.csrf_token, tables.session.c.expires_at)
            .join(tables.session, tables.session.c.staff_id == tables.staff.c.id)
            .where(tables.session.c.token_hash == _token_hash(token)))).first()
        if row is None or row.disabled or row.expires_at <= utcnow():
            return None
        return await _load(conn, row, csrf_token=row.csrf_token)


async def close_session(hub: Hub, token: str) -> None:
    async with hub.db.begin() as conn:
        await conn.execute(delete(tables.session).where(tables.session.c.token_hash == _token_hash(token)))


async def login_allowed(hub: Hub, keys: Sequence[str]) -> int:
    """0 when a sign-in may be tried, else the seconds until the failed-attempt limit of one of
    ``keys`` (the email, the client address) lets it."""
    cfg = settings_of(hub)
    for key in keys:
        name = f"hub:workbench:login-failures:{key}"
        count = await hub.redis.get(name)
        if count is not None and int(count) >= cfg.login_max_failures:
            ttl = await hub.redis.ttl(name)
            return max(1, int(ttl))
    return 0


async def login_failed(hub: Hub, keys: Sequence[str]) -> None:
    window = settings_of(hub).login_window_seconds
    for key in keys:
        name = f"hub:workbench:login-failures:{key}"
        async with hub.redis.pipeline(transaction=True) as pipe:
            pipe.set(name, 0, ex=window, nx=True)  # the window starts at the first failure
            pipe.incr(name)
            await pipe.execute()


async def login_succeeded(hub: Hub, email: str) -> None:
    await hub.redis.delete(f"hub:workbench:login-failures:email:{email.strip().lower()}")


# --- audit ---------------------------------------------------------------------------------


async def record(conn: Any, member: Staff, env: str | None, action: str, target: str,
                 detail: dict[str, Any] | None = None) -> None:
    """Write one audit entry in the caller's transaction, so it stands or falls with the change."""
    await conn.execute(insert(tables.audit).values(
        environment_id=env, staff_id=member.id, staff_email=member.email, action=action,
        target=target[:300], detail=detail or {}, at=utcnow()))


async def audit_log(hub: Hub, env: str, *, target: str | None = None, limit: int = 50,
                    before: int | None = None) -> list[dict[str, Any]]:
    query = select(tables.audit).where(tables.audit.c.environment_id == env)
    if target is not None:
        query = query.where(tables.audit.c.target == target)
    if before is not None:
        query = query.where(tables.audit.c.id < before)
    async with hub.db.connect() as conn:
        rows = (await conn.execute(query.order_by(tables.audit.c.id.desc()).limit(limit))).all()
    return [{"id": r.id, "staffEmail": r.staff_email, "action": r.action, "target": r.target,
             "detail": r.detail, "at": r.at} for r in rows]

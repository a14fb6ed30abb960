"""Settings: one msgspec Struct, read from ``HUB_*`` environment variables and an optional TOML file.

Precedence, lowest first: defaults, ``hub.toml`` (or the file named by ``HUB_CONFIG``), environment.
Plugins register their own Struct with ``hub_register_settings``; it is read the same way from
``HUB_<PLUGIN>_*`` (see :func:`load_struct`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

T = TypeVar("T", bound=msgspec.Struct)


class SettingsError(ValueError):
    """A setting has a value Hub cannot use; the message names the variable."""


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    """Every core setting. Each field is read from ``HUB_<FIELD NAME IN CAPITALS>``."""

    database_url: str = "sqlite+aiosqlite:///./var/hub.db"
    """SQLAlchemy URL. ``sqlite+aiosqlite:///path`` (default) or ``postgresql+asyncpg://...``."""
    redis_url: str = ""
    """Redis URL (``redis://``, ``rediss://`` or ``unix://``). Empty: an embedded server is started."""
    var_dir: str = "./var"
    """Where the embedded Redis, the SQLite file and generated dev secrets live."""
    secret_key: str = ""
    """Signs API access tokens. Empty: generated once into ``<var_dir>/secret_key`` (dev only)."""
    host: str = "127.0.0.1"
    """``hub serve`` / ``hub dev`` bind address."""
    port: int = 8000
    """``hub serve`` / ``hub dev`` port."""
    token_ttl_seconds: int = 3600
    """Lifetime of access tokens from ``POST /v1/{env}/oauth/token``."""
    max_body_bytes: int = 1_048_576
    """Largest request body accepted; larger bodies get 413."""
    max_batch_size: int = 1000
    """Most items in one batch request (customer upserts, card cancels)."""
    max_page_size: int = 1000
    """Largest ``limit`` a list endpoint accepts."""
    load_plugins: tuple[str, ...] | None = None
    """Comma-separated module names or entry-point names: load only these plugins."""
    disable_plugins: tuple[str, ...] = ()
    """Comma-separated plugin names not to load."""
    log_level: str = "INFO"
    """Logging threshold: DEBUG, INFO, WARNING, ERROR."""
    log_format: str = "json"
    """``json`` (one JSON object a line) or ``console`` (coloured, for humans)."""
    worker_max_jobs: int = 0
    """Jobs one ``hub worker`` process runs concurrently. 0: ``HUB_DB_POOL_SIZE`` on PostgreSQL, 4 on
    SQLite (one writer at a time); more would only queue on the pool or the lock."""
    worker_gc_threshold: int = 20_000
    """Objects a ``hub worker`` process allocates between two young-generation garbage collections
    (Python's own default is 700). A worker makes many short-lived objects per job, and at 700 the
    collector took a tenth of its CPU; startup objects are also frozen out of collections.
    0 keeps Python's defaults."""
    job_timeout_seconds: int = 60
    """A job running longer than this is cancelled and retried. A job whose worker died is run
    again once this plus 10 s has passed, so keep jobs short (they work in chunks)."""
    job_max_tries: int = 10
    """Attempts before a job is given up (each attempt is logged)."""
    outbox_relay_seconds: float = 5.0
    """How often workers sweep the outbox for rows whose enqueue never happened."""
    outbox_grace_seconds: float = 10.0
    """Age an outbox row must reach before the relay treats it as missed."""
    db_pool_size: int = 10
    """PostgreSQL connections per process for transactions, and as many again for hot reads
    (kept open; requests beyond them wait for one). Mind PostgreSQL's ``max_connections``."""
    db_analyze: Literal["auto", "always", "never"] = "auto"
    """PostgreSQL: whether ``hub worker`` analyses Hub's tables whose rows changed by more than
    1,000 + 10% since their last ``ANALYZE``. ``auto``: only when the server's autovacuum is off
    (with it on, autovacuum does it)."""
    db_analyze_seconds: float = 30.0
    """How often that check runs (it is one query when nothing is stale)."""
    metrics_token: str = ""
    """If set, ``/metrics`` requires ``Authorization: Bearer <token>``."""
    allow_private_urls: bool = False
    """Let flows and webhooks call private, loopback and link-local addresses."""
    embedded_redis_port: int = 0
    """If non-zero, the embedded Redis also listens on this TCP port of 127.0.0.1."""
    cors_allow_origins: tuple[str, ...] = ()
    """Origins (``https://app.bank.example``, comma-separated) whose web pages may call the API
    from a browser, as the JS SDK does from your app's pages; ``*`` allows any. Empty: none."""

    push_max_attempts: int = 8
    """Attempts to reach a device whose provider asks to try again (429, 5xx, unreachable)
    before its push is given up as failed."""
    push_retry_base_seconds: float = 10.0
    """First wait before trying a device again; it doubles each attempt (with jitter), and is
    never shorter than the provider's ``Retry-After``."""
    push_retry_max_seconds: float = 3600.0
    """Longest wait between two attempts (a longer ``Retry-After`` is still honoured)."""
    push_default_ttl_seconds: int = 86_400
    """How long a provider keeps a push for an offline device when its card has no expiry (a
    card with an expiry keeps its push until then)."""
    push_batch_size: int = 200
    """Notifications one push job sends (a fan-out's pushes go in jobs of this many)."""
    push_concurrency: int = 200
    """Sends in flight at once in one push job."""

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _split(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def load_struct(
    cls: type[T],
    prefix: str,
    environ: Mapping[str, str] | None = None,
    file_values: Mapping[str, Any] | None = None,
) -> T:
    """Build ``cls`` from ``file_values`` overridden by ``{prefix}{FIELD}`` environment variables.

    Values from the environment are strings; msgspec converts them to the field's type
    (``"10"`` to ``10``, ``"true"`` to ``True``). Tuple and list fields take comma-separated values.
    """
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = dict(file_values or {})
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        key = f"{prefix}{field.name.upper()}"
        if key not in environ:
            continue
        value: Any = environ[key]
        inner = field.type
        if isinstance(inner, msgspec.inspect.UnionType):
            inner = next(
                (t for t in inner.types if not isinstance(t, msgspec.inspect.NoneType)), inner
            )
        if isinstance(inner, (msgspec.inspect.TupleType, msgspec.inspect.VarTupleType,
                              msgspec.inspect.ListType)):
            value = _split(value)
        raw[field.name] = value
    try:
        return msgspec.convert(raw, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"invalid setting ({prefix}*): {exc}") from exc


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read the core settings. ``overrides`` win over everything (used by tests and the CLI)."""
    environ = os.environ if environ is None else environ
    file_values: dict[str, Any] = {}
    path = environ.get("HUB_CONFIG") or ("hub.toml" if Path("hub.toml").exists() else "")
    if path:
        try:
            file_values = tomllib.loads(Path(path).read_text()).get("hub", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read HUB_CONFIG file {path}: {exc}") from exc
    settings = load_struct(Settings, "HUB_", environ, file_values)
    if overrides:
        settings = msgspec.structs.replace(settings, **overrides)
    return settings


def settings_table() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every core setting; the README table is checked against it."""
    import ast
    import inspect

    source = inspect.getsource(Settings)
    tree = ast.parse(source)
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, following in zip(body, body[1:] + [None], strict=True):
        if isinstance(node, ast.AnnAssign) and isinstance(following, ast.Expr):
            docs[node.target.id] = str(following.value.value).strip()  # type: ignore[attr-defined]
    defaults = Settings()
    rows = []
    for name in Settings.__struct_fields__:
        default = getattr(defaults, name)
        shown = "" if default in ("", None, ()) else str(default)
        rows.append((f"HUB_{name.upper()}", shown, docs.get(name, "")))
    return rows

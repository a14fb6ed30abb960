"""The Salesforce side of the profile sync: simple-salesforce, which blocks, so every method of
:class:`Connection` is meant to run in a thread (``asyncio.to_thread``).

Login is the SOAP username-password login (password followed by the user's security token) at
the environment's login URL; queries go to the REST API of the instance the login names and
page with ``nextRecordsUrl``. A session that expires mid-sync is renewed once per call. Every
failure becomes a :class:`SalesforceProblem` carrying Salesforce's own error code
(``INVALID_LOGIN``, ``INVALID_FIELD``, ...) and message, which never hold a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce, SalesforceLogin
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
)

if TYPE_CHECKING:
    from hub_plugins.salesforce_mc.sync_config import Credentials

MAX_MESSAGE = 1000


class SalesforceProblem(Exception):
    """Salesforce refused or could not be reached: ``code`` is Salesforce's error code when it
    gave one (``INVALID_LOGIN``, ``INVALID_FIELD``, ``INVALID_SESSION_ID``) or Hub's
    (``UNREACHABLE``, ``BAD_RESPONSE``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code[:64]
        self.message = message[:MAX_MESSAGE]


class _Adapter(HTTPAdapter):
    """Gives every request a timeout (simple-salesforce's login sets none) and, when
    HUB_SFMC_SALESFORCE_CA_FILE is set, that CA file (over REQUESTS_CA_BUNDLE and the like)."""

    def __init__(self, timeout: float, ca_file: str) -> None:
        super().__init__()
        self.timeout, self.ca_file = timeout, ca_file

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        if self.ca_file:
            kwargs["verify"] = self.ca_file
        return super().send(request, **kwargs)


def _problem(exc: Exception) -> SalesforceProblem:
    if isinstance(exc, SalesforceAuthenticationFailed):
        message = getattr(exc, "auth_message", None) or "login refused"
        return SalesforceProblem(str(exc.code or "LOGIN_FAILED"), " ".join(str(message).split()))
    if isinstance(exc, SalesforceError):
        content = exc.content
        if isinstance(content, list) and content and isinstance(content[0], Mapping):
            first = content[0]
            return SalesforceProblem(str(first.get("errorCode") or f"HTTP_{exc.status}"),
                                     " ".join(str(first.get("message") or "").split()))
        return SalesforceProblem(f"HTTP_{exc.status}", f"{exc.resource_name or 'request'} answered "
                                                       f"{exc.status}: {str(content)[:200]}")
    if isinstance(exc, requests.RequestException):
        host = exc.request.url.split("/")[2] if exc.request is not None and exc.request.url else "Salesforce"
        return SalesforceProblem("UNREACHABLE", f"cannot reach {host}: {type(exc).__name__}")
    if isinstance(exc, ValueError | KeyError | TypeError):
        return SalesforceProblem("BAD_RESPONSE",
                                 f"Salesforce answered something unexpected ({type(exc).__name__})")
    raise exc


def soql_datetime(value: str) -> str:
    """A LastModifiedDate as Salesforce writes it (``2026-05-01T12:34:56.000+0000``) as a SOQL
    literal (``2026-05-01T12:34:56Z``; milliseconds kept when there are any)."""
    parsed = datetime.fromisoformat(value)
    millis = parsed.microsecond // 1000
    text = parsed.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def build_query(sobject: str, fields: list[str], watermark: tuple[str, str] | None) -> str:
    """``SELECT <fields>, Id, LastModifiedDate FROM <sobject> [WHERE after the watermark] ORDER BY
    LastModifiedDate, Id``. The fields are checked API names (:data:`sync_config.SF_FIELD`); the
    watermark comes from Salesforce, its Id is checked here."""
    selected: list[str] = []
    for name in [*fields, "Id", "LastModifiedDate"]:
        if name.lower() not in {s.lower() for s in selected}:
            selected.append(name)
    soql = f"SELECT {', '.join(selected)} FROM {sobject}"
    if watermark is not None:
        at, last_id = soql_datetime(watermark[0]), watermark[1]
        if not last_id.isalnum():
            raise ValueError("a Salesforce Id is alphanumeric")
        soql += f" WHERE LastModifiedDate > {at} OR (LastModifiedDate = {at} AND Id > '{last_id}')"
    return soql + " ORDER BY LastModifiedDate, Id"


class Connection:
    """One sync's Salesforce session. Blocking: call its methods in a thread."""

    def __init__(self, credentials: Credentials, *, api_version: str, timeout: float, ca_file: str = "",
                 batch_size: int = 2000) -> None:
        self.credentials = credentials
        self.api_version = api_version
        self.session = requests.Session()
        adapter = _Adapter(timeout, ca_file)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.headers = {"Sforce-Query-Options": f"batchSize={max(200, min(2000, batch_size))}"}
        self.client: Salesforce | None = None
        self.instance = ""

    def __repr__(self) -> str:
        return f"Connection({self.credentials!r})"

    def close(self) -> None:
        self.session.close()

    def login(self) -> str:
        """Log in; returns the instance's host (``acme.my.salesforce.com``) the queries go to."""
        c = self.credentials
        try:
            session_id, instance = SalesforceLogin(
                username=c.username, password=c.password, security_token=c.security_token,
                sf_version=self.api_version, session=self.session, scratch_url=c.login_url)
        except Exception as exc:  # every failure is reported as Salesforce's code and message
            raise _problem(exc) from None
        self.instance = instance
        self.client = Salesforce(session_id=session_id, instance=instance, version=self.api_version,
                                 session=self.session)
        return instance

    def _call(self, method: str, argument: str) -> dict[str, Any]:
        for attempt in (1, 2):
            if self.client is None:
                self.login()
            assert self.client is not None
            try:
                if method == "query":
                    page = self.client.query(argument, headers=self.headers)
                else:
                    page = self.client.query_more(argument, identifier_is_url=True, headers=self.headers)
                if not isinstance(page, Mapping) or not isinstance(page.get("records"), list):
                    raise ValueError("no records list")
                return dict(page)
            except SalesforceExpiredSession:
                if attempt == 2:
                    raise SalesforceProblem("INVALID_SESSION_ID", "the session expired again right after "
                                                                  "a new login") from None
                self.client = None  # log in again, then repeat the same call
            except Exception as exc:
                raise _problem(exc) from None
        raise AssertionError("unreachable")

    def first_page(self, soql: str) -> dict[str, Any]:
        """The query's first page: ``{"records": [...], "done": bool, "nextRecordsUrl"?: str}``."""
        return self._call("query", soql)

    def next_page(self, next_records_url: str) -> dict[str, Any]:
        """The page at ``nextRecordsUrl`` (``/services/data/vXX.X/query/<locator>-<offset>``)."""
        if not next_records_url.startswith("/services/data/"):
            raise SalesforceProblem("BAD_RESPONSE", "nextRecordsUrl is not a query URL of this instance")
        return self._call("query_more", next_records_url)

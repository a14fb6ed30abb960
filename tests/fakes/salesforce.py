"""A fake Salesforce on loopback: the SOAP login and the REST query API, over TLS.

Written from Salesforce's SOAP API and REST API developer guides, for what simple-salesforce
calls (its ``login.py`` and ``api.py``). It serves HTTPS with a certificate from a ``trustme`` CA
whose PEM is written to :attr:`FakeSalesforce.ca_file` (simple-salesforce builds every REST URL
with ``https://``):

- ``POST /services/Soap/u/<version>``: the partner API ``login`` (``SOAPAction: login``,
  ``text/xml``). The password element holds the password followed by the security token. A known
  user with both right gets the ``loginResponse`` (``sessionId``, ``serverUrl`` on this server);
  anything else the real fault, HTTP 500 with ``sf:INVALID_LOGIN`` in ``sf:exceptionCode``.
- ``GET /services/data/v<version>/query?q=<SOQL>``: ``Authorization: Bearer <sessionId>`` of a
  live session, else 401 ``[{"message": "Session expired or invalid", "errorCode":
  "INVALID_SESSION_ID"}]``. The SOQL it understands: ``SELECT f, g.h FROM Object [WHERE ...]
  [ORDER BY f [ASC|DESC], ...] [LIMIT n]`` with ``AND``/``OR``/parentheses and comparisons of a
  field to a string, date-time, number, boolean or ``null``. An unknown object is 400
  ``INVALID_TYPE``, an unknown field 400 ``INVALID_FIELD`` (Salesforce's message), anything else
  it cannot read 400 ``MALFORMED_QUERY``. Answers ``{"totalSize", "done", "records"}`` with each
  record's ``attributes``; when more remain, ``done: false`` and ``nextRecordsUrl``
  ``/services/data/v<version>/query/<locator>-<offset>``, which serves the next page of the
  same snapshot. A page holds :attr:`FakeSalesforce.page_size` records, or fewer when the
  ``Sforce-Query-Options: batchSize=N`` header asks.

Records live in memory: :meth:`add` and :meth:`update` stamp ``LastModifiedDate`` from
:attr:`now` (move it with :meth:`tick`). :meth:`fail` scripts an error answer for the n-th next
query or query-more call; :meth:`expire_sessions` ends every session (the client must log in
again). :attr:`requests` logs every call, :attr:`served` the Ids each page carried.

Manual use: ``python -m tests.fakes.salesforce [--port P] [--contacts N]`` serves a user
``hub@example.com`` / ``password`` + token ``TOKEN`` and N contacts, and prints one JSON line
``{"loginUrl", "caFile", "username", "password", "securityToken"}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import secrets
import ssl
import string
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

API_VERSION = "59.0"
ORG_ID = "00D5g000004ZfakEAC"
PREFIXES = {"Contact": "003", "Lead": "00Q"}
STANDARD_FIELDS = {
    "Contact": ["Id", "FirstName", "LastName", "Name", "Email", "Phone", "MobilePhone", "MailingCity",
                "MailingCountry", "MailingAddress", "Birthdate", "HasOptedOutOfEmail", "AccountId",
                "Account.Name", "CreatedDate", "LastModifiedDate", "SystemModstamp"],
    "Lead": ["Id", "FirstName", "LastName", "Name", "Email", "Phone", "Company", "City", "Country",
             "Status", "HasOptedOutOfEmail", "CreatedDate", "LastModifiedDate", "SystemModstamp"],
}
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER = "urn:partner.soap.sforce.com"
INVALID_LOGIN = "Invalid username, password, security token; or user locked out."
_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<op><=|>=|!=|<>|=|<|>)|(?P<punct>[(),])"
                    r"|(?P<word>[A-Za-z0-9_.:+-]+))")
_PATH = re.compile(r"/services/data/v(?P<version>\d+\.\d)/query"
                   r"(?:/(?P<locator>[A-Za-z0-9]+)-(?P<offset>\d+))?/?")
_SOAP_PATH = re.compile(r"/services/Soap/u/(?P<version>\d+\.\d)/?")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:?\d{2})")


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def sf_datetime(value: datetime) -> str:
    """A date-time as the REST API writes it: ``2026-05-01T12:34:56.000+0000``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def _parse_datetime(text: str) -> datetime:
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Failure:
    on: str  # query | query_more | any
    status: int
    code: str
    message: str
    after: int  # let this many matching calls through first


@dataclass
class FakeSalesforce:
    page_size: int = 2000
    now: datetime = field(default_factory=lambda: datetime(2026, 5, 1, 9, 0, tzinfo=UTC))
    url: str = ""
    ca_file: str = ""
    users: dict[str, tuple[str, str]] = field(default_factory=dict)  # username -> (password, token)
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    custom_fields: dict[str, set[str]] = field(default_factory=dict)
    sessions: set[str] = field(default_factory=set)
    requests: list[dict[str, Any]] = field(default_factory=list)
    served: list[list[str]] = field(default_factory=list)
    logins: int = 0
    failures: list[Failure] = field(default_factory=list)
    _cursors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _counter: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # --- scripting ------------------------------------------------------------------------

    def add_user(self, username: str, password: str, security_token: str = "") -> None:
        self.users[username] = (password, security_token)

    def define_field(self, sobject: str, name: str) -> None:
        """A custom field (``Loyalty_Tier__c``) the object has from now on."""
        self.custom_fields.setdefault(sobject, set()).add(name)

    def tick(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def add(self, sobject: str, **values: Any) -> str:
        """A new record stamped with :attr:`now`; returns its 18-character Id."""
        with self._lock:
            self._counter += 1
            number, digits = self._counter, ""
            while number:
                number, rest = divmod(number, 62)
                digits = BASE62[rest] + digits
            record_id = f"{PREFIXES[sobject]}5g00000{digits.rjust(5, '0')}AAA"
            stamp = sf_datetime(self.now)
            self.records.setdefault(sobject, {})[record_id] = {
                **values, "Id": record_id, "CreatedDate": stamp, "LastModifiedDate": stamp,
                "SystemModstamp": stamp}
        return record_id

    def update(self, sobject: str, record_id: str, **values: Any) -> None:
        with self._lock:
            record = self.records[sobject][record_id]
            record.update(values)
            record["LastModifiedDate"] = record["SystemModstamp"] = sf_datetime(self.now)

    def fail(self, on: str = "query_more", *, status: int = 503, code: str = "SERVER_UNAVAILABLE",
             message: str = "Server temporarily unavailable", after: int = 0) -> None:
        """Answer the next ``on`` call (``query``, ``query_more`` or ``any``) after ``after`` of
        them with ``status`` and ``[{"message", "errorCode"}]``, once."""
        self.failures.append(Failure(on, status, code, message, after))

    def expire_sessions(self) -> None:
        self.sessions.clear()

    # --- SOQL -----------------------------------------------------------------------------

    def _fields_of(self, sobject: str) -> dict[str, str]:
        names = STANDARD_FIELDS[sobject] + sorted(self.custom_fields.get(sobject, ()))
        return {name.lower(): name for name in names}

    def query(self, soql: str) -> list[dict[str, Any]]:
        """The records ``soql`` selects, as the REST API writes them (raises :class:`SoqlError`)."""
        match = re.fullmatch(r"\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)(?P<rest>.*)", soql,
                             re.IGNORECASE | re.DOTALL)
        if match is None:
            raise SoqlError("MALFORMED_QUERY", "unexpected token: the query must be SELECT ... FROM ...")
        sobject = next((o for o in PREFIXES if o.lower() == match["object"].lower()), None)
        if sobject is None:
            raise SoqlError("INVALID_TYPE", f"sObject type '{match['object']}' is not supported. If you are "
                                            "attempting to use a custom object, be sure to append the '__c' "
                                            "after the entity name.")
        known = self._fields_of(sobject)

        def resolve(name: str) -> str:
            canonical = known.get(name.lower())
            if canonical is None:
                raise SoqlError("INVALID_FIELD", f"\n{soql[:60]}\n^\nERROR at Row:1:Column:8\nNo such column "
                                f"'{name}' on entity '{sobject}'. If you are attempting to use a custom "
                                "field, be sure to append the '__c' after the custom field name. Please "
                                "reference your WSDL or the describe call for the appropriate names.")
            return canonical

        selected = [resolve(f.strip()) for f in match["fields"].split(",")]
        if len({s.lower() for s in selected}) != len(selected):
            raise SoqlError("MALFORMED_QUERY", "duplicate field selected")
        tokens = _tokens(match["rest"])
        parser = _Parser(tokens, resolve)
        condition = parser.where()
        order = parser.order_by()
        limit = parser.limit()
        if parser.position != len(tokens):
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{tokens[parser.position]}'")
        with self._lock:
            rows = [dict(r) for r in self.records.get(sobject, {}).values()]
        rows = [r for r in rows if condition is None or condition(r)]
        for name, descending in reversed(order):
            rows.sort(key=lambda r, n=name: _sort_key(_value(r, n)), reverse=descending)
        if limit is not None:
            rows = rows[:limit]
        return [self._shape(sobject, row, selected) for row in rows]

    def _shape(self, sobject: str, row: dict[str, Any], selected: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": {
            "type": sobject, "url": f"/services/data/v{API_VERSION}/sobjects/{sobject}/{row['Id']}"}}
        for name in selected:
            if "." in name:
                relation, child = name.split(".", 1)
                parent = row.get(relation)
                if parent is None:
                    out.setdefault(relation, None)
                else:
                    out[relation] = out.get(relation) or {"attributes": {"type": relation}}
                    out[relation][child] = parent.get(child)
            else:
                out[name] = row.get(name)
        return out

    # --- serving --------------------------------------------------------------------------

    def _failure(self, kind: str) -> Failure | None:
        with self._lock:
            for failure in self.failures:
                if failure.on in (kind, "any"):
                    if failure.after > 0:
                        failure.after -= 1
                        return None
                    self.failures.remove(failure)
                    return failure
        return None

    def _page(self, locator: str, offset: int, batch_size: int) -> dict[str, Any]:
        rows = self._cursors[locator]
        size = max(1, min(self.page_size, batch_size))
        page = rows[offset:offset + size]
        self.served.append([r["Id"] for r in page])
        body: dict[str, Any] = {"totalSize": len(rows), "done": offset + size >= len(rows), "records": page}
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/v{API_VERSION}/query/{locator}-{offset + size}"
        return body

    def _login(self, body: bytes) -> tuple[int, str]:
        try:
            root = ElementTree.fromstring(body)
            username = root.findtext(f".//{{{PARTNER}}}username") or ""
            password = root.findtext(f".//{{{PARTNER}}}password") or ""
        except ElementTree.ParseError:
            return 500, _fault("INVALID_LOGIN", INVALID_LOGIN)
        known = self.users.get(username)
        if known is None or password != known[0] + known[1]:
            return 500, _fault("INVALID_LOGIN", INVALID_LOGIN)
        self.logins += 1
        session = f"{ORG_ID[:15]}!AQ4AQ{secrets.token_urlsafe(48)}"
        self.sessions.add(session)
        server = f"{self.url}/services/Soap/u/{API_VERSION}/{ORG_ID}"
        return 200, (
            f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" '
            f'xmlns="{PARTNER}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
            f"<loginResponse><result><metadataServerUrl>{self.url}/services/Soap/m/{API_VERSION}/{ORG_ID}"
            f"</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
            f"<serverUrl>{server}</serverUrl><sessionId>{session}</sessionId><userId>0055g00000AbCdEAAV"
            f"</userId><userInfo><organizationId>{ORG_ID}</organizationId><userName>{username}</userName>"
            f"</userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, status: int, raw: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _json(self, status: int, body: Any) -> None:
                self._send(status, json.dumps(body).encode(), "application/json;charset=UTF-8")

            def _error(self, status: int, code: str, message: str) -> None:
                self._json(status, [{"message": message, "errorCode": code}])

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.requests.append({"method": "POST", "path": self.path})
                if not _SOAP_PATH.fullmatch(self.path):
                    self._error(404, "NOT_FOUND", "The requested resource does not exist")
                    return
                if self.headers.get("SOAPAction", "").strip('"') != "login" or "xml" not in self.headers.get(
                        "Content-Type", ""):
                    self._send(500, _fault("INVALID_OPERATION", "no SOAPAction login").encode(), "text/xml")
                    return
                status, xml = fake._login(body)
                self._send(status, xml.encode(), "text/xml;charset=UTF-8")

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                match = _PATH.fullmatch(parts.path)
                query = parse_qs(parts.query).get("q", [""])[0]
                kind = "query" if match and match["locator"] is None else "query_more"
                fake.requests.append({"method": "GET", "path": parts.path, "kind": kind, "soql": query})
                if match is None:
                    self._error(404, "NOT_FOUND", "The requested resource does not exist")
                    return
                auth = self.headers.get("Authorization", "")
                if not auth.startswith("Bearer ") or auth[7:] not in fake.sessions:
                    self._error(401, "INVALID_SESSION_ID", "Session expired or invalid")
                    return
                failure = fake._failure(kind)
                if failure is not None:
                    self._error(failure.status, failure.code, failure.message)
                    return
                options = self.headers.get("Sforce-Query-Options", "")
                batch = re.search(r"batchSize=(\d+)", options)
                batch_size = int(batch.group(1)) if batch else 2000
                if kind == "query":
                    try:
                        rows = fake.query(query)
                    except SoqlError as exc:
                        self._error(400, exc.code, exc.message)
                        return
                    locator = f"01g5g0000{secrets.token_hex(5)}"
                    fake._cursors[locator] = rows
                    self._json(200, fake._page(locator, 0, batch_size))
                    return
                if match["locator"] not in fake._cursors:
                    self._error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
                    return
                self._json(200, fake._page(match["locator"], int(match["offset"]), batch_size))

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def start(self, directory: Path, port: int = 0) -> None:
        import trustme

        ca = trustme.CA(organization_name="Hub fake Salesforce")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.ca_file = str(directory / "fake-salesforce-ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.url = f"https://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _fault(code: str, message: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" '
            'xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f"<soapenv:Body><soapenv:Fault><faultcode>sf:{code}</faultcode><faultstring>{code}: {message}"
            f'</faultstring><detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>{code}'
            f"</sf:exceptionCode><sf:exceptionMessage>{message}</sf:exceptionMessage></sf:LoginFault></detail>"
            "</soapenv:Fault></soapenv:Body></soapenv:Envelope>")


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    while text[position:].strip():
        found = _TOKEN.match(text, position)
        if found is None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text[position:].split()[0]}'")
        tokens.append(found.group(0).strip())
        position = found.end()
    return tokens


def _value(row: dict[str, Any], name: str) -> Any:
    value: Any = row
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")  # nulls first, as SOQL sorts ascending by default
    if isinstance(value, str) and _DATETIME.fullmatch(value.replace("+0000", "Z")):
        return (1, _parse_datetime(value).isoformat())
    return (1, value)


def _compare(left: Any, op: str, right: Any) -> bool:
    if isinstance(right, datetime):
        if left is None:
            return op in ("!=", "<>")
        left = _parse_datetime(left)
    if left is None or right is None:
        return (left is right) == (op == "=")
    return {"=": left == right, "!=": left != right, "<>": left != right, "<": left < right,
            "<=": left <= right, ">": left > right, ">=": left >= right}[op]


class _Parser:
    """WHERE / ORDER BY / LIMIT of the SOQL the fake understands, over tokens."""

    def __init__(self, tokens: list[str], resolve: Any) -> None:
        self.tokens, self.resolve, self.position = tokens, resolve, 0

    def _peek(self) -> str:
        return self.tokens[self.position] if self.position < len(self.tokens) else ""

    def _take(self, expected: str | None = None) -> str:
        token = self._peek()
        if not token or (expected is not None and token.upper() != expected):
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{token or '<end>'}'")
        self.position += 1
        return token

    def where(self) -> Any:
        if self._peek().upper() != "WHERE":
            return None
        self._take()
        return self._or()

    def _or(self) -> Any:
        terms = [self._and()]
        while self._peek().upper() == "OR":
            self._take()
            terms.append(self._and())
        return lambda row: any(term(row) for term in terms)

    def _and(self) -> Any:
        factors = [self._factor()]
        while self._peek().upper() == "AND":
            self._take()
            factors.append(self._factor())
        return lambda row: all(factor(row) for factor in factors)

    def _factor(self) -> Any:
        if self._peek() == "(":
            self._take()
            inner = self._or()
            self._take(")")
            return inner
        name = self.resolve(self._take())
        op = self._take()
        if op not in ("=", "!=", "<>", "<", "<=", ">", ">="):
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{op}'")
        right = self._literal(self._take())
        return lambda row: _compare(_value(row, name), op, right)

    @staticmethod
    def _literal(token: str) -> Any:
        if token.startswith("'"):
            return re.sub(r"\\(.)", r"\1", token[1:-1])
        if _DATETIME.fullmatch(token):
            return _parse_datetime(token)
        if token.lower() in ("true", "false"):
            return token.lower() == "true"
        if token.lower() == "null":
            return None
        try:
            return float(token)
        except ValueError:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{token}'") from None

    def order_by(self) -> list[tuple[str, bool]]:
        if self._peek().upper() != "ORDER":
            return []
        self._take()
        self._take("BY")
        order = []
        while True:
            name = self.resolve(self._take())
            descending = False
            if self._peek().upper() in ("ASC", "DESC"):
                descending = self._take().upper() == "DESC"
            order.append((name, descending))
            if self._peek() != ",":
                return order
            self._take()

    def limit(self) -> int | None:
        if self._peek().upper() != "LIMIT":
            return None
        self._take()
        token = self._take()
        if not token.isdigit():
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{token}'")
        return int(token)


@contextlib.contextmanager
def running(page_size: int = 2000, port: int = 0) -> Iterator[FakeSalesforce]:
    """Serve a fake Salesforce on 127.0.0.1 (a thread); ``fake.url`` is its login URL."""
    fake = FakeSalesforce(page_size=page_size)
    with tempfile.TemporaryDirectory(prefix="hub-fake-salesforce-") as directory:
        fake.start(Path(directory), port)
        try:
            yield fake
        finally:
            fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.salesforce",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--contacts", type=int, default=10, help="contacts to serve")
    parser.add_argument("--page-size", type=int, default=2000, help="records per page at most")
    args = parser.parse_args(argv)
    with running(args.page_size, args.port) as fake:
        fake.add_user("hub@example.com", "password", "TOKEN")
        for i in range(args.contacts):
            fake.add("Contact", FirstName=f"Ada{i}", LastName="Lovelace", Email=f"ada{i}@example.com")
            fake.tick(seconds=1)
        print(json.dumps({"loginUrl": fake.url, "caFile": fake.ca_file, "username": "hub@example.com",
                          "password": "password", "securityToken": "TOKEN"}), flush=True)
        print(f"Fake Salesforce at {fake.url}: export HUB_SFMC_SALESFORCE_CA_FILE={fake.ca_file} "
              "HUB_ALLOW_PRIVATE_URLS=true. Ctrl-C stops.", file=sys.stderr, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()

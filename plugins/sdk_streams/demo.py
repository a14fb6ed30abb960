"""The JavaScript SDK's file and the demo page ``hub dev`` serves.

``GET /sdk/hub-sdk.js`` serves the SDK (an ES module, no build step) to any page, like any
other static asset: it holds no data. The demo (``/sdk/demo``, and the two routes it calls to
get an end-user token and to send itself a card) exists only where
``HUB_SDK_STREAMS_DEMO_KEY_FILE`` names a private key: ``hub dev`` creates one, registers its
public half as an SDK key of the demo environment and sets the variable. Everywhere else (the
default, and production) the demo routes answer 404. Even then they only act for customers the
environment marks as test users (``isTestUser``), so the demo can never sign in as a real one.
"""

from __future__ import annotations

import hashlib
import html
import json
import secrets
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import msgspec
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from litestar import Request, Response, get, post
from litestar.params import JSONBody, QueryParameter

from hub.api.problems import Problem, invalid
from hub.app import HubDep
from hub.core.clock import now
from hub.services import customers, triggers

STATIC = Path(__file__).resolve().parent / "static"
SDK_FILE = STATIC / "hub-sdk.js"
DEMO_ISSUER = "hub-dev-demo"
DEMO_AUDIENCE = "hub-sdk-demo"
DEMO_TOKEN_SECONDS = 600
DEMO_VARIABLES = {"amount": "$249.99", "merchant": "ACME Online", "cardLast4": "4242",
                  "paymentId": "demo-payment"}
TAGS = ["sdk demo"]


@cache
def _sdk_file() -> tuple[bytes, str]:
    body = SDK_FILE.read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@get("/sdk/hub-sdk.js", tags=["sdk"], include_in_schema=False, opt={"public": "static asset"})
async def sdk_js(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The JavaScript SDK, an ES module (``import { createStream } from ".../sdk/hub-sdk.js"``)."""
    body, etag = _sdk_file()
    headers = {"ETag": etag, "Cache-Control": "public, max-age=300",
               "Access-Control-Allow-Origin": "*"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)


# --- the demo -------------------------------------------------------------------------------


def _demo_key(hub: Any) -> RSAKey | ECKey:
    """The demo's signing key; the demo does not exist (404) when none is configured."""
    settings = hub.plugin_settings["sdk_streams"]
    if not settings.demo_key_file:
        raise Problem(404, "the SDK demo is not enabled here (hub dev enables it)")
    try:
        pem = Path(settings.demo_key_file).read_bytes()
    except OSError as exc:
        raise Problem(404, f"the SDK demo's key cannot be read ({exc.strerror})") from None
    return _load_key(pem)


@cache
def _load_key(pem: bytes) -> RSAKey | ECKey:
    try:
        return ECKey.import_key(pem)
    except ValueError:
        return RSAKey.import_key(pem)


async def _test_user(hub: Any, user_id: Any) -> str:
    env = hub.plugin_settings["sdk_streams"].demo_env
    if not isinstance(user_id, str) or not user_id:
        raise invalid("userId", "must be the user id of a test user")
    try:
        customer = await customers.get_customer(hub, env, user_id)
    except customers.NotFound:
        raise invalid("userId", f"{env!r} has no customer {user_id!r}", 404) from None
    if not customer.is_test_user:
        raise invalid("userId", f"{user_id!r} is not a test user: the demo only signs in as test users",
                      403)
    return user_id


class DemoUser(msgspec.Struct, forbid_unknown_fields=True):
    userId: str


@post("/sdk/demo/token", tags=TAGS, include_in_schema=False, status_code=200,
      opt={"public": "demo only: 404 unless HUB_SDK_STREAMS_DEMO_KEY_FILE is set; test users only"})
async def demo_token(hub: HubDep, data: JSONBody[DemoUser]) -> dict[str, Any]:
    """An end-user token for a test user of the demo environment, as a customer's backend signs."""
    key = _demo_key(hub)
    user_id = await _test_user(hub, data.userId)
    issued = int(now().timestamp())
    claims = {"sub": user_id, "iss": DEMO_ISSUER, "aud": DEMO_AUDIENCE, "iat": issued,
              "exp": issued + DEMO_TOKEN_SECONDS}
    alg = "ES256" if isinstance(key, ECKey) else "RS256"
    token = jwt.encode({"alg": alg, "typ": "JWT"}, claims, key)
    return {"token": token, "env": hub.plugin_settings["sdk_streams"].demo_env,
            "expiresIn": DEMO_TOKEN_SECONDS}


@post("/sdk/demo/send", tags=TAGS, include_in_schema=False, status_code=202,
      opt={"public": "demo only: 404 unless HUB_SDK_STREAMS_DEMO_KEY_FILE is set; test users only"})
async def demo_send(hub: HubDep, data: JSONBody[DemoUser]) -> dict[str, Any]:
    """Start the demo flow for a test user, so the page shows a card arriving."""
    _demo_key(hub)
    settings = hub.plugin_settings["sdk_streams"]
    user_id = await _test_user(hub, data.userId)
    try:
        invocation = await triggers.start_invocation(
            hub, settings.demo_env, settings.demo_flow, target={"usersById": [user_id]},
            variables=DEMO_VARIABLES)
    except triggers.TriggerError as exc:
        raise Problem(exc.status, f"the demo flow {settings.demo_flow!r} cannot start: {exc}") from None
    return {"flowInvocationId": invocation["flowInvocationId"]}


@get("/sdk/demo", tags=TAGS, include_in_schema=False,
     opt={"public": "demo only: 404 unless HUB_SDK_STREAMS_DEMO_KEY_FILE is set"})
async def demo_page(hub: HubDep, user: Annotated[str, QueryParameter(max_length=255)] = "demo-user"
                    ) -> Response[str]:
    """A page showing a test user's stream, live, with the SDK."""
    _demo_key(hub)
    env = hub.plugin_settings["sdk_streams"].demo_env
    nonce = secrets.token_urlsafe(16)
    page = (DEMO_PAGE.replace("{{config}}", html.escape(json.dumps({"env": env, "userId": user})))
            .replace("{{nonce}}", nonce))
    policy = (f"default-src 'self'; script-src 'self' 'nonce-{nonce}'; img-src * data:; "
              "style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:")
    return Response(page, media_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                             "Content-Security-Policy": policy})


DEMO_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hub SDK demo</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; padding: 24px; background: #eef0f3;
         color: #1b1f24; }
  body.dark { background: #010409; color: #e6edf3; }
  main { max-width: 560px; margin: 0 auto; display: grid; gap: 16px; }
  header { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
  header h1 { font-size: 1.2rem; margin: 0 auto 0 0; }
  button, select { font: inherit; padding: 6px 12px; border-radius: 8px; }
  #log { font: 12px/1.4 ui-monospace, monospace; max-height: 200px; overflow: auto; margin: 0;
         white-space: pre-wrap; opacity: .8; }
</style>
</head>
<body>
<main data-config="{{config}}">
  <header>
    <h1>Cards of <span id="who"></span></h1>
    <button type="button" id="send">Send me a fraud alert</button>
    <label>Theme
      <select id="theme"><option>auto</option><option>light</option><option>dark</option></select>
    </label>
  </header>
  <div id="cards"></div>
  <details><summary>What the SDK did</summary><pre id="log" aria-live="off"></pre></details>
</main>
<script type="module" nonce="{{nonce}}">
  import { createStream } from "./hub-sdk.js";

  const config = JSON.parse(document.querySelector("main").dataset.config);
  document.getElementById("who").textContent = config.userId;
  const post = (path) => fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
                                       body: JSON.stringify({ userId: config.userId }) });
  const log = document.getElementById("log");
  const stream = createStream({
    baseUrl: window.location.origin, env: config.env, container: "default",
    element: document.getElementById("cards"), theme: "auto",
    getToken: async () => {
      const response = await post("./demo/token");
      if (!response.ok) throw new Error((await response.json()).detail);
      return (await response.json()).token;
    },
    onEvent: (event) => {
      const line = event.type === "analytics" ? `analytics ${event.event.analyticsEvent}` : event.type;
      log.textContent = `${new Date().toLocaleTimeString()} ${line}\\n` + log.textContent;
    },
  });
  window.hubStream = stream;
  document.getElementById("send").addEventListener("click", () => post("./demo/send"));
  document.getElementById("theme").addEventListener("change", (event) => {
    stream.setTheme(event.target.value);
    document.body.classList.toggle("dark", event.target.value === "dark");
  });
</script>
</body>
</html>
"""

ROUTES: list[Any] = [sdk_js, demo_token, demo_send, demo_page]

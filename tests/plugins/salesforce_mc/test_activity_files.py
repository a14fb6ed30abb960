"""``{activityUrl}/config.json``, the configuration UI's files and ``flows``."""

from __future__ import annotations

from tests.plugins.salesforce_mc.conftest import INIT_ACTIVITY, ORDER_FLOW


async def test_config_json_has_journey_builders_shape_and_the_settings(journey, hub_client):
    settings = await journey.install(timeoutMs=15_000, retryCount=2, retryDelayMs=500, concurrentRequests=7)
    response = await hub_client.get(journey.path("config.json"))
    assert response.status_code == 200, response.text
    document = response.json()
    url = settings["activityUrl"]
    assert document["workflowApiVersion"] == "1.1"
    assert document["type"] == "REST"
    assert document["lang"]["en-US"]["name"]
    assert document["metaData"]["icon"] == f"{url}/icon.png"
    assert document["metaData"]["iconSmall"] == f"{url}/icon-small.png"
    execute = document["arguments"]["execute"]
    assert execute["url"] == f"{url}/execute" and execute["useJwt"] is True
    limits = ("timeout", "retryCount", "retryDelay", "concurrentRequests")
    assert [execute[k] for k in limits] == [15_000, 2, 500, 7]
    assert execute["outArguments"] == [{"flowInvocationId": ""}, {"reachable": ""}]
    assert {name: value["url"] for name, value in document["configurationArguments"].items()} == {
        name: f"{url}/{name}" for name in ("save", "publish", "validate", "stop")}
    assert document["userInterfaces"]["configModal"]["width"] > 0
    out = document["schema"]["arguments"]["execute"]["outArguments"]
    assert [next(iter(o)) for o in out] == ["flowInvocationId", "reachable"]
    # The keys the official example's activity (as Journey Builder stores it) has, we fill.
    for key in ("type", "arguments", "configurationArguments", "metaData", "schema"):
        assert key in INIT_ACTIVITY and key in document


async def test_the_split_config_json_is_a_restdecision_with_outcomes(journey, hub_client):
    settings = await journey.install()
    document = (await hub_client.get(journey.path("config.json", split=True))).json()
    assert document["type"] == "RESTDECISION"
    assert document["arguments"]["execute"]["url"] == f"{settings['decisionUrl']}/execute"
    assert [o["arguments"]["branchResult"] for o in document["outcomes"]] == [
        "open_card", "push_device", "seen_recently", "not_reachable"]
    assert all(o["metaData"]["label"] for o in document["outcomes"])


async def test_urls_follow_the_public_base_url(monkeypatch, hub_settings, hub_env):
    import httpx

    from hub.app import Hub, create_app
    from tests.plugins.salesforce_mc.conftest import SECRET

    monkeypatch.setenv("HUB_SFMC_PUBLIC_BASE_URL", "https://hub.example.com")
    instance = Hub(hub_settings)
    await instance.start()
    try:
        transport = httpx.ASGITransport(app=create_app(hub=instance))
        async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
            body = (await client.put("/v1/acme/integrations/sfmc", headers=hub_env.headers(),
                                     json={"jwtSigningSecret": SECRET})).json()
            assert body["activityUrl"].startswith("https://hub.example.com/sfmc/")
            path = "/" + body["activityUrl"].split("/", 3)[3] + "/config.json"
            document = (await client.get(path)).json()
            assert document["arguments"]["execute"]["url"] == body["activityUrl"] + "/execute"
    finally:
        await instance.close()


async def test_the_ui_files_are_served_static(journey, hub_client):
    await journey.install()
    files = (("index.html", "text/html"), ("activity.js", "text/javascript"), ("activity.css", "text/css"),
             ("icon.png", "image/png"), ("icon-small.png", "image/png"))
    for name, kind in files:
        response = await hub_client.get(journey.path(name))
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind), name
        again = await hub_client.get(journey.path(name), headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304
    split = await hub_client.get(journey.path("index.html", split=True))
    assert split.status_code == 200
    assert (await hub_client.get(journey.path("../hooks.py"))).status_code == 404
    assert (await hub_client.get(journey.path("hooks.py"))).status_code == 404


async def test_flows_lists_published_flows_with_their_variables(journey, hub_client, hub_env):
    await journey.install()
    await journey.publish()
    await hub_client.post(f"/v1/{hub_env.id}/flows", headers=hub_env.headers(),
                          json={"id": "draft", "definition": ORDER_FLOW})
    body = (await hub_client.get(journey.path("flows"))).json()
    assert [f["flowConfigId"] for f in body["flows"]] == ["order"]
    [flow] = body["flows"]
    assert flow["sfmcAllowed"] is True
    assert [(v["name"], v["type"], v["required"]) for v in flow["variables"]] == [
        ("amount", "number", True), ("vip", "boolean", False), ("due", "date", False),
        ("discount", "string", False)]

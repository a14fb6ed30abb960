"""The installable service: its OpenAPI document (valid OpenAPI 3.0 and the SPI's rules), the
service definition, the picklist of flows, status, icons and instructions."""

import copy

import httpx
import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource

from hub.app import Hub, create_app
from hub.testing import make_environment
from tests.plugins.marketo.conftest import WELCOME_FLOW, Marketo, assert_problem

# What the SPI (adobe/Marketo-SSFS-Service-Provider-Interface, schema.yaml) requires beyond OpenAPI.
REQUIRED_PATHS = {"/submitAsyncAction", "/getServiceDefinition", "/status"}
SUBMIT_RESPONSES = {"201", "400", "401", "403", "429", "500"}
SCHEMA_REFS = {
    "/getServiceDefinition": ("get", "#/components/schemas/serviceDefinition"),
    "/status": ("get", "#/components/schemas/serviceStatus"),
    "/getPicklist": ("post", "#/components/schemas/picklistObject"),
}


async def _document(marketo):
    response = await marketo.client.get(f"{marketo.base}/openapi.json")
    assert response.status_code == 200, response.text
    return response.json()


def _validator(document, name):
    """A validator of ``components.schemas[name]`` of the document (refs resolved inside it)."""
    registry = Registry().with_resource("urn:doc", Resource.opaque(document))
    return OAS30Validator({"$ref": f"urn:doc#/components/schemas/{name}"}, registry=registry)


async def test_the_document_is_served_without_auth_and_is_valid_openapi_3(ready):
    document = await _document(ready)
    validate(document)  # openapi-spec-validator: raises on any error
    assert document["openapi"].startswith("3.0.")
    assert document["servers"] == [{"url": f"http://testserver/marketo/{ready.env.id}"}]


async def test_the_document_follows_the_service_provider_interface(ready):
    document = await _document(ready)
    info = document["info"]
    assert info["x-schemaVersion"] == "1.0.0"
    assert info["x-providerName"] and info["x-supportContact"]
    assert document["security"][0] == {"apiKey": []}  # Marketo uses the first entry only
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
    }
    paths = document["paths"]
    assert REQUIRED_PATHS <= set(paths)
    submit = paths["/submitAsyncAction"]["post"]
    assert SUBMIT_RESPONSES <= set(submit["responses"])
    assert submit["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/async"
    }
    ((expression, callback),) = submit["callbacks"]["selfServiceFlowComplete"].items()
    assert expression == "{$request.body#/callbackUrl}"
    post = callback["post"]
    assert {p["name"] for p in post["parameters"] if p["in"] == "header"} == {"x-api-key", "x-callback-token"}
    assert {"404", "405"} <= set(post["responses"])
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/flowCallBack")
    for path, (method, ref) in SCHEMA_REFS.items():
        ok = paths[path][method]["responses"]["200"]
        assert ok["content"]["application/json"]["schema"] == {"$ref": ref}
    for path in ("/brandIcon", "/serviceIcon"):
        assert "image/*" in paths[path]["get"]["responses"]["200"]["content"]
    assert "text/html" in paths["/providerInstructions"]["get"]["responses"]["200"]["content"]
    assert set(document["components"]["schemas"]["async"]["required"]) == {"campaignId", "callbackUrl"}


async def test_the_document_of_an_environment_without_the_integration_is_404(marketo):
    assert_problem(await marketo.client.get(f"{marketo.base}/openapi.json"), 404, "path.env")


async def test_the_public_base_url_setting_names_the_server(monkeypatch, hub_settings):
    monkeypatch.setenv("HUB_MARKETO_PUBLIC_BASE_URL", "https://hub.example.com/")
    instance = Hub(hub_settings)
    await instance.start()
    try:
        transport = httpx.ASGITransport(app=create_app(hub=instance))
        async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
            env = await make_environment(instance, "acme")
            marketo = Marketo(instance, client, env)
            created = (await marketo.configure(status=201)).json()
            assert created["serviceUrl"] == "https://hub.example.com/marketo/acme/openapi.json"
            document = await _document(marketo)
            assert document["servers"] == [{"url": "https://hub.example.com/marketo/acme"}]
    finally:
        await instance.close()


@pytest.mark.parametrize("path", ["/getServiceDefinition", "/status"])
async def test_service_calls_need_the_api_key(ready, path):
    missing = assert_problem(await ready.call("GET", path, key=""), 401, "header.x-api-key")
    assert "required" in missing["detail"]
    assert_problem(await ready.call("GET", path, key="hmk_not-the-key-of-this-env"), 401, "header.x-api-key")
    assert (await ready.call("GET", path)).status_code == 200


async def test_the_service_definition_offers_the_flows_and_their_variables(ready):
    response = await ready.call("GET", "/getServiceDefinition")
    assert response.status_code == 200, response.text
    definition = response.json()
    _validator(await _document(ready), "serviceDefinition").validate(definition)
    assert definition["primaryAttribute"] == "flowConfigId"
    attributes = {a["apiName"]: a for a in definition["invocationPayloadDef"]["flowAttributes"]}
    assert list(attributes) == ["flowConfigId", "offer", "amount", "vip"]  # no object, no fixed variable
    picklist = attributes["flowConfigId"]
    assert picklist["hasPicklist"] and picklist["enforcePicklistSelect"]
    assert picklist["picklistUrl"] == f"http://testserver/marketo/{ready.env.id}/getPicklist"
    assert [attributes[n]["dataType"] for n in ("offer", "amount", "vip")] == ["text", "float", "boolean"]
    assert attributes["offer"]["i18n"]["en_US"]["description"] == "What the card offers"
    fields = {f["serviceAttribute"]: f for f in definition["invocationPayloadDef"]["fields"]}
    assert fields["email"]["required"] is False and "id" not in fields
    assert {"offer", "amount", "vip"} <= set(fields)
    callback = definition["callbackPayloadDef"]
    names = {a["apiName"] for a in callback["attributes"]}
    assert names == {"hubInvocationId", "hubUserId"} and not names & set(attributes)
    assert not names & {"success", "reason", "errorCode"}
    assert callback["fields"] == []


async def test_settings_shape_the_definition(ready):
    await ready.configure(status=200, userIdFrom="email", writeBack=["hubInvocationId", "hubStartedAt"])
    definition = (await ready.call("GET", "/getServiceDefinition")).json()
    email = next(f for f in definition["invocationPayloadDef"]["fields"] if f["serviceAttribute"] == "email")
    assert email["required"] is True
    assert [(f["serviceAttribute"], f["dataType"]) for f in definition["callbackPayloadDef"]["fields"]] == [
        ("hubInvocationId", "string"),
        ("hubStartedAt", "datetime"),
    ]


async def test_the_picklist_holds_published_flows_that_allow_marketo(ready):
    no_marketo = copy.deepcopy(WELCOME_FLOW) | {"name": "API only", "triggers": {"marketo": False}}
    await ready.publish("api-only", no_marketo)
    await ready.publish("archived-one", copy.deepcopy(WELCOME_FLOW) | {"name": "Old"})
    await ready.client.post(f"/v1/{ready.env.id}/flows/archived-one/archive", headers=ready.env.headers())
    await ready.client.post(
        f"/v1/{ready.env.id}/flows",
        headers=ready.env.headers(),
        json={"id": "draft-only", "definition": WELCOME_FLOW},
    )
    await ready.publish("birthday", copy.deepcopy(WELCOME_FLOW) | {"name": "Birthday"})
    response = await ready.call("POST", "/getPicklist", json={"name": "flowConfigId", "type": "flow"})
    assert response.status_code == 200, response.text
    _validator(await _document(ready), "picklistObject").validate(response.json())
    assert response.json()["choices"] == [
        {"submittedValue": "birthday", "displayValue": {"en_US": "Birthday (birthday)"}},
        {"submittedValue": "welcome", "displayValue": {"en_US": "Welcome (welcome)"}},
    ]
    await ready.configure(status=200, flows=["birthday", "api-only"])
    filtered = await ready.call("POST", "/getPicklist", json={"name": "flowConfigId", "type": "flow"})
    assert [c["submittedValue"] for c in filtered.json()["choices"]] == ["birthday"]
    other = await ready.call("POST", "/getPicklist", json={"name": "offer", "type": "flow"})
    assert other.json() == {"choices": []}
    assert (await ready.call("POST", "/getPicklist", json={"name": "x", "type": "global"})).json() == {
        "choices": []
    }


async def test_a_picklist_request_is_checked(ready):
    assert_problem(await ready.call("POST", "/getPicklist", json={"type": "flow"}), 400, "name")
    assert_problem(await ready.call("POST", "/getPicklist", json={"name": "a", "type": "x"}), 400, "type")
    assert_problem(await ready.call("POST", "/getPicklist", key="", json={}), 401, "header.x-api-key")


async def test_status_reports_the_flows_offered(ready):
    status = (await ready.call("GET", "/status")).json()
    _validator(await _document(ready), "serviceStatus").validate(status)
    assert status == {"info": ["1 Hub flows offered"], "warnings": [], "errors": []}
    await ready.configure(status=200, flows=["nothing-here"])
    status = (await ready.call("GET", "/status")).json()
    assert status["info"] == ["0 Hub flows offered"] and "no published Hub flow" in status["warnings"][0]


async def test_icons_and_instructions_need_no_key(ready):
    for path in ("/brandIcon", "/serviceIcon"):
        response = await ready.call("GET", path, key="")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("image/svg+xml")
        assert response.content.startswith(b"<svg")
    instructions = await ready.call("GET", "/providerInstructions", key="")
    assert instructions.status_code == 200 and "Service Providers" in instructions.text

"""The OpenAPI 3.0 document an environment's Marketo admin installs (the ``serviceUrl``).

It follows Marketo's Self-Service Flow Step Service Provider Interface, schema version 1.0.0:
``info.x-providerName`` / ``x-schemaVersion`` / ``x-supportContact``; the API key in the
``x-api-key`` header as the first (and only) security requirement; the three required paths
(``/submitAsyncAction`` with its callback, ``/getServiceDefinition``, ``/status``) and the
optional ones Hub serves (``/getPicklist``, ``/brandIcon``, ``/serviceIcon``,
``/providerInstructions``); the components their bodies refer to. The callback's runtime
expression names ``callbackUrl``, the field Marketo really sends.
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = "1.0.0"
SERVICE_VERSION = "1.0.0"
REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(schema)}}


def _obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties, **extra}
    if required:
        out["required"] = required
    return out


STR: dict[str, Any] = {"type": "string"}
NUM: dict[str, Any] = {"type": "number"}
BOOL: dict[str, Any] = {"type": "boolean"}
FIELD_TYPES = ["boolean", "integer", "date", "datetime", "email", "float", "score", "string", "url", "text"]
I18N_STRING = _obj({"en_US": STR}, ["en_US"], additionalProperties=STR)
ATTRIBUTE_I18N = _obj({"name": STR, "description": STR, "uiTooltip": STR})

SCHEMAS: dict[str, Any] = {
    "async": _obj(
        {
            "token": {"type": "string", "description": "One-time token for the callback (x-callback-token)"},
            "batchid": {"type": "string", "description": "Id of the Marketo campaign run"},
            "apiCallBackKey": {"type": "string", "description": "API key for the callback (x-api-key)"},
            "campaignId": {"type": "integer", "format": "int32", "description": "The invoking campaign"},
            "callbackUrl": {"type": "string", "format": "uri", "description": "Where the results go"},
            "context": _ref("context"),
            "objectData": {"type": "array", "items": _ref("objectData"), "maxItems": 1000},
        },
        ["campaignId", "callbackUrl"],
    ),
    "context": _obj(
        {
            "subscription": _ref("subscription"),
            "admin": _ref("admin"),
            "campaign": _ref("campaign"),
            "program": _ref("program"),
        },
        ["subscription"],
    ),
    "subscription": _obj({"munchkinId": STR, "prefix": STR, "crmSyncStatus": STR}, ["munchkinId"]),
    "admin": {"type": "object", "additionalProperties": True},
    "campaign": _obj(
        {
            "id": NUM,
            "name": STR,
            "description": STR,
            "flowId": NUM,
            "folderId": NUM,
            "folderName": STR,
            "parentProgramId": NUM,
            "smartListId": NUM,
            "status": STR,
            "type": STR,
            "workspaceId": NUM,
            "workspaceName": STR,
            "commLimitEnabled": BOOL,
        }
    ),
    "program": _obj(
        {
            "id": NUM,
            "name": STR,
            "description": STR,
            "channelName": STR,
            "status": STR,
            "type": STR,
            "createdAt": STR,
            "updatedAt": STR,
        }
    ),
    "flowStepContext": {
        "type": "object",
        "additionalProperties": True,
        "description": "flowConfigId and the flow variables set on the flow step",
    },
    "programMemberContext": {"type": "object", "additionalProperties": True},
    "triggeringContext": _obj({"name": STR, "triggerName": STR}),
    "leadData": _obj({"id": {"type": "integer", "format": "int64"}}, ["id"], additionalProperties=True),
    "objectData": _obj(
        {
            "objectType": {"type": "string", "enum": ["lead"]},
            "objectContext": _ref("leadData"),
            "flowStepContext": _ref("flowStepContext"),
            "programMemberContext": _ref("programMemberContext"),
            "triggeringContext": _ref("triggeringContext"),
        },
        ["objectContext"],
    ),
    "activityData": _obj({"success": BOOL, "reason": STR, "errorCode": STR}, additionalProperties=True),
    "callbackData": _obj({"leadData": _ref("leadData"), "activityData": _ref("activityData")}, ["leadData"]),
    "flowCallBack": _obj(
        {
            "munchkinId": STR,
            "errorCode": {"type": "string", "description": "Set for a batch that could not run at all"},
            "errorMessage": STR,
            "objectData": {"type": "array", "items": _ref("callbackData")},
        },
        ["munchkinId"],
    ),
    "fieldType": {"type": "string", "enum": FIELD_TYPES},
    "i18nString": I18N_STRING,
    "attributeI18nObject": ATTRIBUTE_I18N,
    "attributeObject": _obj(
        {
            "apiName": STR,
            "dataType": _ref("fieldType"),
            "i18n": _obj(
                {"en_US": _ref("attributeI18nObject")},
                ["en_US"],
                additionalProperties=_ref("attributeI18nObject"),
            ),
        },
        ["apiName", "i18n", "dataType"],
    ),
    "invocationAttributeObject": {
        "allOf": [
            _ref("attributeObject"),
            _obj({"hasPicklist": BOOL, "enforcePicklistSelect": BOOL, "picklistUrl": STR}),
        ]
    },
    "fieldMapping": _obj(
        {
            "serviceAttribute": STR,
            "suggestedMarketoAttribute": STR,
            "description": _ref("i18nString"),
            "dataType": _ref("fieldType"),
        },
        ["serviceAttribute", "description", "dataType"],
    ),
    "invocationFieldMapping": {"allOf": [_ref("fieldMapping"), _obj({"required": BOOL})]},
    "serviceI18nObject": _obj({"name": STR, "filterName": STR, "triggerName": STR, "description": STR}),
    "invocationPayloadDefObject": _obj(
        {
            "globalAttributes": {"type": "array", "items": _ref("invocationAttributeObject")},
            "flowAttributes": {"type": "array", "items": _ref("invocationAttributeObject")},
            "fields": {"type": "array", "items": _ref("invocationFieldMapping")},
            "userDrivenMapping": BOOL,
            "programContext": BOOL,
            "campaignContext": BOOL,
            "triggerContext": BOOL,
            "programMemberContext": BOOL,
            "subscriptionContext": BOOL,
            "myTokenContext": {"type": "array", "items": STR},
        }
    ),
    "callbackPayloadDefObject": _obj(
        {
            "attributes": {"type": "array", "items": _ref("attributeObject")},
            "fields": {"type": "array", "items": _ref("fieldMapping")},
            "userDrivenMapping": BOOL,
        }
    ),
    "serviceDefinition": _obj(
        {
            "apiName": STR,
            "i18n": _obj({"en_US": _ref("serviceI18nObject")}),
            "primaryAttribute": STR,
            "invocationPayloadDef": _ref("invocationPayloadDefObject"),
            "callbackPayloadDef": _ref("callbackPayloadDefObject"),
        },
        ["apiName", "i18n", "primaryAttribute", "invocationPayloadDef", "callbackPayloadDef"],
    ),
    "serviceStatus": _obj(
        {
            "info": {"type": "array", "items": STR},
            "warnings": {"type": "array", "items": STR},
            "errors": {"type": "array", "items": STR},
        }
    ),
    "getPicklistRequest": _obj(
        {
            "name": STR,
            "type": {"type": "string", "enum": ["flow", "global", "header"]},
            "fieldMappingContext": {"type": "object", "additionalProperties": True},
        },
        ["name", "type"],
    ),
    "picklistChoice": _obj(
        {
            "displayValue": _ref("i18nString"),
            "submittedValue": {"anyOf": [BOOL, {"type": "integer"}, NUM, STR]},
        },
        ["displayValue", "submittedValue"],
    ),
    "picklistObject": _obj(
        {"choices": {"type": "array", "items": _ref("picklistChoice"), "maxItems": 1000}}, ["choices"]
    ),
    "problem": _obj(
        {
            "type": STR,
            "title": STR,
            "status": {"type": "integer"},
            "detail": STR,
            "errors": {"type": "array", "items": _obj({"field": STR, "reason": STR})},
        }
    ),
}

PROBLEM = {"application/problem+json": {"schema": _ref("problem")}}


def _answer(description: str) -> dict[str, Any]:
    return {"description": description, "content": PROBLEM}


def document(server_url: str, provider_name: str, support_contact: str) -> dict[str, Any]:
    """The document for the service at ``server_url`` (``{base}/marketo/{env}``)."""
    image = {"image/*": {"schema": {"type": "string", "format": "binary"}}}  # the SPI's media range
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Send Hub flow",
            "description": "Starts Hub flows (action cards and pushes) for the leads of a Marketo Smart "
            "Campaign, then reports each lead's result through the callback.",
            "version": SERVICE_VERSION,
            "x-schemaVersion": SCHEMA_VERSION,
            "x-providerName": provider_name,
            "x-supportContact": support_contact,
        },
        "servers": [{"url": server_url}],
        "tags": [{"name": "flow action", "description": "Send Hub flow"}],
        "security": [{"apiKey": []}],
        "paths": {
            "/submitAsyncAction": {
                "description": "A batch of leads to start Hub flows for; results come back through the "
                "callback",
                "post": {
                    "tags": ["flow action"],
                    "operationId": "submitAsyncAction",
                    "requestBody": {"required": True, "content": _json("async")},
                    "callbacks": {
                        "selfServiceFlowComplete": {
                            "{$request.body#/callbackUrl}": {
                                "post": {
                                    "parameters": [
                                        {
                                            "in": "header",
                                            "name": "x-api-key",
                                            "required": True,
                                            "schema": STR,
                                            "description": "apiCallBackKey of the invocation",
                                        },
                                        {
                                            "in": "header",
                                            "name": "x-callback-token",
                                            "required": True,
                                            "schema": STR,
                                            "description": "token of the invocation",
                                        },
                                    ],
                                    "requestBody": {"required": True, "content": _json("flowCallBack")},
                                    "responses": {
                                        "200": {"description": "Results accepted"},
                                        "404": {"description": "Not Found"},
                                        "405": {"description": "Invalid input"},
                                    },
                                }
                            }
                        }
                    },
                    "responses": {
                        "201": {"description": "Accepted: stored, the flows start and the callback follows"},
                        "400": _answer("A field is missing or invalid (the problem names it)"),
                        "401": _answer("No x-api-key header, or not this environment's key"),
                        "403": _answer("Refused"),
                        "413": _answer("More leads than one call may hold"),
                        "429": _answer("Too many requests: retry later"),
                        "500": _answer("The batch could not be stored"),
                    },
                },
            },
            "/getServiceDefinition": {
                "get": {
                    "summary": "The flow step's fields and what the callback writes back",
                    "responses": {
                        "200": {
                            "description": "The service definition",
                            "content": _json("serviceDefinition"),
                        },
                        "401": _answer("No x-api-key header, or not this environment's key"),
                    },
                }
            },
            "/status": {
                "get": {
                    "summary": "Health of the service for this environment",
                    "responses": {
                        "200": {"description": "Status", "content": _json("serviceStatus")},
                        "401": _answer("No x-api-key header, or not this environment's key"),
                    },
                }
            },
            "/getPicklist": {
                "post": {
                    "summary": "Choices of the flowConfigId field: the published flows",
                    "requestBody": {"required": True, "content": _json("getPicklistRequest")},
                    "responses": {
                        "200": {"description": "Choices", "content": _json("picklistObject")},
                        "400": _answer("name or type missing"),
                        "401": _answer("No x-api-key header, or not this environment's key"),
                    },
                }
            },
            "/brandIcon": {
                "get": {
                    "summary": "Hub's brand icon",
                    "security": [],
                    "responses": {"200": {"description": "SVG", "content": image}},
                }
            },
            "/serviceIcon": {
                "get": {
                    "summary": "The flow step's icon",
                    "security": [],
                    "responses": {"200": {"description": "SVG", "content": image}},
                }
            },
            "/providerInstructions": {
                "get": {
                    "summary": "How to finish the set-up in Hub and Marketo",
                    "security": [],
                    "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": STR}}}},
                }
            },
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
        },
    }

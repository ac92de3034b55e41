"""The OpenAPI document says every answer an operation can give, errors included.

Every API error body is `{"error": "<reason>", "fields"?: {...}}` (config/exceptions.py).
`document_error_answers`, a drf-spectacular postprocessing hook wired in settings, adds the
error answers every operation can give without anyone declaring them:

- 401, 403, 405, 406 on every operation (staff only; DRF's method and content negotiation);
- 400 where there is a body or a query parameter to get wrong;
- 404 where there is a path parameter (an unknown id) or a query parameter (a page past the end);
- 404, 409, 413 and 415 where there is a request body (it may name an object that does not
  exist, or one that exists already: config/exceptions.py).

It also states in the document what the API does with every body: request objects refuse
unknown fields (`additionalProperties: false`), and a decimal needs at least one digit.

A view declares only what is particular to it, with `error_responses`, e.g. a 409, or a 400
on an operation without body or query parameters:

    @extend_schema(responses={202: ImportSerializer, **error_responses(409)})

Constraints the server enforces belong on the serializer fields (`min_value`, `max_length`,
`choices`, `allow_null`), where drf-spectacular reads them.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ERROR_COMPONENT = "Error"

ERROR_DESCRIPTIONS = {
    400: "Invalid input: `error` says what, `fields` names each bad field.",
    401: "No credentials, or an unknown token.",
    403: "Not staff, or writing without the model's add/change/delete permission.",
    404: "Not found: an unknown id, or a page past the end.",
    405: "This method is not allowed on this path.",
    406: "The Accept header asks for something other than JSON.",
    409: "Conflicts with the current state.",
    413: "The body is larger than the limit (`DATA_UPLOAD_MAX_MEMORY_SIZE`) named in `error`.",
    415: "A Content-Type this operation does not read.",
    429: "Too many requests; try again later.",
}

# Every operation can answer these (authentication, permission, method, content negotiation).
ALWAYS = (401, 403, 405, 406)


# Built, not declared as a class: a field named `fields` would shadow `Serializer.fields`.
ErrorSerializer = inline_serializer(
    name=ERROR_COMPONENT,
    fields={
        "error": serializers.CharField(help_text="What is wrong, for a person to read."),
        "fields": serializers.DictField(
            required=False, help_text="Each bad field (dotted or nested) with its reasons."
        ),
    },
)


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """`extend_schema(responses={201: X, **error_responses(409)})`."""
    return {
        code: OpenApiResponse(
            ErrorSerializer, description=ERROR_DESCRIPTIONS.get(code, "An error.")
        )
        for code in codes
    }


# Components whose rules span fields ("at least one of phone, email, external_id"), which a
# serializer cannot state: the app that owns one registers what to add to it.
_COMPONENT_AMENDMENTS: dict[str, dict[str, Any]] = {}


def component_amend(name: str, **schema: Any) -> None:
    """`component_amend("ContactInputRequest", anyOf=[...])`: merged into that component
    (`properties={"models": {"minItems": 2}}` reaches one property; a schema under `items`,
    `anyOf`, `oneOf` or `allOf` replaces what was there)."""
    _COMPONENT_AMENDMENTS.setdefault(name, {}).update(schema)


_REPLACED = {"items", "anyOf", "oneOf", "allOf"}


def _merge(target: dict[str, Any], amendment: dict[str, Any]) -> None:
    for key, value in amendment.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict) and key not in _REPLACED:
            _merge(target[key], value)
        else:
            target[key] = value


# What an operation's request body is beyond its items' serializer ("at least one item").
_REQUEST_BODY_AMENDMENTS: dict[str, dict[str, Any]] = {}


def request_body_amend(operation_id: str, **schema: Any) -> None:
    """`request_body_amend("clicks_import", minItems=1)`: merged into its JSON body schema."""
    _REQUEST_BODY_AMENDMENTS[operation_id] = schema


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every API error.",
    "properties": {
        "error": {"type": "string", "description": "What is wrong, for a person to read."},
        "fields": {
            "type": "object",
            "additionalProperties": {},
            "description": "Each bad field (dotted or nested) with its reasons.",
        },
    },
    "required": ["error"],
}


def _codes_for(operation: dict[str, Any], path_item: dict[str, Any]) -> list[int]:
    parameters = [*path_item.get("parameters", []), *operation.get("parameters", [])]
    places = {parameter.get("in") for parameter in parameters}
    codes = list(ALWAYS)
    if "requestBody" in operation or "query" in places:
        codes.append(400)
    if "path" in places or "query" in places or "requestBody" in operation:
        codes.append(404)
    if "requestBody" in operation:
        codes += [409, 413, 415]
    return sorted(codes)


# drf-spectacular's decimal pattern also matches "", "-" and "." (every part optional).
_DECIMAL_PATTERN = re.compile(r"\^-\?\\d\{0,(\d+)\}\(\?:\\\.\\d\{0,(\d+)\}\)\?\$")


# DRF's CharField refuses a NUL character, and trims spaces before it checks "not blank".
# Spaces as Python's str.strip() sees them, spelled out: a JSON Schema `\s` (ECMA-262) leaves
# out some of them (U+0085, U+001C-U+001F).
SPACE_CHARACTERS = (
    "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029"
    "\\u202f\\u205f\\u3000"
)
NOT_BLANK_PATTERN = f"^[^\\x00]*[^\\x00{SPACE_CHARACTERS}][^\\x00]*$"
_NO_NUL = "^[^\\x00]*$"
_NO_NUL_NOT_BLANK = NOT_BLANK_PATTERN


def _has_type(schema: dict[str, Any], name: str) -> bool:
    # OpenAPI 3.1 spells a nullable string `"type": ["string", "null"]`.
    kind = schema.get("type")
    return kind == name or (isinstance(kind, list) and name in kind)


def _tighten_request_text(schema: Any) -> None:
    """Walk a request component: what DRF's CharField refuses, the document refuses too.

    PostgreSQL text and jsonb cannot hold a NUL character, in a value or in an object's key:
    an object whose keys are free (a DictField, stored as jsonb) says so with `propertyNames`.
    """
    if isinstance(schema, list):
        for item in schema:
            _tighten_request_text(item)
        return
    if not isinstance(schema, dict):
        return
    if _has_type(schema, "string") and not {
        "pattern",
        "format",
        "enum",
        "readOnly",
        "anyOf",
    } & set(schema):
        schema["pattern"] = _NO_NUL_NOT_BLANK if schema.get("minLength", 0) >= 1 else _NO_NUL
    if (
        _has_type(schema, "object")
        and schema.get("additionalProperties", True) is not False
        and "propertyNames" not in schema
    ):
        schema["propertyNames"] = {"pattern": _NO_NUL}
    for value in schema.values():
        _tighten_request_text(value)


def _as_json_schema(schema: Any) -> None:
    """OpenAPI 3.1 schemas are JSON Schema: what is still spelled the 3.0 way (`nullable`, as
    DRF's paginator writes `next` and `previous`) becomes a type that admits null."""
    if isinstance(schema, list):
        for item in schema:
            _as_json_schema(item)
        return
    if not isinstance(schema, dict):
        return
    if schema.pop("nullable", False):
        kind = schema.get("type")
        if isinstance(kind, str):
            schema["type"] = [kind, "null"]
        elif isinstance(kind, list) and "null" not in kind:
            kind.append("null")
    for value in schema.values():
        _as_json_schema(value)


def _tighten(schema: Any) -> None:
    """Walk a component: decimals need a digit; request objects refuse unknown fields."""
    if isinstance(schema, list):
        for item in schema:
            _tighten(item)
        return
    if not isinstance(schema, dict):
        return
    match = _DECIMAL_PATTERN.fullmatch(str(schema.get("pattern", "")))
    if schema.get("format") == "decimal" and match:
        whole, fraction = match.groups()
        sign = "" if schema.get("x-minimum-zero") else "-?"
        schema["pattern"] = (
            f"^{sign}(?:\\d{{1,{whole}}}(?:\\.\\d{{0,{fraction}}})?|\\.\\d{{1,{fraction}}})$"
        )
    for value in schema.values():
        _tighten(value)


def document_error_answers(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(ERROR_COMPONENT, ERROR_SCHEMA)
    for name, amendment in _COMPONENT_AMENDMENTS.items():
        if name in schemas:
            _merge(schemas[name], amendment)
    for name, component in schemas.items():
        _tighten(component)
        if name.endswith("Request") and component.get("type") == "object":
            component.setdefault("additionalProperties", False)
            _tighten_request_text(component)
    reference = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "put", "post", "patch", "delete", "head", "options"}:
                continue
            responses = operation.setdefault("responses", {})
            for code in _codes_for(operation, path_item):
                responses.setdefault(
                    str(code),
                    {
                        "description": ERROR_DESCRIPTIONS[code],
                        "content": {"application/json": {"schema": reference}},
                    },
                )
            operation["responses"] = dict(sorted(responses.items()))
            if method in {"post", "put"} and "requestBody" in operation:
                # Every POST and PUT here reads a body; without one it is a 400.
                operation["requestBody"]["required"] = True
            body_amendment = _REQUEST_BODY_AMENDMENTS.get(operation.get("operationId", ""))
            if body_amendment and "requestBody" in operation:
                media = operation["requestBody"]["content"].get("application/json", {})
                media.get("schema", {}).update(body_amendment)
    _as_json_schema(result)
    return result

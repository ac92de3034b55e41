"""DRF's fields read JSON as the OpenAPI document describes it, not more loosely.

Out of the box a DRF `CharField` takes `12` as `"12"`, a `DecimalField` takes `1.5`, a
`BooleanField` takes `"yes"` and `1`, an `IntegerField` takes `true` and `"7"`, a related
field's id takes `"7"`, and a serializer ignores fields it does not know. The document says
string, boolean, integer, and no other properties (`additionalProperties: false`, see
config/openapi.py): a generated client relies on that, and a request that differs is
answered 400 naming the field, like any invalid value. The API reads JSON only
(config/parsers.py), so the real JSON types are always there to check.
`strict_json_types()` runs once, at startup.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import relations, serializers

_PLAIN_CHAR_FIELD = serializers.CharField.to_internal_value
_PLAIN_INTEGER_FIELD = serializers.IntegerField.to_internal_value
_PLAIN_DECIMAL_FIELD = serializers.DecimalField.to_internal_value
_PLAIN_PRIMARY_KEY_FIELD = relations.PrimaryKeyRelatedField.to_internal_value
_PLAIN_SERIALIZER = serializers.Serializer.to_internal_value


def _text(self: serializers.CharField, data: Any) -> str:
    if not isinstance(data, str):
        self.fail("invalid")
    # The document's maxLength counts what is sent; DRF would count it after trimming spaces.
    if self.max_length is not None and len(data) > self.max_length:
        self.fail("max_length", max_length=self.max_length)
    return _PLAIN_CHAR_FIELD(self, data)


def _boolean(self: serializers.BooleanField, data: Any) -> bool:
    if not isinstance(data, bool):
        self.fail("invalid", input=data)
    return data


def _integer(self: serializers.IntegerField, data: Any) -> int:
    if isinstance(data, bool) or not isinstance(data, int | float):
        self.fail("invalid")
    return _PLAIN_INTEGER_FIELD(self, data)


def _decimal(self: serializers.DecimalField, data: Any) -> Any:
    # A decimal is a string in the document (a JSON number would lose digits on the way).
    if not isinstance(data, str):
        self.fail("invalid")
    return _PLAIN_DECIMAL_FIELD(self, data)


def _primary_key(self: relations.PrimaryKeyRelatedField[Any], data: Any) -> Any:
    if self.pk_field is None and (isinstance(data, bool) or not isinstance(data, int)):
        self.fail("incorrect_type", data_type=type(data).__name__)
    return _PLAIN_PRIMARY_KEY_FIELD(self, data)


def _known_fields_only(self: serializers.Serializer[Any], data: Any) -> Any:
    if isinstance(data, Mapping):
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({str(name): ["Unknown field."] for name in unknown})
    return _PLAIN_SERIALIZER(self, data)


def strict_json_types() -> None:
    serializers.CharField.to_internal_value = _text  # type: ignore[method-assign,assignment]
    serializers.BooleanField.to_internal_value = _boolean  # type: ignore[method-assign,assignment]
    serializers.IntegerField.to_internal_value = _integer  # type: ignore[method-assign,assignment]
    serializers.DecimalField.to_internal_value = _decimal  # type: ignore[method-assign,assignment]
    relations.PrimaryKeyRelatedField.to_internal_value = _primary_key  # type: ignore[method-assign,assignment]
    serializers.Serializer.to_internal_value = _known_fields_only  # type: ignore[method-assign,assignment]

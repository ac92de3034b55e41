"""Service validation errors (Django's) as API validation errors (DRF's)."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail


def nest_dotted(errors: dict[str, list[str]]) -> dict[str, Any]:
    """`{"3.contact.phone": [...]}` -> `{"3": {"contact": {"phone": [...]}}}`."""
    nested: dict[str, Any] = {}
    for key, messages in errors.items():
        *path, last = key.split(".")
        node = nested
        for part in path:
            child = node.setdefault(part, {})
            if isinstance(child, list):
                child = node[part] = {"non_field_errors": child}
            node = child
        if isinstance(node.get(last), dict):
            node[last].setdefault("non_field_errors", []).extend(messages)
        else:
            node.setdefault(last, []).extend(messages)
    return nested


@contextmanager
def service_errors_as_400(*, prefix: str = "") -> Iterator[None]:
    """Re-raise a service's ValidationError as a 400; `prefix` (e.g. "items.") goes before
    every key except the prefix's own name, which stays a message about the whole list."""

    def key_of(key: str) -> str:
        return key if not prefix or key == prefix.rstrip(".") else prefix + key

    try:
        yield
    except DjangoValidationError as error:
        if hasattr(error, "error_dict"):
            dotted = {key_of(key): _details(items) for key, items in error.error_dict.items()}
            raise serializers.ValidationError(nest_dotted(dotted)) from error
        raise serializers.ValidationError(
            {"non_field_errors": _details(error.error_list)}
        ) from error


def _details(items: list[DjangoValidationError]) -> list[str]:
    """Messages that keep their codes: a `does_not_exist` or `unique` one answers 404 or 409
    (config/exceptions.py)."""
    return [ErrorDetail(message, code=item.code) for item in items for message in item.messages]

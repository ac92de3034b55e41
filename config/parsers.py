"""The API's one request parser: JSON, strict about what would otherwise fail later.

DRF's own JSON parser reads a body of any size, answers 500 on JSON nested a few thousand
levels deep (RecursionError), takes the last of duplicate keys silently, reads `1e999` as
infinity, and lets a lone surrogate (`"\\ud800"`) through to PostgreSQL's driver, which
refuses it with a 500. Here each of those is a 400 (or 413) that says why, before any view
runs. (NUL characters are left to the fields, which name them.)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser

# Deeper than any body of ours (a bulk message is 3 levels); the JSON decoder itself would
# recurse until the interpreter's limit.
MAX_DEPTH = 32
# Draining a too-large body (so the client reads our answer instead of a reset connection)
# stops after this many bytes; beyond it, the connection is closed.
MAX_DRAIN_BYTES = 64 * 1024 * 1024


class RequestBodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


def body_too_large(limit: int) -> RequestBodyTooLarge:
    return RequestBodyTooLarge(
        f"The body is larger than {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)."
    )


def drain(stream: IO[bytes] | Any, *, limit: int = MAX_DRAIN_BYTES) -> None:
    """Read and drop what is left of a body we refuse, so the answer reaches the client."""
    left = limit
    while left > 0:
        chunk = stream.read(min(left, 1024 * 1024))
        if not chunk:
            return
        left -= len(chunk)


def read_limited(stream: IO[bytes] | Any, *, content_length: int | None) -> bytes:
    """The body, or 413 when it is (or turns out to be) over `DATA_UPLOAD_MAX_MEMORY_SIZE`."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and content_length is not None and content_length > limit:
        drain(stream)
        raise body_too_large(limit)
    if limit is None:
        return bytes(stream.read())
    body = bytes(stream.read(limit + 1))
    if len(body) > limit:
        drain(stream)
        raise body_too_large(limit)
    return body


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key[:100]!r}")
        result[key] = value
    return result


def _check_strings_and_depth(value: Any) -> None:
    """Iterative, so a deep value cannot exhaust the stack here either."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, Mapping | list):
            if depth > MAX_DEPTH:
                raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, Mapping):
                for key, child in item.items():
                    _check_text(key)
                    pending.append((child, depth + 1))
            else:
                pending.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ParseError("JSON parse error - a string contains a lone surrogate") from None


def json_loads_strict(text: str) -> Any:
    """`json.loads`, but a 400-worthy ParseError for everything we refuse."""
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_float=_finite_float,
            parse_constant=_refuse_constant,
        )
    except RecursionError:
        raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:
        raise ParseError(f"JSON parse error - {error}") from None
    _check_strings_and_depth(value)
    return value


class StrictJSONParser(BaseParser):
    media_type = "application/json"

    def parse(
        self,
        stream: IO[Any] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        if stream is None:
            return None
        context = parser_context or {}
        request = context.get("request")
        content_length: int | None = None
        if request is not None:
            try:
                content_length = int(request.META.get("CONTENT_LENGTH") or 0) or None
            except ValueError:
                content_length = None
        body = read_limited(stream, content_length=content_length)
        encoding = context.get("encoding") or settings.DEFAULT_CHARSET
        try:
            text = body.decode(encoding)
        except (LookupError, UnicodeDecodeError) as error:
            raise ParseError(f"JSON parse error - not {encoding} text: {error}") from None
        return json_loads_strict(text)

"""API errors always carry a reason: `{"error": ..., "fields": {...}}` for 400s."""

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

API_PREFIX = "/api/"


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = response.data
        if isinstance(detail, dict):
            non_field = detail.get("non_field_errors")
            summary = "; ".join(
                f"{field}: {_first_message(messages)}"
                for field, messages in detail.items()
                if field != "non_field_errors"
            )
            message = _first_message(non_field) if non_field else summary or "invalid input"
            response.data = {"error": message, "fields": detail}
        else:
            response.data = {"error": _first_message(detail), "fields": {"items": detail}}
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"error": str(response.data["detail"])}
    return response


def _first_message(messages: Any) -> str:
    if isinstance(messages, list) and messages:
        return _first_message(messages[0])
    if isinstance(messages, dict) and messages:
        key, value = next(iter(messages.items()))
        return f"{key}: {_first_message(value)}"
    return str(messages)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """`handler404`: under /api/ a path that matches nothing (`/api/v1/offers/abc/`) answers
    the API's JSON error like any other 404 there; elsewhere, Django's own page."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"error": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)

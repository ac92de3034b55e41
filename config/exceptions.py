"""API errors always carry a reason: `{"error": ..., "fields": {...}}` for 400s."""

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
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
            response.status_code = _validation_status(exc)
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


# No session form posts here: an unknown path is 404 before any CSRF question.
@csrf_exempt
def api_not_found(request: HttpRequest) -> HttpResponse:
    """Every path under /api/ that matches no endpoint, whatever the method."""
    return JsonResponse({"error": "Not found."}, status=404)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """`handler404`: under /api/ a path that matches nothing (`/api/v1/offers/abc/`) answers
    the API's JSON error like any other 404 there; elsewhere, Django's own page."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"error": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


# Only what the generic 400 would misdescribe: the input is well-formed, but names something
# that does not exist (404) or already exists (409). Any other error among them keeps the 400.
_NOT_FOUND_CODES = {"does_not_exist", "not_found"}
_CONFLICT_CODES = {"unique", "conflict_exists"}


def _validation_status(exc: exceptions.ValidationError) -> int:
    codes = set(_leaves(exc.get_codes()))
    if codes and codes <= _NOT_FOUND_CODES:
        return 404
    if codes and codes <= _CONFLICT_CODES:
        return 409
    if codes and codes <= _NOT_FOUND_CODES | _CONFLICT_CODES:
        return 404
    return 400


def _leaves(codes: Any) -> Any:
    if isinstance(codes, dict):
        for value in codes.values():
            yield from _leaves(value)
    elif isinstance(codes, list):
        for value in codes:
            yield from _leaves(value)
    else:
        yield codes


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """`handler400`: what Django refuses before a view runs (too many fields, a body over
    DATA_UPLOAD_MAX_MEMORY_SIZE read as a form) answers in the API's JSON under /api/."""
    if not request.path.startswith(API_PREFIX):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return JsonResponse(
            {"error": f"The body is larger than {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)."},
            status=413,
        )
    return JsonResponse({"error": str(exception) or "Bad request."}, status=400)

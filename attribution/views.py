"""`/postback/<network_slug>/`: read the request, hand it to the intake service, answer."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.http.request import HttpHeaders
from django.views.decorators.csrf import csrf_exempt

from attribution import metrics
from attribution.services.intake import IncomingPostback, postback_receive
from config.client_ip import client_ip_get

FORM = "application/x-www-form-urlencoded"


def _read_body(request: HttpRequest) -> tuple[str, str, str]:
    """The body as text, the content type it is stored under, and what was wrong with it."""
    content_type = str(request.META.get("CONTENT_TYPE", ""))
    try:
        raw = request.body
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return "", content_type, f"body is larger than {limit} bytes"
    if content_type.lower().startswith("multipart/form-data"):
        try:
            form = request.POST
        except (MultiPartParserError, RequestDataTooBig, ValueError):
            return "", content_type, "multipart body is malformed"
        # Stored as the equivalent form body, so the worker can read it again.
        return urlencode(list(form.items())), FORM, ""
    return raw.decode("utf-8", errors="replace"), content_type, ""


def _query_string(request: HttpRequest) -> str:
    # WSGI hands the raw query bytes over as latin-1 text.
    raw = str(request.META.get("QUERY_STRING", ""))
    try:
        return raw.encode("latin-1").decode("utf-8", errors="replace")
    except UnicodeEncodeError:
        return raw


# META keys as `request.headers` names them (None: not a header), each worked out once
# per process: a request carries a dozen, nearly always the same ones.
_header_names: dict[str, str | None] = {}
MAX_HEADER_NAMES = 1000


def _headers(meta: Mapping[str, object]) -> dict[str, str]:
    """The request's headers as `request.headers` has them, without its wrapper."""
    headers: dict[str, str] = {}
    names = _header_names
    for key, value in meta.items():
        try:
            name = names[key]
        except KeyError:
            name = HttpHeaders.parse_header_name(key)
            if len(names) < MAX_HEADER_NAMES:
                names[key] = name
        if name:
            headers[name] = str(value)
    return headers


@csrf_exempt
@metrics.count_postback_answers
def postback_intake(request: HttpRequest, network_slug: str) -> HttpResponse:
    if request.method not in ("GET", "POST"):
        return JsonResponse({"error": "use GET or POST"}, status=405)
    body, content_type, body_problem = _read_body(request)
    headers = _headers(request.META)
    incoming = IncomingPostback(
        method=request.method or "GET",
        query_string=_query_string(request),
        body=body,
        content_type=content_type,
        headers=headers,
        client_ip=client_ip_get(meta=request.META),
        body_problem=body_problem,
    )
    answer = postback_receive(network_slug=network_slug, incoming=incoming)
    if answer.text_response:
        return HttpResponse("success=true;", content_type="text/plain")
    if answer.status_code == 200 and answer.postback_id is not None:
        # The answer of nearly every request, as `JsonResponse` would write it.
        return HttpResponse(
            f'{{"status": "accepted", "postback_id": {answer.postback_id}}}',
            content_type="application/json",
        )
    response = JsonResponse(answer.payload, status=answer.status_code)
    for name, value in answer.headers.items():
        response[name] = value
    return response

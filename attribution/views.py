"""`/postback/<network_slug>/`: read the request, hand it to the intake service, answer."""

from __future__ import annotations

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


@csrf_exempt
@metrics.count_postback_answers
def postback_intake(request: HttpRequest, network_slug: str) -> HttpResponse:
    if request.method not in ("GET", "POST"):
        return JsonResponse({"error": "use GET or POST"}, status=405)
    body, content_type, body_problem = _read_body(request)
    # As `request.headers` has them, without its case-insensitive wrapper.
    headers = {
        name: str(value)
        for key, value in request.META.items()
        if (name := HttpHeaders.parse_header_name(key))
    }
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

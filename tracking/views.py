"""The redirect: look the code up (cached), append the click to the spool, answer 302.

Nothing here touches the session, the user or the database on a cache hit; the
Location only ever comes from the offer (or `LINK_FALLBACK_URL`), never from the
request, apart from the short link's own query string when the offer forwards it.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from tracking import metrics
from tracking.services.clicks import LINK_CODE_PATTERN, click_record
from tracking.services.link_cache import CLICK_ID_MACRO, link_cache_lookup

logger = logging.getLogger(__name__)

_CODE = LINK_CODE_PATTERN


def _plain(status: int, text: str) -> HttpResponse:
    response = HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


def _unavailable(reason: str) -> HttpResponse:
    response = _plain(503, reason)
    response["Retry-After"] = str(settings.REDIRECT_RETRY_AFTER_SECONDS)
    return response


@csrf_exempt
@metrics.count_redirect_answers
def redirect(request: HttpRequest, code: str) -> HttpResponse:
    method = request.method or "GET"
    if method != "GET" and method != "HEAD":
        response = _plain(405, "Short links answer GET and HEAD only.\n")
        response["Allow"] = "GET, HEAD"
        return response
    if _CODE.fullmatch(code) is None:
        return _plain(404, "Unknown link.\n")
    try:
        link = link_cache_lookup(code=code)
    except DatabaseError:
        logger.warning("redirect: database unavailable for an uncached code")
        return _unavailable("Temporarily unavailable, please retry.\n")
    if link is None:
        return _plain(404, "Unknown link.\n")
    try:
        click_id = click_record(link_id=link.link_id, method=method, meta=request.META)
    except OSError:
        # No 302 without a durable click.
        logger.exception("redirect: click spool unavailable")
        return _unavailable("Temporarily unavailable, please retry.\n")
    if link.available:
        location = link.location.replace(CLICK_ID_MACRO, click_id)
        if link.forward_query_string:
            location = _with_query_string(location, request.META.get("QUERY_STRING", ""))
    elif settings.LINK_FALLBACK_URL:
        location = settings.LINK_FALLBACK_URL
    else:
        return _plain(410, "This offer has ended.\n")
    response = HttpResponse(status=302)
    response["Location"] = location
    response["Cache-Control"] = "no-store"
    return response


# Longer query strings are not forwarded: the Location header stays of a sane size.
FORWARDED_QUERY_STRING_MAX = 2048


def _with_query_string(location: str, query_string: str) -> str:
    # Re-encoded, so whatever the client sent can only add parameters, never
    # change the scheme, host or path of the destination.
    if len(query_string) > FORWARDED_QUERY_STRING_MAX:
        return location
    extra = urlencode(parse_qsl(query_string, keep_blank_values=True))
    if not extra:
        return location
    base, hash_mark, fragment = location.partition("#")
    separator = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        separator = ""
    return f"{base}{separator}{extra}{hash_mark}{fragment}"

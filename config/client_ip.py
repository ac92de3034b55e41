"""The caller's address, for the redirect (clicks) and the postback intake (allowlists, limits).

`TRUSTED_PROXY_COUNT` proxies that we run append to `X-Forwarded-For`; the entry the
outermost of them wrote (counted from the right) is the client. Anything left of it came
from the caller and proves nothing. With 0, or fewer entries than proxies, the socket's
address (`REMOTE_ADDR`).
"""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django.http import HttpRequest


def client_ip_get(*, meta: Mapping[str, str]) -> str:
    hops = settings.TRUSTED_PROXY_COUNT
    if hops:
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return meta.get("REMOTE_ADDR", "")


def request_client_ip(request: HttpRequest) -> str:
    """`client_ip_get` of a request: django-axes' `AXES_CLIENT_IP_CALLABLE`."""
    return client_ip_get(meta=request.META)

"""Request id middleware: first in the stack, so cheap it can run on the redirect.

The id comes from `X-Request-ID` when a proxy sent a safe one, otherwise it is made
from a per-process random prefix and a counter: unique across processes and
restarts, and free (no `os.urandom` call per request). It goes into
`config.logging.request_id_var` for log lines and Celery tasks, and back to the
client as the `X-Request-ID` response header.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from config.logging import request_id_var

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class _RequestIdSequence:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.prefix = secrets.token_hex(6)
        self.counter = itertools.count(1)

    def next(self) -> str:
        return f"{self.prefix}-{next(self.counter):x}"


_sequence = _RequestIdSequence()
# A worker forked from a parent that already imported this module must not reuse its ids.
os.register_at_fork(after_in_child=_sequence.reset)


def new_request_id() -> str:
    return _sequence.next()


def request_id_middleware(
    get_response: Callable[[HttpRequest], HttpResponseBase],
) -> Callable[[HttpRequest], HttpResponseBase]:
    def middleware(request: HttpRequest) -> HttpResponseBase:
        incoming = request.META.get("HTTP_X_REQUEST_ID")
        if incoming and _SAFE_REQUEST_ID.fullmatch(incoming):
            request_id = incoming
        else:
            request_id = _sequence.next()
        token = request_id_var.set(request_id)
        try:
            response = get_response(request)
        finally:
            request_id_var.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response

    return middleware

"""The WSGI entry point: one Django, two middleware stacks.

Phones follow short links (`/<code>`) and affiliate networks call the postback
intake (`/postback/<slug>/`); neither has a session, a login, a CSRF token or a page
to frame. Those routes, marked `hot_path(...)` in the URLconf (`config/hot_paths.py`), run
through `HOT_PATH_MIDDLEWARE` (request id, security headers, the Host check); the admin, the
API and everything else get the whole `MIDDLEWARE`. Sessions, auth, messages and CSRF cost
about a third of a bare Django request on these machines and, with more threads contending
for the GIL, most of the redirect's p99.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable
from typing import Any

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest
from django.urls import Resolver404, ResolverMatch, URLResolver, get_resolver

from config.hot_paths import hot_path_matcher, hot_routes_resolver
from config.priority import process_own_session

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")


class HotPathHandler(WSGIHandler):
    """Django's own handler, built with `HOT_PATH_MIDDLEWARE` instead of `MIDDLEWARE`, that
    resolves among the marked routes alone (`hot_routes_resolver`): it only ever serves
    paths the matcher found to be theirs."""

    def __init__(self, hot_resolver: URLResolver) -> None:
        super().__init__()
        self.hot_resolver = hot_resolver

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        if hasattr(request, "urlconf"):
            # A middleware chose another URLconf for this request: Django's own way.
            return super().resolve_request(request)
        try:
            resolver_match = self.hot_resolver.resolve(request.path_info)
        except Resolver404:
            # A converter that refused the value: whatever the whole URLconf makes of it.
            return super().resolve_request(request)
        request.resolver_match = resolver_match
        return resolver_match

    def load_middleware(self, is_async: bool = False) -> None:
        # Django reads the list from settings while it builds the chain, once, when the
        # process starts and before any request: swap it for that moment only.
        full_stack = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.HOT_PATH_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full_stack


StartResponse = Callable[..., Any]


def make_application() -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    django.setup(set_prefix=False)
    # A worker process of the server (granian's are multiprocessing children): a scheduling
    # group of its own (config/priority.py). Not a process that merely imports this module.
    if settings.WEB_WORKER_OWN_SESSION and multiprocessing.parent_process() is not None:
        process_own_session(what="web worker")
    full = WSGIHandler()
    routes = get_resolver().url_patterns
    hot = HotPathHandler(hot_routes_resolver(routes))
    hot_path = hot_path_matcher(routes, reserved=[settings.STATIC_URL])

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        handler = hot if hot_path(environ.get("PATH_INFO", "")) else full
        return handler(environ, start_response)

    return application


application = make_application()

"""`GET /api/v1/`: the API's endpoints, read from the URL configuration itself.

Walking the routes (rather than keeping a list) means a new endpoint shows up here
without anyone remembering to add it.
"""

from __future__ import annotations

import re
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

API_PREFIX = "api/v1/"
METHODS = ("get", "post", "put", "patch", "delete")
CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


def _routes(patterns: list[URLPattern | URLResolver], prefix: str) -> list[tuple[str, URLPattern]]:
    found: list[tuple[str, URLPattern]] = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found.extend(_routes(pattern.url_patterns, route))
        else:
            found.append((route, pattern))
    return found


def api_endpoints() -> list[dict[str, Any]]:
    """Every route under /api/v1/: name, path (`{pk}` for a path parameter), methods."""
    endpoints = []
    for resolver in get_resolver().url_patterns:
        if not (isinstance(resolver, URLResolver) and str(resolver.pattern) == API_PREFIX):
            continue
        for route, pattern in _routes(resolver.url_patterns, "/" + API_PREFIX):
            view_class = getattr(pattern.callback, "cls", None) or getattr(
                pattern.callback, "view_class", None
            )
            if view_class is None or view_class is ApiRootApi:
                continue
            endpoints.append(
                {
                    "name": pattern.name,
                    "path": CONVERTER.sub(r"{\1}", route),
                    "methods": [m.upper() for m in METHODS if hasattr(view_class, m)],
                }
            )
    return endpoints


class ApiRootApi(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        endpoints = api_endpoints()
        for endpoint in endpoints:
            if "{" not in endpoint["path"]:
                endpoint["url"] = request.build_absolute_uri(endpoint["path"])
        return Response({"name": "creditflow API", "endpoints": endpoints})

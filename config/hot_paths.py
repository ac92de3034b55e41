"""Which requests run on the short middleware stack, declared on the routes themselves.

A route wrapped in `hot_path(...)` in a URLconf (the redirect and the postback intake in
`config/urls.py`) is served by `HOT_PATH_MIDDLEWARE`: no session, login, CSRF or framing
(see `config/wsgi.py`). Every other route gets the whole `MIDDLEWARE`, so a new route runs
with sessions and CSRF unless it is marked here, next to its path.

`hot_path_matcher()` turns the URLconf into one compiled regex when the process starts:
a path is hot when the first top-level route Django would try that matches it is marked,
the same order the resolver uses. One regex match per request, as before.

`hot_routes_resolver()` is a resolver of the marked routes alone, in their order: for a path
the matcher calls hot, the first route Django would pick is a marked one, so it resolves the
same, without trying every route in front of it first (the short-link catch-all is the
project's last route: resolving `/<code>` through the whole URLconf cost about as much as
writing its click).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from django.urls import URLPattern, URLResolver
from django.urls.resolvers import RegexPattern

Route = TypeVar("Route", URLPattern, URLResolver)

_MARK = "creditflow_hot_path"
_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


def hot_path(route: Route) -> Route:
    """Mark a top-level route (the value of `path(...)`) for the short middleware stack."""
    setattr(route, _MARK, True)
    return route


def is_hot_path(route: URLPattern | URLResolver) -> bool:
    return bool(getattr(route, _MARK, False))


def _source(route: URLPattern | URLResolver) -> str:
    # Django's own regex for the route (`^postback/(?P<network_slug>[^/]+)/\Z`, or a
    # prefix such as `^admin/` for an include), with names dropped so they can repeat.
    source = route.pattern.regex.pattern.removeprefix("^")
    return _NAMED_GROUP.sub("(?:", source)


def _first_segment(route: URLPattern | URLResolver) -> str | None:
    text = str(route.pattern)
    if not hasattr(route.pattern, "_route"):
        return None
    segment = text.split("/", 1)[0]
    return segment if segment and "<" not in segment else None


def hot_path_matcher(
    urlpatterns: Sequence[URLPattern | URLResolver], *, reserved: Iterable[str] = ()
) -> Callable[[str], re.Match[str] | None]:
    """`match(PATH_INFO)`: truthy when the path would be served by a `hot_path` route.

    The bare first segment of every route (`/admin`, `/postback`) and of each `reserved`
    URL prefix (`STATIC_URL`) is never hot either: whoever asks for it is a person who
    left out the slash, not a phone with a link code.
    """
    segments = {_first_segment(route) for route in urlpatterns}
    segments.update(prefix.strip("/").split("/", 1)[0] for prefix in reserved)
    earlier = [f"(?:{re.escape(segment)}\\Z)" for segment in sorted(filter(None, segments))]
    hot: list[tuple[str, str]] = []
    for route in urlpatterns:
        if is_hot_path(route):
            hot.append((f"(?!{'|'.join(earlier)})", f"(?:{_source(route)})"))
        elif (source := f"(?:{_source(route)})") not in earlier:
            earlier.append(source)
    if not hot:
        return re.compile(r"(?!)").match
    if len({shadow for shadow, _ in hot}) == 1:
        # The usual case (no unmarked route between the marked ones): one lookahead.
        return re.compile(f"/{hot[0][0]}(?:{'|'.join(route for _, route in hot)})").match
    return re.compile(f"/(?:{'|'.join(shadow + route for shadow, route in hot)})").match


def hot_routes_resolver(urlpatterns: Sequence[URLPattern | URLResolver]) -> URLResolver:
    """A root resolver (`^/`, as `get_resolver()`) of the marked top-level routes only."""
    return URLResolver(RegexPattern(r"^/"), [route for route in urlpatterns if is_hot_path(route)])

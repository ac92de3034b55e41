"""Only routes marked `hot_path(...)` run on the short middleware stack (no session, CSRF)."""

import re

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, get_resolver, include, path, re_path

from config.hot_paths import hot_path, hot_path_matcher, hot_routes_resolver, is_hot_path

SAMPLES = {
    "int": "7",
    "str": "x",
    "slug": "x-1",
    "path": "x/y",
    "uuid": "0" * 8 + "-0000" * 3 + "-" + "0" * 12,
}


def _view(request: HttpRequest, **kwargs: str) -> HttpResponse:
    return HttpResponse()


def _sample_paths(patterns: list[URLPattern | URLResolver], prefix: str = "") -> list[str]:
    """One concrete path per `path()` route (regex routes get their literal prefix)."""
    found = []
    for route in patterns:
        text = str(route.pattern)
        if hasattr(route.pattern, "_route"):
            text = re.sub(
                r"<(?:(\w+):)?\w+>", lambda m: SAMPLES.get(m.group(1) or "str", "x"), text
            )
        else:
            text = re.split(r"[\[(.*+?\\$]", text.removeprefix("^"), maxsplit=1)[0]
        if isinstance(route, URLResolver):
            found.append(prefix + text)
            found.extend(_sample_paths(route.url_patterns, prefix + text))
        else:
            found.append(prefix + text)
    return ["/" + sample for sample in found]


def _served_by_hot_route(patterns: list[URLPattern | URLResolver], path_info: str) -> bool:
    """As Django's resolver would pick the route; a bare `/admin` or `/static` is a person
    who left out the slash, and gets the whole stack whatever it resolves to."""
    bare = {str(route.pattern).split("/", 1)[0] for route in patterns} | {"static"}
    if path_info.removeprefix("/") in bare:
        return False
    for route in patterns:
        if route.pattern.match(path_info.removeprefix("/")):
            return is_hot_path(route)
    return False


def test_every_route_of_the_project_is_on_the_stack_its_marker_says():
    # given
    patterns = get_resolver().url_patterns
    matcher = hot_path_matcher(patterns, reserved=["/static/"])
    paths = [
        *_sample_paths(patterns),
        *("/admin", "/api", "/healthz", "/metrics", "/static", "/postback", "/Ab3dE5gH"),
        *("/postback/acme/", "/postback/acme", "/admin/login/", "/api/v1/offers/"),
    ]

    # when
    wrongly_short = [p for p in paths if matcher(p) and not _served_by_hot_route(patterns, p)]
    wrongly_full = [p for p in paths if not matcher(p) and _served_by_hot_route(patterns, p)]

    # then
    assert len(paths) > 50
    assert wrongly_short == []
    assert wrongly_full == []
    assert matcher("/Ab3dE5gH") and matcher("/postback/acme/")
    assert not matcher("/healthz") and not matcher("/metrics") and not matcher("/admin/")


def test_a_new_unmarked_route_gets_the_whole_stack_even_beside_the_short_link_catch_all():
    # given: a page added in front of the short-link catch-all, marked nowhere
    patterns: list[URLPattern | URLResolver] = [
        path("admin/", include([path("login/", _view)])),
        path("login", _view),
        re_path(r"^export/(?P<day>\d{4}-\d{2}-\d{2})\.csv$", _view),
        hot_path(path("postback/<str:network_slug>/", _view)),
        hot_path(path("<str:code>", _view)),
    ]

    # when
    matcher = hot_path_matcher(patterns)

    # then
    assert not matcher("/login")
    assert not matcher("/admin/login/")
    assert not matcher("/export/2026-01-02.csv")
    assert matcher("/export")
    assert matcher("/postback/acme/")
    assert matcher("/login2")


def test_no_marked_route_means_no_short_stack():
    matcher = hot_path_matcher([path("<str:code>", _view)])

    assert not matcher("/anything")


def test_the_short_stack_resolves_each_of_its_paths_to_the_route_the_whole_urlconf_picks():
    # given
    patterns = get_resolver().url_patterns
    matcher = hot_path_matcher(patterns, reserved=["/static/"])
    hot_resolver = hot_routes_resolver(patterns)
    paths = [p for p in _sample_paths(patterns) if matcher(p)]
    paths += ["/Ab3dE5gH", "/postback/acme/", "/x-_9"]

    # when
    picked = {p: hot_resolver.resolve(p) for p in paths}

    # then
    whole = {p: get_resolver().resolve(p) for p in paths}
    assert {p: (m.func, m.route, m.kwargs) for p, m in picked.items()} == {
        p: (m.func, m.route, m.kwargs) for p, m in whole.items()
    }

"""Admin login brute force: django-axes, counting failures in the Django cache (Redis).

Settings (`AXES_*` in base.py) lock out one username from one address after
`AXES_FAILURE_LIMIT` failures within `AXES_COOLOFF_TIME`, for `AXES_COOLOFF_TIME`.
"""

from __future__ import annotations

import time
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.handlers.cache import AxesCacheHandler
from axes.helpers import get_client_cache_keys, get_cool_off
from django.http import HttpRequest

LAST_FAILURE_SUFFIX = ":last-failure"


class LoginLockoutBackend(AxesStandaloneBackend):
    """Axes' backend for logins that come with a request, as every login form's does.

    Without a request (Django's test client's `login()`, a shell) there is no address to
    lock out: axes would raise, so this stands aside and the next backend decides.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


class LoginLockoutCacheHandler(AxesCacheHandler):
    """Axes' cache handler, with the cool-off measured by this process's clock too.

    Axes lets Redis forget a failure count through the key's TTL, on Redis's clock. The
    time of the last counted failure, kept beside the count, lets the web process decide
    the same on its own clock, so the cool-off holds to the second, and tests can step
    over it with time-machine instead of sleeping 15 minutes.
    """

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        if self._cooled_off(request, credentials):
            return 0
        return int(super().get_failures(request, credentials))

    def user_login_failed(
        self,
        sender: Any,
        credentials: dict[str, Any],
        request: HttpRequest | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            super().user_login_failed(sender, credentials, request, **kwargs)
            return
        keys = get_client_cache_keys(request, credentials)
        if self._cooled_off(request, credentials):
            self.cache.delete_many([*keys, *(key + LAST_FAILURE_SUFFIX for key in keys)])
        already_locked_out = bool(getattr(request, "axes_locked_out", False))
        super().user_login_failed(sender, credentials, request, **kwargs)
        if not already_locked_out:
            # A failure while locked out is not counted, so it does not move the window either.
            timeout = self._timeout(request)
            self.cache.set_many({key + LAST_FAILURE_SUFFIX: time.time() for key in keys}, timeout)

    def _cooled_off(self, request: HttpRequest, credentials: dict[str, Any] | None) -> bool:
        cool_off = get_cool_off(request)
        if cool_off is None:
            return False
        keys = [key + LAST_FAILURE_SUFFIX for key in get_client_cache_keys(request, credentials)]
        stamps = [stamp for stamp in self.cache.get_many(keys).values() if stamp is not None]
        return bool(stamps) and time.time() - max(stamps) >= cool_off.total_seconds()

    @staticmethod
    def _timeout(request: HttpRequest) -> int | None:
        cool_off = get_cool_off(request)
        return None if cool_off is None else int(cool_off.total_seconds())


def login_client_str(
    username: str, ip_address: str, user_agent: str, path_info: Any, request: HttpRequest
) -> str:
    """What axes logs about an attempt: the username and path, never the address."""
    path = path_info[0] if isinstance(path_info, list | tuple) else path_info
    return f"{{username: {username!r}, path_info: {path!r}}}"

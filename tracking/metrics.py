"""The redirect's counter in `/metrics`: answers by outcome (see `config.metrics`).

    @count_redirect_answers                     # on tracking.views.redirect
or, by hand, `redirect_outcome("redirect")`. Counted in-process and written in batches:
the redirect's per-request cost stays a dict increment.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from config.metrics import BatchedOutcomes, Counter, outcome_counters

REDIRECT_OUTCOMES = frozenset({"redirect", "fallback", "not_found", "gone", "error"})
REDIRECTS = Counter("creditflow_redirects", "Requests to short links, by outcome", ["outcome"])

_redirect_batch = BatchedOutcomes(outcome_counters(REDIRECTS, REDIRECT_OUTCOMES))
_REDIRECT_STATUSES = {302: "redirect", 404: "not_found", 410: "gone"}

View = Callable[..., HttpResponseBase]


def redirect_outcome(outcome: str) -> None:
    """Count one answered short-link request: redirect, fallback, not_found, gone or error."""
    _redirect_batch.add(outcome)


def count_redirect_answers(view: View) -> View:
    """Decorate the redirect view: each answer counted by outcome (302 to
    `LINK_FALLBACK_URL` as "fallback"; 405 and 5xx as "error")."""

    @functools.wraps(view)
    def counted(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        outcome = _REDIRECT_STATUSES.get(response.status_code, "error")
        if (
            outcome == "redirect"
            and settings.LINK_FALLBACK_URL
            and response.get("Location") == settings.LINK_FALLBACK_URL
        ):
            outcome = "fallback"
        _redirect_batch.add(outcome)
        return response

    return counted

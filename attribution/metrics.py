"""The postback counters in `/metrics` (see `config.metrics`).

    @count_postback_answers                     # on attribution.views.postback_intake
    postback_processed("attributed")            # the worker, per decided postback
or, by hand, `postback_outcome("accepted")`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBase

from config.metrics import BatchedOutcomes, Counter, outcome_counters

POSTBACK_OUTCOMES = frozenset(
    {"accepted", "duplicate", "invalid", "forbidden", "unknown_network", "rate_limited", "error"}
)
POSTBACK_PROCESSED_OUTCOMES = frozenset(
    {"attributed", "unattributed", "status_changed", "invalid", "failed", "retried"}
)

POSTBACKS = Counter("creditflow_postbacks", "Postbacks received, by answer", ["outcome"])
POSTBACKS_PROCESSED = Counter(
    "creditflow_postbacks_processed", "Postbacks decided by a worker, by outcome", ["outcome"]
)
# Counted in-process and written in batches (see `config.metrics.BatchedOutcomes`).
_postback_batch = BatchedOutcomes(outcome_counters(POSTBACKS, POSTBACK_OUTCOMES))
_processed_counters = outcome_counters(POSTBACKS_PROCESSED, POSTBACK_PROCESSED_OUTCOMES)

_POSTBACK_STATUSES = {
    200: "accepted",
    400: "invalid",
    403: "forbidden",
    404: "unknown_network",
    405: "invalid",
    413: "invalid",
    429: "rate_limited",
}

View = Callable[..., HttpResponseBase]


def postback_outcome(outcome: str) -> None:
    """Count one answered postback: accepted, duplicate, invalid, forbidden,
    unknown_network, rate_limited or error."""
    _postback_batch.add(outcome)


def postback_processed(outcome: str, count: int = 1) -> None:
    """Count postbacks a worker decided: attributed, unattributed, status_changed,
    invalid, failed or retried (`count` of them at once, for a batch)."""
    if count <= 0:
        return
    counter = _processed_counters.get(outcome)
    if counter is None:
        counter = _processed_counters["failed"]
    counter.inc(count)


def count_postback_answers(view: View) -> View:
    """Decorate the postback intake: each answer counted by outcome."""

    @functools.wraps(view)
    def counted(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        postback_outcome(_POSTBACK_STATUSES.get(response.status_code, "error"))
        return response

    return counted

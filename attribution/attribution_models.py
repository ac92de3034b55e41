"""Attribution models as pure functions: candidate clicks in, a decision out.

Nothing here touches the database. The caller loads the click the network named
(`named_click`) and that contact's clicks on the same offer, turns them into
`CandidateClick`s and asks `attribution_decide` which one, if any, gets the credit.

A candidate is a click of the same contact on the same offer, neither bot nor
preview, at or before the conversion time T and no older than the offer's
`click_window_days` (a click exactly `click_window_days` before T still counts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter

FIRST_CLICK = "first_click"
LAST_CLICK = "last_click"
COOPERATIVE = "cooperative"

# Why a conversion got no credit.
REASON_UNKNOWN_CLICK = "unknown_click"
REASON_NO_CLICK_ID = "no_click_id"
REASON_OUTSIDE_WINDOW = "outside_window"
REASON_BOT_CLICK = "bot_click"
REASON_FUTURE_TIME = "future_time"
REASON_TOO_OLD = "too_old"
REASON_OFFER_MISMATCH = "offer_mismatch"
REASON_CLICK_AFTER_CONVERSION = "click_after_conversion"
# Conversions that name a person instead of a click.
REASON_UNKNOWN_PERSON = "unknown_person"
REASON_UNKNOWN_OFFER = "unknown_offer"
REASON_NO_CLICK = "no_click"

# A network's clock may run a little ahead of ours; beyond this a time is refused.
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_CONVERSION_AGE = timedelta(days=90)


@dataclass(frozen=True)
class CandidateClick:
    id: int
    occurred_at: datetime
    channel: str
    is_bot: bool = False
    is_preview: bool = False


@dataclass(frozen=True)
class OfferWindows:
    click_window_days: int = 30
    sms_window_days: int = 1
    email_window_days: int = 5

    def channel_window(self, channel: str) -> timedelta:
        """A channel's window, never longer than the offer's click window."""
        if channel == "sms":
            days = self.sms_window_days
        elif channel == "email":
            days = self.email_window_days
        else:
            days = self.click_window_days
        return timedelta(days=min(days, self.click_window_days))


@dataclass(frozen=True)
class Decision:
    click_id: int | None
    reason: str = ""

    @property
    def attributed(self) -> bool:
        return self.click_id is not None


def _is_human(click: CandidateClick) -> bool:
    return not click.is_bot and not click.is_preview


_CLICK_ORDER = attrgetter("occurred_at", "id")


def candidates_in_window(
    clicks: Sequence[CandidateClick], *, windows: OfferWindows, occurred_at: datetime
) -> list[CandidateClick]:
    """Human clicks at or before T and no older than the click window, oldest first."""
    earliest = occurred_at - timedelta(days=windows.click_window_days)
    # A comparison asks this hundreds of thousands of times: no generator, no lambda.
    inside = [
        click
        for click in clicks
        if not click.is_bot
        and not click.is_preview
        and earliest <= click.occurred_at <= occurred_at
    ]
    inside.sort(key=_CLICK_ORDER)
    return inside


def first_click(
    candidates: Sequence[CandidateClick], *, windows: OfferWindows, occurred_at: datetime
) -> CandidateClick | None:
    return candidates[0] if candidates else None


def last_click(
    candidates: Sequence[CandidateClick], *, windows: OfferWindows, occurred_at: datetime
) -> CandidateClick | None:
    return candidates[-1] if candidates else None


def cooperative(
    candidates: Sequence[CandidateClick], *, windows: OfferWindows, occurred_at: datetime
) -> CandidateClick | None:
    """The latest candidate whose own channel's window is still open at T."""
    open_ones = [
        click
        for click in candidates
        if occurred_at - click.occurred_at <= windows.channel_window(click.channel)
    ]
    return open_ones[-1] if open_ones else None


MODELS: dict[str, Callable[..., CandidateClick | None]] = {
    FIRST_CLICK: first_click,
    LAST_CLICK: last_click,
    COOPERATIVE: cooperative,
}


def attribution_decide(
    *,
    model: str,
    named_click: CandidateClick | None,
    clicks: Sequence[CandidateClick],
    windows: OfferWindows,
    occurred_at: datetime,
    received_at: datetime,
) -> Decision:
    """Which click gets the credit for a conversion at `occurred_at`.

    `clicks` are the named click's contact's clicks on the same offer (bots and
    previews included: they explain a `bot_click` refusal, never win).
    """
    if occurred_at > received_at + FUTURE_TOLERANCE:
        return Decision(None, REASON_FUTURE_TIME)
    if occurred_at < received_at - MAX_CONVERSION_AGE:
        return Decision(None, REASON_TOO_OLD)
    if named_click is None:
        return Decision(None, REASON_UNKNOWN_CLICK)
    candidates = candidates_in_window(clicks, windows=windows, occurred_at=occurred_at)
    chosen = MODELS.get(model, first_click)(candidates, windows=windows, occurred_at=occurred_at)
    if chosen is not None:
        return Decision(chosen.id, "")
    if not candidates and not _is_human(named_click):
        return Decision(None, REASON_BOT_CLICK)
    if named_click.occurred_at > occurred_at and not candidates:
        return Decision(None, REASON_CLICK_AFTER_CONVERSION)
    return Decision(None, REASON_OUTSIDE_WINDOW)


def attribution_decide_person(
    *,
    model: str,
    clicks: Sequence[CandidateClick],
    windows: OfferWindows,
    occurred_at: datetime,
    received_at: datetime,
    clicked_before: bool,
) -> Decision:
    """Which click gets the credit for a conversion that names a person, not a click.

    `clicks` are that person's clicks on the offer, as for `attribution_decide`;
    `clicked_before` tells whether they clicked the offer at all before T (a click
    older than the window makes the reason `outside_window` rather than `no_click`).
    """
    if occurred_at > received_at + FUTURE_TOLERANCE:
        return Decision(None, REASON_FUTURE_TIME)
    if occurred_at < received_at - MAX_CONVERSION_AGE:
        return Decision(None, REASON_TOO_OLD)
    candidates = candidates_in_window(clicks, windows=windows, occurred_at=occurred_at)
    chosen = MODELS.get(model, first_click)(candidates, windows=windows, occurred_at=occurred_at)
    if chosen is not None:
        return Decision(chosen.id, "")
    if candidates or clicked_before:
        return Decision(None, REASON_OUTSIDE_WINDOW)
    return Decision(None, REASON_NO_CLICK)


@dataclass(frozen=True)
class CandidateSend:
    message_id: int
    sent_at: datetime


# Reasons after which a conversion may still be credited view-through: its person is
# known, only no human click of theirs earns it. (An unknown click or person, an
# impossible time or another offer's click leave nobody to credit.)
VIEW_THROUGH_REASONS = frozenset(
    {REASON_OUTSIDE_WINDOW, REASON_BOT_CLICK, REASON_CLICK_AFTER_CONVERSION, REASON_NO_CLICK}
)


def view_through_decide(
    *, sends: Sequence[CandidateSend], view_window_hours: int, occurred_at: datetime
) -> CandidateSend | None:
    """The latest send of the offer to the person within `view_window_hours` before T
    (a send exactly that long before T still counts); None when the window is 0 (off)."""
    if view_window_hours <= 0:
        return None
    earliest = occurred_at - timedelta(hours=view_window_hours)
    inside = [send for send in sends if earliest <= send.sent_at <= occurred_at]
    return max(inside, key=lambda send: (send.sent_at, send.message_id), default=None)

"""The attribution models as pure functions: every scenario of the contract, to the second."""

from datetime import UTC, datetime, timedelta

import pytest

from attribution.attribution_models import (
    CandidateClick,
    OfferWindows,
    attribution_decide,
)

T = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
RECEIVED = T + timedelta(minutes=1)
SECOND = timedelta(seconds=1)


def click(id_: int, at: datetime, channel: str = "sms", **flags: bool) -> CandidateClick:
    return CandidateClick(id=id_, occurred_at=at, channel=channel, **flags)


def decide(model: str, named: CandidateClick | None, clicks: list[CandidateClick], **kwargs):
    return attribution_decide(
        model=model,
        named_click=named,
        clicks=clicks,
        windows=kwargs.pop("windows", OfferWindows()),
        occurred_at=kwargs.pop("occurred_at", T),
        received_at=kwargs.pop("received_at", RECEIVED),
    )


def test_first_click_credits_message_a_and_last_click_credits_message_b():
    # given: a contact clicked message A, then message B, then converted
    a = click(1, T - timedelta(days=3))
    b = click(2, T - timedelta(days=1))
    # when
    first = decide("first_click", b, [a, b])
    last = decide("last_click", b, [a, b])
    # then
    assert first.click_id == a.id
    assert last.click_id == b.id
    assert first.attributed and last.attributed


def test_an_unknown_model_falls_back_to_first_click():
    a, b = click(1, T - timedelta(days=3)), click(2, T - timedelta(days=1))
    assert decide("", b, [a, b]).click_id == a.id


def test_cooperative_sms_outside_its_window_loses_to_email_inside_its_window():
    # given: an email clicked 4 days ago (email window 5 days), an SMS 2 days ago (window 1 day)
    email = click(1, T - timedelta(days=4), "email")
    sms = click(2, T - timedelta(days=2), "sms")
    # when
    decision = decide("cooperative", sms, [email, sms])
    # then
    assert decision.click_id == email.id


def test_cooperative_latest_open_candidate_wins_when_both_windows_are_open():
    email = click(1, T - timedelta(days=4), "email")
    sms = click(2, T - timedelta(hours=3), "sms")
    assert decide("cooperative", sms, [email, sms]).click_id == sms.id


def test_cooperative_channel_window_is_capped_by_the_click_window():
    # given: email window 5 days but the offer's click window is 2 days
    windows = OfferWindows(click_window_days=2, sms_window_days=1, email_window_days=5)
    email = click(1, T - timedelta(days=3), "email")
    # when
    decision = decide("cooperative", email, [email], windows=windows)
    # then
    assert not decision.attributed
    assert decision.reason == "outside_window"


def test_cooperative_with_every_channel_window_closed_is_outside_window():
    sms = click(1, T - timedelta(days=2), "sms")
    decision = decide("cooperative", sms, [sms])
    assert decision.click_id is None
    assert decision.reason == "outside_window"


@pytest.mark.parametrize(
    ("age", "credited"),
    [
        (timedelta(days=30), True),
        (timedelta(days=30) + SECOND, False),
        (timedelta(days=30) - SECOND, True),
        (timedelta(0), True),
        (-SECOND, False),
    ],
    ids=["exactly-30-days", "30-days-and-1-second", "30-days-less-1-second", "at-T", "after-T"],
)
@pytest.mark.parametrize("model", ["first_click", "last_click"])
def test_click_window_edges_to_the_second(model, age, credited):
    # given: a 30-day click window
    the_click = click(1, T - age)
    # when
    decision = decide(model, the_click, [the_click], windows=OfferWindows(click_window_days=30))
    # then
    assert decision.attributed is credited


@pytest.mark.parametrize(
    ("channel", "age", "credited"),
    [
        ("sms", timedelta(days=1), True),
        ("sms", timedelta(days=1) + SECOND, False),
        ("email", timedelta(days=5), True),
        ("email", timedelta(days=5) + SECOND, False),
    ],
)
def test_cooperative_channel_window_edges_to_the_second(channel, age, credited):
    the_click = click(1, T - age, channel)
    assert decide("cooperative", the_click, [the_click]).attributed is credited


def test_a_click_after_the_conversion_is_not_a_candidate():
    later = click(1, T + SECOND)
    decision = decide("first_click", later, [later])
    assert decision.click_id is None
    assert decision.reason == "click_after_conversion"


def test_first_click_outside_the_window_leaves_the_later_one_the_credit():
    old = click(1, T - timedelta(days=31))
    recent = click(2, T - timedelta(days=2))
    assert decide("first_click", recent, [old, recent]).click_id == recent.id


def test_unknown_click_is_kept_unattributed_with_its_reason():
    decision = decide("first_click", None, [])
    assert decision.click_id is None
    assert decision.reason == "unknown_click"


@pytest.mark.parametrize("flag", ["is_bot", "is_preview"])
def test_a_bot_or_preview_only_click_gets_no_credit(flag):
    # given: the only click is a bot (or a link-preview fetcher)
    bot = CandidateClick(
        id=1,
        occurred_at=T - timedelta(hours=1),
        channel="sms",
        is_bot=flag == "is_bot",
        is_preview=flag == "is_preview",
    )
    # when
    decision = decide("last_click", bot, [bot])
    # then
    assert decision.click_id is None
    assert decision.reason == "bot_click"


def test_a_bot_named_click_loses_to_a_human_click_of_the_same_contact():
    human = click(1, T - timedelta(days=2))
    bot = click(2, T - timedelta(hours=1), is_bot=True)
    assert decide("last_click", bot, [human, bot]).click_id == human.id


def test_bots_never_win_even_when_latest():
    human = click(1, T - timedelta(days=2))
    preview = click(2, T - timedelta(minutes=1), "sms", is_preview=True)
    assert decide("cooperative", human, [human, preview]).reason == "outside_window"
    assert decide("last_click", human, [human, preview]).click_id == human.id


@pytest.mark.parametrize(
    ("ahead", "reason"),
    [(timedelta(minutes=5), ""), (timedelta(minutes=5) + SECOND, "future_time")],
)
def test_a_conversion_time_more_than_5_minutes_ahead_is_refused(ahead, reason):
    the_click = click(1, RECEIVED - timedelta(hours=1))
    occurred_at = RECEIVED + ahead
    decision = decide("first_click", the_click, [the_click], occurred_at=occurred_at)
    assert decision.reason == reason


@pytest.mark.parametrize(
    ("age", "reason"),
    [(timedelta(days=90), ""), (timedelta(days=90) + SECOND, "too_old")],
)
def test_a_conversion_older_than_90_days_is_refused(age, reason):
    occurred_at = RECEIVED - age
    the_click = click(1, occurred_at - timedelta(hours=1))
    windows = OfferWindows(click_window_days=30)
    decision = decide(
        "first_click", the_click, [the_click], occurred_at=occurred_at, windows=windows
    )
    assert decision.reason == reason

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from attribution.models import ConversionStatus
from reports.services import rollup_recompute_day, rollup_recompute_range
from tests.factories import CampaignFactory, CreativeFactory, NetworkFactory, OfferFactory
from tests.reports.helpers import (
    clicks_made,
    conversion_credited,
    conversion_unattributed,
    message_sent,
    rollup_cells,
)

DAY = date(2026, 5, 14)


def at(hour: int, minute: int = 0, *, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


@pytest.fixture
def world(db):
    """The hand-computed fixture: two networks, two offers, two campaigns, three creatives,
    four messages (one sent the day before), their clicks and seven conversions."""
    network_1, network_2 = NetworkFactory(), NetworkFactory()
    offer_1, offer_2 = OfferFactory(network=network_1), OfferFactory(network=network_2)
    campaign_1, campaign_2 = CampaignFactory(), CampaignFactory()
    creative_1 = CreativeFactory(campaign=campaign_1)
    creative_2 = CreativeFactory(campaign=campaign_1)
    creative_3 = CreativeFactory(campaign=campaign_2)
    message_1, link_1 = message_sent(creative=creative_1, offer=offer_1, sent_at=at(10))
    message_2, link_2 = message_sent(creative=creative_2, offer=offer_1, sent_at=at(11))
    message_3, link_3 = message_sent(creative=creative_3, offer=offer_2, sent_at=at(12))
    message_4, link_4 = message_sent(
        creative=creative_1, offer=offer_1, sent_at=at(22, day=DAY - timedelta(days=1))
    )
    # message 1: 2 unique human clicks + 1 duplicate, 1 bot, 1 preview
    clicks_made(link_1, at(10, 5), count=2)
    clicks_made(link_1, at(10, 6), is_duplicate=True)
    clicks_made(link_1, at(10, 7), is_bot=True)
    clicks_made(link_1, at(10, 8), is_preview=True, is_duplicate=True)
    clicks_made(link_1, at(0, 30, day=DAY + timedelta(days=1)), count=3)  # next day
    clicks_made(link_2, at(11, 5))
    clicks_made(link_3, at(12, 5), is_bot=True, is_duplicate=True)
    clicks_made(link_4, at(8), count=2)
    conversion_credited(message_1, at(13), payout="10.00")
    conversion_credited(message_4, at(14), payout="5.00", status=ConversionStatus.PENDING)
    conversion_credited(message_2, at(15), payout="7.00", status=ConversionStatus.REJECTED)
    conversion_credited(message_1, at(16), payout="4.00", status=ConversionStatus.REVERSED)
    conversion_unattributed(network_2, at(17), payout="3.00", offer=offer_2)
    conversion_unattributed(network_1, at(18), payout="2.00")
    conversion_credited(message_1, at(1, day=DAY + timedelta(days=1)), payout="100.00")
    return {
        "networks": (network_1, network_2),
        "offers": (offer_1, offer_2),
        "campaigns": (campaign_1, campaign_2),
        "creatives": (creative_1, creative_2, creative_3),
        "messages": (message_1, message_2, message_3, message_4),
    }


def test_every_metric_of_every_dimension_matches_the_hand_computed_day(world):
    # given
    message_1, message_2, message_3, message_4 = world["messages"]
    creative_1, creative_2, creative_3 = world["creatives"]
    campaign_1, campaign_2 = world["campaigns"]
    offer_1, offer_2 = world["offers"]
    network_1, network_2 = world["networks"]

    # when
    rollup_recompute_day(day=DAY)

    # then
    d = Decimal
    group_1 = {  # messages 1, 2 and 4 together
        "sends": 2,
        "clicks": 6,
        "unique_clicks": 5,
        "bot_clicks": 2,
        "conversions": 2,
        "revenue": d("15"),
        "rejected_conversions": 1,
        "reversed_conversions": 1,
        "reversed_revenue": d("4"),
    }
    assert rollup_cells(DAY) == {
        ("message", message_1.pk): {
            "sends": 1,
            "clicks": 3,
            "unique_clicks": 2,
            "bot_clicks": 2,
            "conversions": 1,
            "revenue": d("10"),
            "reversed_conversions": 1,
            "reversed_revenue": d("4"),
        },
        ("message", message_2.pk): {
            "sends": 1,
            "clicks": 1,
            "unique_clicks": 1,
            "rejected_conversions": 1,
        },
        ("message", message_3.pk): {"sends": 1, "bot_clicks": 1},
        ("message", message_4.pk): {
            "clicks": 2,
            "unique_clicks": 2,
            "conversions": 1,
            "revenue": d("5"),
        },
        ("creative", creative_1.pk): {
            "sends": 1,
            "clicks": 5,
            "unique_clicks": 4,
            "bot_clicks": 2,
            "conversions": 2,
            "revenue": d("15"),
            "reversed_conversions": 1,
            "reversed_revenue": d("4"),
        },
        ("creative", creative_2.pk): {
            "sends": 1,
            "clicks": 1,
            "unique_clicks": 1,
            "rejected_conversions": 1,
        },
        ("creative", creative_3.pk): {"sends": 1, "bot_clicks": 1},
        ("campaign", campaign_1.pk): group_1,
        ("campaign", campaign_2.pk): {"sends": 1, "bot_clicks": 1},
        ("offer", offer_1.pk): group_1,
        # the unattributed conversion that names offer 2 counts under it
        ("offer", offer_2.pk): {"sends": 1, "bot_clicks": 1, "conversions": 1, "revenue": d("3")},
        # the unattributed conversion without an offer counts under its network only
        ("network", network_1.pk): {**group_1, "conversions": 3, "revenue": d("17")},
        ("network", network_2.pk): {
            "sends": 1,
            "bot_clicks": 1,
            "conversions": 1,
            "revenue": d("3"),
        },
    }


def test_recomputing_a_day_twice_changes_nothing(world):
    # given
    rollup_recompute_day(day=DAY)
    first = rollup_cells(DAY)

    # when
    rollup_recompute_day(day=DAY)

    # then
    assert rollup_cells(DAY) == first
    assert len(first) == 13


def test_a_reversal_takes_the_revenue_out_of_its_day(world):
    # given
    message_1 = world["messages"][0]
    rollup_recompute_day(day=DAY)
    conversion = message_1.conversions.get(status=ConversionStatus.APPROVED, occurred_at=at(13))

    # when
    conversion.status = ConversionStatus.REVERSED
    conversion.save()
    rollup_recompute_day(day=DAY)

    # then
    cell = rollup_cells(DAY)[("message", message_1.pk)]
    assert cell.get("revenue") is None
    assert cell.get("conversions") is None
    assert cell["reversed_conversions"] == 2
    assert cell["reversed_revenue"] == Decimal("14")


def test_a_late_conversion_counts_on_the_day_it_occurred_not_the_day_it_arrived(world):
    # given: the rollups of the day and of three days later are computed
    message_2 = world["messages"][1]
    later = DAY + timedelta(days=3)
    rollup_recompute_range(start=DAY, end=later)

    # when: a postback arrives three days later for a conversion of DAY
    late = conversion_credited(message_2, at(20), payout="12.50")
    late.received_at = at(9, day=later)
    late.save()
    rollup_recompute_range(start=DAY, end=later)

    # then
    assert rollup_cells(DAY)[("message", message_2.pk)]["revenue"] == Decimal("12.50")
    assert all(
        dimension != "message" or key != message_2.pk for dimension, key in rollup_cells(later)
    )


def test_a_day_without_anything_has_no_rows(world):
    # when
    written = rollup_recompute_day(day=DAY + timedelta(days=10))

    # then
    assert written == 0
    assert rollup_cells(DAY + timedelta(days=10)) == {}

"""Small builders shared by the reports tests: a message with its link, clicks, conversions."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from attribution.models import Conversion, ConversionStatus
from reports.models import DailyRollup
from tests.factories import ClickFactory, ConversionFactory, LinkFactory, MessageFactory
from tracking.models import Click, Link, Message

METRICS = (
    "sends",
    "clicks",
    "unique_clicks",
    "bot_clicks",
    "conversions",
    "rejected_conversions",
    "reversed_conversions",
    "revenue",
    "reversed_revenue",
)


def message_sent(*, creative: Any, offer: Any, sent_at: datetime) -> tuple[Message, Link]:
    message = MessageFactory(
        creative=creative, campaign=creative.campaign, offer=offer, sent_at=sent_at
    )
    return cast(Message, message), cast(Link, LinkFactory(message=message))


def clicks_made(
    link: Link,
    at: datetime,
    *,
    count: int = 1,
    is_bot: bool = False,
    is_preview: bool = False,
    is_duplicate: bool = False,
) -> list[Click]:
    return [
        cast(
            Click,
            ClickFactory(
                link=link,
                occurred_at=at,
                is_bot=is_bot,
                is_preview=is_preview,
                is_duplicate=is_duplicate,
            ),
        )
        for _ in range(count)
    ]


def conversion_credited(
    message: Message,
    at: datetime,
    *,
    payout: str,
    status: str = ConversionStatus.APPROVED,
) -> Conversion:
    return cast(
        Conversion,
        ConversionFactory(
            network=message.offer.network,
            message=message,
            creative=message.creative,
            campaign=message.campaign,
            offer=message.offer,
            contact=message.contact,
            attributed=True,
            status=status,
            payout=Decimal(payout),
            occurred_at=at,
        ),
    )


def conversion_unattributed(
    network: Any, at: datetime, *, payout: str, offer: Any = None
) -> Conversion:
    return cast(
        Conversion,
        ConversionFactory(
            network=network,
            offer=offer,
            attributed=False,
            reason="unknown_click",
            payout=Decimal(payout),
            occurred_at=at,
        ),
    )


def rollup_cells(day: date) -> dict[tuple[str, int], dict[str, Any]]:
    """Every rollup row of a day as {(dimension, key): {metric: value}}, zero metrics dropped."""
    cells = {}
    for row in DailyRollup.objects.filter(day=day):
        values = {metric: getattr(row, metric) for metric in METRICS}
        cells[(row.dimension, row.key)] = {k: v for k, v in values.items() if v}
    return cells

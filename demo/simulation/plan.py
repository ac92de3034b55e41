"""The demo's plan: who gets which message, who taps, who converts; random, from one seed.

Nothing here touches the database or a path: `run.py` sends what this plans through the
real ones. The draws come from one `random.Random` in a fixed order, so a seed gives the
same demo.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from demo.simulation.catalog import (
    ADDRESS_BLOCKS,
    AREA_CODES,
    CAMPAIGNS,
    OFFERS,
    UA_ANDROID_CHROME,
    UA_BOTS,
    UA_DESKTOP_CHROME,
    UA_IMESSAGE_PREVIEW,
    UA_IPHONE_SAFARI,
    UA_MAC_SAFARI,
    UA_WHATSAPP_PREVIEW,
    Catalog,
    DemoOffer,
)
from reports.services import rollup_today
from tracking.services.contacts import ContactSpec
from tracking.services.messages import MessageSpec


@dataclass
class Person:
    phone: str | None
    email: str | None
    mobile_agent: str
    desktop_agent: str
    address: str
    previews_links: bool


@dataclass
class PlannedMessage:
    spec: MessageSpec
    person: Person
    offer: DemoOffer
    appeal: float
    code: str = ""


@dataclass
class PlannedClick:
    message: PlannedMessage
    at: datetime
    user_agent: str
    address: str
    method: str = "GET"
    # A person's first tap: the only kind that may convert.
    converts: bool = False
    click_id: str = ""


@dataclass
class PlannedConversion:
    click: PlannedClick
    conversion_id: str
    at: datetime | None
    status: str
    later_status: str | None
    payout: Decimal
    # Names a click id no tracker of ours issued: the worker waits a grace period for
    # such a click to show up before it decides `unknown_click`.
    stray: bool = False


class SimulationPlan:
    """`days` days ending today, for `contacts` people."""

    def __init__(self, *, contacts: int, days: int, seed: int) -> None:
        self.random = random.Random(seed)  # noqa: S311 - a demo, not a secret
        self.contacts = contacts
        self.days = days
        self.now = timezone.now()
        self.zone = ZoneInfo(settings.REPORTS_TIME_ZONE)
        self.today = rollup_today()
        self.start_of_today = datetime.combine(self.today, datetime.min.time(), tzinfo=self.zone)
        self.first_day = self.today - timedelta(days=days - 1)
        # Different on each run, so `--force` adds a second round instead of colliding.
        self.run_tag = secrets.token_hex(4)

    def people(self) -> list[Person]:
        people = []
        for index in range(self.contacts):
            area = AREA_CODES[(index // 10_000) % len(AREA_CODES)]
            has_phone = self.random.random() < 0.85
            has_email = not has_phone or self.random.random() < 0.6
            iphone = self.random.random() < 0.55
            people.append(
                Person(
                    phone=f"+1{area}555{index % 10_000:04d}" if has_phone else None,
                    email=f"demo.contact{index}@example.com" if has_email else None,
                    mobile_agent=UA_IPHONE_SAFARI if iphone else UA_ANDROID_CHROME,
                    desktop_agent=(
                        UA_DESKTOP_CHROME if self.random.random() < 0.7 else UA_MAC_SAFARI
                    ),
                    address=self._address(),
                    previews_links=iphone or self.random.random() < 0.3,
                )
            )
        return people

    def _address(self) -> str:
        block = self.random.choice(ADDRESS_BLOCKS)
        second, third, fourth = (self.random.randint(0, 255) for _ in range(3))
        return f"{block}.{second}.{third}.{max(fourth, 1)}"

    def _sent_at(self, day: date) -> datetime:
        if day == self.today:
            earliest = self.start_of_today
            latest = self.now - timedelta(minutes=2)
            if latest <= earliest:
                return earliest
            seconds = (latest - earliest).total_seconds()
            return earliest + timedelta(seconds=self.random.uniform(0, seconds))
        local = datetime.combine(day, datetime.min.time(), tzinfo=self.zone)
        return local + timedelta(hours=self.random.uniform(8, 20))

    def messages(self, people: Sequence[Person], catalog: Catalog) -> list[PlannedMessage]:
        offers = {offer.key: offer for offer in OFFERS}
        planned: list[PlannedMessage] = []
        for day_index in range(self.days):
            day = self.first_day + timedelta(days=day_index)
            for campaign in CAMPAIGNS:
                for person_index, person in enumerate(people):
                    if self.random.random() >= campaign.daily_reach:
                        continue
                    creative = self.random.choice(campaign.creatives)
                    offer = offers[self.random.choice(campaign.offers)]
                    sent_at = self._sent_at(day)
                    for channel in campaign.channels:
                        address = person.phone if channel == "sms" else person.email
                        if address is None:
                            continue
                        contact = (
                            ContactSpec(phone=person.phone)
                            if channel == "sms"
                            else ContactSpec(email=person.email, phone=person.phone)
                        )
                        planned.append(
                            PlannedMessage(
                                spec=MessageSpec(
                                    contact=contact,
                                    channel=channel,
                                    campaign=campaign.slug,
                                    creative=creative.slug,
                                    offer=catalog.offers[offer.key].pk,
                                    sent_at=sent_at,
                                    external_id=(
                                        f"demo-{self.run_tag}-{day_index}-{campaign.slug}"
                                        f"-{person_index}-{channel}"
                                    ),
                                ),
                                person=person,
                                offer=offer,
                                appeal=creative.appeal,
                            )
                        )
                        # The email of a two-channel campaign goes out a few hours later.
                        sent_at = min(
                            sent_at + timedelta(hours=self.random.uniform(1, 5)),
                            max(sent_at, self.now - timedelta(minutes=1)),
                        )
        return planned

    def clicks(self, messages: Sequence[PlannedMessage]) -> list[PlannedClick]:
        clicks: list[PlannedClick] = []
        for message in messages:
            clicks.extend(self._clicks_of(message))
        latest = self.now - timedelta(seconds=30)
        return [click for click in clicks if click.at <= latest]

    def _clicks_of(self, message: PlannedMessage) -> Iterator[PlannedClick]:
        sent_at = message.spec.sent_at
        person = message.person
        rng = self.random
        if message.spec.channel == "sms":
            if person.previews_links and rng.random() < 0.6:
                agent = (
                    UA_IMESSAGE_PREVIEW
                    if person.mobile_agent == UA_IPHONE_SAFARI
                    else UA_WHATSAPP_PREVIEW
                )
                yield PlannedClick(
                    message, sent_at + timedelta(seconds=rng.uniform(2, 30)), agent, "17.58.0.1"
                )
            tap_rate, delay_minutes, agent = 0.3, 45.0, person.mobile_agent
        else:
            if rng.random() < 0.25:
                # A mail security scanner follows every link, often with HEAD first.
                at = sent_at + timedelta(seconds=rng.uniform(5, 120))
                scanner = rng.choice(UA_BOTS)
                yield PlannedClick(message, at, scanner, "40.94.0.1", method="HEAD")
                yield PlannedClick(message, at + timedelta(seconds=1), scanner, "40.94.0.1")
            tap_rate, delay_minutes = 0.15, 360.0
            agent = person.desktop_agent if rng.random() < 0.6 else person.mobile_agent
        if rng.random() < 0.01:
            yield PlannedClick(
                message, sent_at + timedelta(minutes=rng.uniform(1, 60)), rng.choice(UA_BOTS),
                self._address(),
            )  # fmt: skip
        if rng.random() >= tap_rate * message.appeal:
            return
        at = sent_at + timedelta(minutes=rng.expovariate(1 / delay_minutes))
        yield PlannedClick(message, at, agent, person.address, converts=True)
        if rng.random() < 0.25:
            # Tapped again a few minutes later: a duplicate, counted once.
            yield PlannedClick(message, at + timedelta(minutes=rng.uniform(1, 10)), agent,
                               person.address)  # fmt: skip
        if rng.random() < 0.08:
            # Came back the next day: a new unique click.
            yield PlannedClick(message, at + timedelta(hours=rng.uniform(20, 30)), agent,
                               person.address)  # fmt: skip

    def conversions(self, clicks: Sequence[PlannedClick]) -> list[PlannedConversion]:
        rng = self.random
        conversions: list[PlannedConversion] = []
        for click in clicks:
            if not click.converts or not click.click_id:
                continue
            if rng.random() >= click.message.offer.conversion_rate:
                continue
            conversion = self._conversion(click)
            if conversion is not None:
                conversions.append(conversion)
        # Even a tiny demo shows each offer earning: an offer left without a conversion
        # gets one, soon after its first eligible click, approved.
        converted = {conversion.click.message.offer.key for conversion in conversions}
        for click in clicks:
            offer_key = click.message.offer.key
            certain = (
                self._conversion(click, certain=True)
                if click.converts and click.click_id and offer_key not in converted
                else None
            )
            if certain is not None:
                conversions.append(certain)
                converted.add(offer_key)
        bots = [c for c in clicks if c.click_id and c.user_agent in UA_BOTS]
        for bot_click in bots[: max(1, len(conversions) // 40)]:
            # Fraud: a conversion claimed on a scanner's click earns no credit.
            fraud = self._conversion(bot_click)
            if fraud is not None:
                conversions.append(fraud)
        for _ in range(max(1, len(conversions) // 50)):
            if not clicks:
                break
            # A click id from another tracker: kept, unattributed (`unknown_click`).
            unknown = PlannedClick(rng.choice(clicks).message, self.now, "", "")
            unknown.click_id = f"unknown-{rng.getrandbits(64):016x}"
            stray = self._conversion(unknown, certain=True)
            if stray is not None:
                stray.stray = True
                conversions.append(stray)
        return conversions

    def _conversion(
        self, click: PlannedClick, *, certain: bool = False
    ) -> PlannedConversion | None:
        rng = self.random
        offer = click.message.offer
        if click.at >= self.start_of_today:
            at = None  # today: the network reports it as it happens
        else:
            roll = 0.0 if certain else rng.random()
            if roll < 0.7:
                delay = timedelta(minutes=rng.uniform(3, 120))
            elif roll < 0.93:
                delay = timedelta(days=rng.uniform(1, 4))  # late
            else:
                delay = timedelta(days=rng.uniform(5, 20))  # late, maybe past the window
            at = click.at + delay
            if at > self.now - timedelta(minutes=1):
                if not certain:
                    return None  # it has not happened yet
                at = max(click.at, self.now - timedelta(minutes=1))
        roll = 0.0 if certain else rng.random()
        later: str | None = None
        if roll < 0.73:
            status = "approved"
            if not certain and rng.random() < 0.08:
                later = "reversed"
        elif roll < 0.93:
            status = "pending"
            later = (
                "approved" if rng.random() < 0.6 else ("rejected" if rng.random() < 0.4 else None)
            )
        else:
            status = "rejected"
        payout = (offer.payout * Decimal(str(round(rng.uniform(0.8, 1.2), 2)))).quantize(
            Decimal("0.01")
        )
        return PlannedConversion(
            click=click,
            conversion_id=f"demo-{self.run_tag}-{rng.getrandbits(48):012x}",
            at=at,
            status=status,
            later_status=later,
            payout=payout,
        )

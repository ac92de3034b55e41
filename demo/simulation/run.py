"""A demo that drives the real paths, so the dashboard fills the way production would.

`simulation_run` plays `days` days of sends to `contacts` people, through:

- messages: `message_create_bulk` (the service the API calls);
- clicks of past days: `clicks_import` (the service behind `POST /api/v1/clicks/import/`,
  the real path for history; those clicks are flagged `is_imported`);
- clicks of today: the redirect itself, `GET`/`HEAD /<code>` through Django's test
  `Client` in this process (URL routing, middleware, view, spool), then one pass of the
  drainer (`drain_clicks --once`);
- postbacks: `/postback/<slug>/` through the same `Client`, with each network's token;
- processing: each postback is also processed here, in order, by calling the worker's
  service (`postback_process`) directly. A worker that is running (as in `make run`)
  may take some first; processing is safe to run twice, and status changes (reversals,
  pending ones approved) are sent only once every first postback is decided, so the
  outcome does not depend on who was faster;
- rollups: every simulated day is recomputed (`rollup_recompute_range`).

Behaviour: SMS and email; iMessage and WhatsApp link previews; scanners and scripts
(some with `HEAD`); people on iPhone Safari, Android Chrome and desktop Chrome (Gmail);
duplicate taps within minutes; conversions minutes or days later (some too late for
their offer's window), pending ones approved or rejected later, approved ones
reversed; a few postbacks naming unknown or bot clicks and one malformed one; four
offers with first-click, last-click and cooperative attribution and different windows.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from tqdm import tqdm

from attribution.models import Postback
from attribution.services.processing import postback_process
from demo.simulation.catalog import (
    ADDRESS_BLOCKS,
    AREA_CODES,
    CAMPAIGNS,
    NETWORKS,
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
    simulation_catalog_ensure,
)
from reports.services import rollup_recompute_range, rollup_today
from tracking.services.clicks import ClickImportItem, clicks_import
from tracking.services.contacts import ContactSpec
from tracking.services.messages import MessageSpec, message_create_bulk

logger = logging.getLogger(__name__)

MAX_CONTACTS = 100_000
MAX_DAYS = 90
MESSAGE_BATCH = 2_000
IMPORT_BATCH = 2_000
# How long to wait for a running worker to finish postbacks it took before we could.
WORKER_WAIT_SECONDS = 120.0


@dataclass
class SimulationSummary:
    contacts: int = 0
    messages: int = 0
    imported_clicks: int = 0
    live_requests: int = 0
    postbacks: int = 0
    postbacks_rejected: int = 0
    status_changes: int = 0
    rollup_rows: int = 0
    start: date | None = None
    end: date | None = None

    def __str__(self) -> str:
        return (
            f"{self.contacts} contacts, {self.messages} messages, "
            f"{self.imported_clicks} imported clicks, {self.live_requests} live link requests, "
            f"{self.postbacks} postbacks ({self.status_changes} status changes, "
            f"{self.postbacks_rejected} refused), {self.rollup_rows} rollup rows "
            f"from {self.start} to {self.end}"
        )


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


def simulation_run(
    *, contacts: int, days: int, seed: int = 2026, progress: bool = False
) -> SimulationSummary:
    """Play the demo; see the module docstring for what goes through which path."""
    if not 1 <= contacts <= MAX_CONTACTS:
        raise ValueError(f"contacts must be between 1 and {MAX_CONTACTS}")
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS}")
    return _Simulation(contacts=contacts, days=days, seed=seed, progress=progress).run()


class _Simulation:
    def __init__(self, *, contacts: int, days: int, seed: int, progress: bool) -> None:
        self.random = random.Random(seed)  # noqa: S311 - a demo, not a secret
        self.contacts = contacts
        self.days = days
        self.progress = progress
        self.now = timezone.now()
        self.zone = ZoneInfo(settings.REPORTS_TIME_ZONE)
        self.today = rollup_today()
        self.start_of_today = datetime.combine(self.today, datetime.min.time(), tzinfo=self.zone)
        # Different on each run, so `--force` adds a second round instead of colliding.
        self.run_tag = secrets.token_hex(4)
        self.client = Client(raise_request_exception=True)
        self.host = _allowed_host()
        self.first_day = self.today - timedelta(days=days - 1)
        self.summary = SimulationSummary(contacts=contacts, start=self.first_day, end=self.today)

    def _bar(self, iterable: Iterable[Any], *, description: str, total: int | None = None) -> Any:
        return tqdm(iterable, desc=description, total=total, disable=not self.progress, unit="item")

    def run(self) -> SimulationSummary:
        catalog = simulation_catalog_ensure()
        people = self._people()
        messages = self._send(self._plan_messages(people, catalog))
        clicks = self._plan_clicks(messages)
        self._import_past_clicks([click for click in clicks if click.at < self.start_of_today])
        self._request_today([click for click in clicks if click.at >= self.start_of_today])
        call_command("drain_clicks", "--once")
        conversions = self._plan_conversions(clicks)
        first_ids = self._post_conversions(catalog, conversions, stage="first")
        self._process(first_ids, description="postbacks")
        later_ids = self._post_conversions(catalog, conversions, stage="later")
        self._process(later_ids, description="status changes")
        # Not waited for: the worker decides them once the click grace period is over.
        stray_ids = self._post_conversions(catalog, conversions, stage="stray")
        self._process(stray_ids, description="unknown clicks", wait=False)
        self._recompute()
        logger.info("simulation done: %s", self.summary)
        return self.summary

    # --- people and messages ---------------------------------------------------------

    def _people(self) -> list[Person]:
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

    def _plan_messages(self, people: Sequence[Person], catalog: Catalog) -> list[PlannedMessage]:
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

    def _send(self, planned: list[PlannedMessage]) -> list[PlannedMessage]:
        batches = list(_chunks(planned, MESSAGE_BATCH))
        for batch in self._bar(batches, description="messages", total=len(batches)):
            results = message_create_bulk(items=[item.spec for item in batch])
            for item, result in zip(batch, results, strict=True):
                item.code = result.links[0].code
        self.summary.messages = len(planned)
        return planned

    # --- clicks ----------------------------------------------------------------------

    def _plan_clicks(self, messages: Sequence[PlannedMessage]) -> list[PlannedClick]:
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

    def _import_past_clicks(self, clicks: list[PlannedClick]) -> None:
        clicks.sort(key=lambda click: click.at)
        batches = list(_chunks(clicks, IMPORT_BATCH))
        for batch in self._bar(batches, description="past clicks (import)", total=len(batches)):
            click_ids = clicks_import(
                items=[
                    ClickImportItem(
                        code=click.message.code,
                        occurred_at=click.at,
                        user_agent=click.user_agent,
                        ip=click.address,
                    )
                    for click in batch
                ]
            )
            for click, click_id in zip(batch, click_ids, strict=True):
                click.click_id = click_id
        self.summary.imported_clicks = len(clicks)

    def _request_today(self, clicks: list[PlannedClick]) -> None:
        clicks.sort(key=lambda click: click.at)
        for click in self._bar(clicks, description="today's clicks (redirect)"):
            path = f"/{click.message.code}"
            headers = {
                "HTTP_USER_AGENT": click.user_agent,
                "REMOTE_ADDR": click.address,
                "HTTP_HOST": self.host,
            }
            if click.method == "HEAD":
                response = self.client.head(path, secure=True, **headers)
            else:
                response = self.client.get(path, secure=True, **headers)
            if response.status_code != 302:
                logger.warning("redirect answered %s for a demo link", response.status_code)
                continue
            query = parse_qs(urlsplit(response["Location"]).query)
            click.click_id = query.get("click_id", [""])[0]
            # Now, not the planned time: the redirect stamps the moment it is asked.
            click.at = self.now
        self.summary.live_requests = len(clicks)

    # --- conversions -----------------------------------------------------------------

    def _plan_conversions(self, clicks: Sequence[PlannedClick]) -> list[PlannedConversion]:
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

    def _post_conversions(
        self, catalog: Catalog, conversions: Sequence[PlannedConversion], *, stage: str
    ) -> list[int]:
        work: list[tuple[PlannedConversion, str]]
        if stage == "first":
            work = [(c, c.status) for c in conversions if not c.stray]
        elif stage == "later":
            work = [(c, c.later_status) for c in conversions if c.later_status and not c.stray]
        else:
            work = [(c, c.status) for c in conversions if c.stray]
        postback_ids: list[int] = []
        description = {"first": "postbacks", "later": "status changes"}.get(stage, "strays")
        for conversion, status in self._bar(work, description=f"{description} (intake)"):
            postback_id = self._post(catalog, conversion, status)
            if postback_id is not None:
                postback_ids.append(postback_id)
        if stage == "first":
            postback_ids.extend(self._post_malformed(catalog))
            self.summary.postbacks += len(work) + 1
        else:
            self.summary.postbacks += len(work)
        if stage == "later":
            self.summary.status_changes = len(work)
        return postback_ids

    def _post(self, catalog: Catalog, conversion: PlannedConversion, status: str) -> int | None:
        network_slug = conversion.click.message.offer.network
        network, token = catalog.networks[network_slug]
        style = next(n.style for n in NETWORKS if n.slug == network_slug)
        path = f"/postback/{network.slug}/"
        if style == "query":
            # AdNet's own words: clickid/txid/amount, unix time, "declined"/"chargeback".
            words = {"rejected": "declined", "reversed": "chargeback"}
            fields = {
                "clickid": conversion.click.click_id,
                "txid": conversion.conversion_id,
                "amount": str(conversion.payout),
                "status": words.get(status, status),
                "token": token,
            }
            if conversion.at is not None:
                fields["timestamp"] = str(int(conversion.at.timestamp()))
            response = self.client.get(
                f"{path}?{urlencode(fields)}", secure=True, HTTP_HOST=self.host
            )
        else:
            body: dict[str, Any] = {
                "click_id": conversion.click.click_id,
                "conversion_id": conversion.conversion_id,
                "payout": str(conversion.payout),
                "currency": "USD",
                "status": status,
            }
            if conversion.at is not None:
                body["occurred_at"] = conversion.at.isoformat()
            response = self.client.post(
                path,
                body,
                content_type="application/json",
                secure=True,
                HTTP_HOST=self.host,
                HTTP_X_POSTBACK_TOKEN=token,
            )
        if response.status_code != 200:
            self.summary.postbacks_rejected += 1
            logger.warning("demo postback answered %s", response.status_code)
            return None
        return int(response.json()["postback_id"])

    def _post_malformed(self, catalog: Catalog) -> list[int]:
        """One postback without a click id: answered 400, kept as invalid for the admin."""
        network, token = catalog.networks["demo-adnet"]
        response = self.client.get(
            f"/postback/{network.slug}/?{urlencode({'amount': '3.00', 'token': token})}",
            secure=True,
            HTTP_HOST=self.host,
        )
        if response.status_code != 400:
            logger.warning("malformed demo postback answered %s", response.status_code)
        self.summary.postbacks_rejected += 1
        return []

    def _process(self, postback_ids: list[int], *, description: str, wait: bool = True) -> None:
        for postback_id in self._bar(postback_ids, description=f"{description} (processing)"):
            postback_process(postback_id=postback_id, batch_size=settings.POSTBACK_BATCH_SIZE)
        if not wait:
            return
        deadline = time.monotonic() + WORKER_WAIT_SECONDS
        while Postback.objects.filter(
            pk__in=postback_ids, status=Postback.Status.RECEIVED
        ).exists():
            if time.monotonic() > deadline:
                logger.warning("some demo postbacks are still waiting for a worker")
                return
            time.sleep(0.2)
            for postback_id in Postback.objects.filter(
                pk__in=postback_ids, status=Postback.Status.RECEIVED
            ).values_list("pk", flat=True):
                postback_process(postback_id=postback_id)

    def _recompute(self) -> None:
        start, end = self.first_day, self.today
        total = (end - start).days + 1
        with tqdm(total=total, desc="rollups", unit="day", disable=not self.progress) as bar:

            def advance(day: date) -> None:
                bar.update(1)

            self.summary.rollup_rows = rollup_recompute_range(
                start=start, end=end, on_day_done=advance
            )


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]


def _allowed_host() -> str:
    """A Host header the project accepts, for requests made in this process."""
    for host in settings.ALLOWED_HOSTS:
        host = host.lstrip(".")
        if host and host != "*" and "*" not in host:
            return host
    return "localhost"

"""A demo that drives the real paths, so the dashboard fills the way production would.

`simulation_run` plays `days` days of sends to `contacts` people, as `plan.py` draws
them, through:

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
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from django.conf import settings
from django.core.management import call_command
from django.test import Client
from tqdm import tqdm

from attribution.models import Postback
from attribution.services.processing import postback_process
from demo.simulation.catalog import (
    NETWORKS,
    Catalog,
    simulation_catalog_ensure,
)
from demo.simulation.plan import PlannedClick, PlannedConversion, PlannedMessage, SimulationPlan
from reports.services import rollup_recompute_range
from tracking.services.clicks import ClickImportItem, clicks_import
from tracking.services.messages import message_create_bulk

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
        self.plan = SimulationPlan(contacts=contacts, days=days, seed=seed)
        self.progress = progress
        self.now = self.plan.now
        self.client = Client(raise_request_exception=True)
        self.host = _allowed_host()
        self.summary = SimulationSummary(
            contacts=contacts, start=self.plan.first_day, end=self.plan.today
        )

    def _bar(self, iterable: Iterable[Any], *, description: str, total: int | None = None) -> Any:
        return tqdm(iterable, desc=description, total=total, disable=not self.progress, unit="item")

    def run(self) -> SimulationSummary:
        catalog = simulation_catalog_ensure()
        people = self.plan.people()
        messages = self._send(self.plan.messages(people, catalog))
        clicks = self.plan.clicks(messages)
        start_of_today = self.plan.start_of_today
        self._import_past_clicks([click for click in clicks if click.at < start_of_today])
        self._request_today([click for click in clicks if click.at >= start_of_today])
        call_command("drain_clicks", "--once")
        conversions = self.plan.conversions(clicks)
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

    def _send(self, planned: list[PlannedMessage]) -> list[PlannedMessage]:
        batches = list(_chunks(planned, MESSAGE_BATCH))
        for batch in self._bar(batches, description="messages", total=len(batches)):
            results = message_create_bulk(items=[item.spec for item in batch])
            for item, result in zip(batch, results, strict=True):
                item.code = result.links[0].code
        self.summary.messages = len(planned)
        return planned

    # --- clicks ----------------------------------------------------------------------

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
        start, end = self.plan.first_day, self.plan.today
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

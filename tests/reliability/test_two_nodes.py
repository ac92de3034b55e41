"""Beyond one machine: two web nodes, each with its own spool and drainer, and two workers
on one PostgreSQL and one Redis, under load. Nothing answered is lost or counted twice.

Each node is named by `CLICK_SPOOL_HOST` and has a spool directory no other node reads,
as two hosts would; one worker sits beside node A (its spool is the one it can read), the
other on a node with no web at all.
"""

from __future__ import annotations

import http.client
import itertools
import json
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import cast
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.db.models import Sum
from django.utils import timezone

from attribution.models import Conversion, ConversionEvent, Offer, Postback
from reports.models import DailyRollup
from reports.services import rollup_recompute_day
from tests import processes
from tests.factories import (
    TEST_POSTBACK_TOKEN,
    ContactFactory,
    LinkFactory,
    MessageFactory,
    OfferFactory,
)
from tests.hostile.server import ApiServer
from tests.processes import ManagedProcess, celery_worker
from tracking.models import Click, Contact, Link

BROWSER = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
PEOPLE = 12
CLICKS = 480
# Every fourth click is converted; every fourth of those is sent to both nodes at once.
CONVERTED_EVERY = 4
TWICE_EVERY = 4


def node_environment(name: str, spool_dir: Path) -> dict[str, str]:
    return {"CLICK_SPOOL_HOST": name, "CREDITFLOW_TEST_SPOOL_DIR": str(spool_dir)}


def drainer(name: str, spool_dir: Path) -> ManagedProcess:
    return ManagedProcess(
        [sys.executable, "manage.py", "drain_clicks", "--spool-dir", str(spool_dir)],
        env={**processes.test_environment(), **node_environment(name, spool_dir)},
        ready_text="drain_clicks ready",
    )


@dataclass
class Node:
    name: str
    spool_dir: Path
    web: ApiServer | None = None
    drainer: ManagedProcess | None = None

    def start(self) -> Node:
        self.web = ApiServer(workers=1, env=node_environment(self.name, self.spool_dir)).start()
        self.start_drainer()
        return self

    def start_drainer(self) -> None:
        self.drainer = drainer(self.name, self.spool_dir).start()

    def stop_drainer(self) -> str:
        """SIGTERM, as a deploy stops it; its output, to see what it did with its drain point."""
        assert self.drainer is not None
        process = self.drainer.process
        assert process is not None
        self.drainer.signal(signal.SIGTERM)
        process.wait(timeout=30)
        output = self.drainer.output()
        self.drainer.stop()
        self.drainer = None
        return output

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        assert self.web is not None
        connection = http.client.HTTPConnection("127.0.0.1", self.web.port, timeout=20)
        try:
            connection.request("GET", path, headers={"User-Agent": BROWSER})
            response = connection.getresponse()
            headers = {name.lower(): value for name, value in response.getheaders()}
            return response.status, headers, response.read()
        finally:
            connection.close()

    def stop(self) -> None:
        if self.web is not None:
            self.web.stop()  # first: its spool files are finished, the drainer empties them
        if self.drainer is not None:
            self.drainer.stop()


@dataclass
class Cluster:
    a: Node
    b: Node
    workers: list[ManagedProcess] = field(default_factory=list)


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("nodes")
    running = Cluster(a=Node("node-a", root / "a"), b=Node("node-b", root / "b"))
    try:
        running.a.start()
        running.b.start()
        running.workers = [
            celery_worker(env=node_environment("node-a", running.a.spool_dir)).start(),
            celery_worker(env=node_environment("node-c", root / "c")).start(),
        ]
        yield running
    finally:
        for worker in running.workers:
            worker.stop()
        running.a.stop()
        running.b.stop()


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


def click(node: Node, link: Link) -> tuple[int, str]:
    status, headers, _ = node.get(f"/{link.code}")
    location = headers.get("location", "")
    return status, parse_qs(urlsplit(location).query).get("cid", [""])[0]


Answer = tuple[int, int]  # status, and the postback id it answered (0: none)


def postback(node: Node, to: Offer, **params: str) -> Answer:
    query = urlencode({"token": TEST_POSTBACK_TOKEN, **params})
    status, _, body = node.get(f"/postback/{to.network.slug}/?{query}")
    return status, int(json.loads(body).get("postback_id") or 0) if status == 200 else 0


def to_both_at_once(cluster: Cluster, to: Offer, params: dict[str, str]) -> list[Answer]:
    start = threading.Barrier(2)

    def send(node: Node) -> Answer:
        start.wait(timeout=20)
        return postback(node, to, **params)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(send, [cluster.a, cluster.b]))


def to_one(node: Node, to: Offer, params: dict[str, str]) -> list[Answer]:
    return [postback(node, to, **params)]


def person_with_link(offer: Offer, email: str) -> tuple[Contact, Link]:
    contact = cast(Contact, ContactFactory.create(email=email))
    message = MessageFactory.create(
        offer=offer, contact=contact, channel="sms", sent_at=timezone.now() - timedelta(hours=1)
    )
    return contact, cast(Link, LinkFactory.create(message=message))


def undecided() -> int:
    return Postback.objects.filter(status=Postback.Status.RECEIVED).count()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_nodes_under_load_store_every_click_once_and_decide_every_conversion_once(cluster):
    # given: an offer sent to twelve people, each with a link; one more person never clicks
    offer = cast(Offer, OfferFactory.create(attribution_model="last_click"))
    people = [person_with_link(offer, f"person-{n}@example.com") for n in range(PEOPLE)]
    never_clicked, _ = person_with_link(offer, "nobody@example.com")
    nodes = itertools.cycle([cluster.a, cluster.b])
    plan = [(next(nodes), people[n % PEOPLE][1]) for n in range(CLICKS)]

    # when: clicks through both nodes at once, and postbacks for them as their answers come
    # back (through either node; some to both at once), while both drainers and workers run
    clicks: list[tuple[int, str]] = []
    postbacks: list[Answer] = []
    twice: list[list[Answer]] = []
    with ThreadPoolExecutor(max_workers=16) as click_pool, ThreadPoolExecutor(8) as send_pool:
        sending: list[Future[list[Answer]]] = []
        for number, answer in enumerate(click_pool.map(lambda job: click(*job), plan)):
            clicks.append(answer)
            status, click_id = answer
            if status != 302 or number % CONVERTED_EVERY:
                continue
            params = {"click_id": click_id, "txid": f"T-{number}", "payout": "2.50"}
            if (number // CONVERTED_EVERY) % TWICE_EVERY == 0:
                sending.append(send_pool.submit(to_both_at_once, cluster, offer, params))
            else:
                sending.append(send_pool.submit(to_one, next(nodes), offer, params))
        for future in sending:
            answers = future.result()
            postbacks.extend(answers)
            if len(answers) == 2:
                twice.append(answers)
    # and: three people converted without a click id, named by email; one who never clicked
    by_person = {
        order: postback(node, offer, offer=str(offer.pk), order_id=order, email=str(contact.email))
        for order, node, contact in [
            ("P-0", cluster.a, people[0][0]),
            ("P-1", cluster.b, people[1][0]),
            ("P-2", cluster.a, people[2][0]),
            ("P-none", cluster.b, never_clicked),
        ]
    }
    postbacks.extend(by_person.values())
    handed_out = [click_id for status, click_id in clicks if status == 302]
    wait_until(
        lambda: Click.objects.count() >= len(handed_out), timeout=30, what="every click drained"
    )
    wait_until(lambda: undecided() == 0, timeout=40, what="every postback decided")

    # then: every click answered is stored once
    assert [status for status, _ in clicks] == [302] * CLICKS
    stored = list(Click.objects.values_list("click_id", flat=True))
    assert len(set(handed_out)) == CLICKS
    assert sorted(stored) == sorted(handed_out)

    # and: every postback answered is stored once and decided
    assert [status for status, _ in postbacks] == [200] * len(postbacks)
    postback_ids = [postback_id for _, postback_id in postbacks]
    assert len(set(postback_ids)) == len(postback_ids)
    assert Postback.objects.count() == len(postback_ids)
    assert set(Postback.objects.values_list("status", flat=True)) == {Postback.Status.PROCESSED}

    # and: one conversion per conversion id, of its click's person (last click: their latest
    # click before it earns it), decided once
    converted = {f"T-{n}": handed_out[n] for n in range(0, CLICKS, CONVERTED_EVERY)}
    conversions = Conversion.objects.filter(conversion_id__in=converted)
    assert Counter(conversions.values_list("conversion_id", flat=True)) == dict.fromkeys(
        converted, 1
    )
    person_of_click = dict(Click.objects.values_list("click_id", "contact_id"))
    assert {
        conversion.conversion_id: (conversion.click_id, conversion.attributed, credited.contact_id)
        for conversion in conversions.select_related("credited_click")
        if (credited := conversion.credited_click) is not None
    } == {
        conversion_id: (click_id, True, person_of_click[click_id])
        for conversion_id, click_id in converted.items()
    }
    decisions = Counter(
        ConversionEvent.objects.filter(from_status="").values_list("conversion_id", flat=True)
    )
    assert len(decisions) == Conversion.objects.count()
    assert set(decisions.values()) == {1}

    # and: of a postback sent to both nodes at once, one decides and the other is a duplicate
    for pair in twice:
        reasons = sorted(
            Postback.objects.filter(pk__in=[postback_id for _, postback_id in pair]).values_list(
                "reason", flat=True
            )
        )
        assert reasons[0].startswith("new conversion"), reasons
        assert reasons[1] == "no change (duplicate)", reasons
    assert len(twice) == CLICKS // CONVERTED_EVERY // TWICE_EVERY

    # and: a conversion by person is credited to that person's click, or to none
    for order, contact in [("P-0", people[0][0]), ("P-1", people[1][0]), ("P-2", people[2][0])]:
        conversion = Conversion.objects.select_related("credited_click").get(conversion_id=order)
        assert conversion.attributed, conversion.reason
        assert conversion.contact_id == contact.pk
        assert conversion.credited_click is not None
        assert conversion.credited_click.contact_id == contact.pk
    assert Conversion.objects.get(conversion_id="P-none").reason == "no_click"

    # and: the day's rollups, recomputed, agree with the raw rows
    today = timezone.now().date()
    days = [today - timedelta(days=1), today, today + timedelta(days=1)]  # any report zone
    for day in days:
        rollup_recompute_day(day=day)
    rollups = DailyRollup.objects.filter(day__in=days)
    per_message = {
        row["key"]: row["clicks"]
        for row in rollups.filter(dimension="message").values("key").annotate(clicks=Sum("clicks"))
    }
    raw_per_message = Counter(
        Click.objects.filter(is_bot=False, is_preview=False).values_list("message_id", flat=True)
    )
    assert {key: count for key, count in per_message.items() if count} == raw_per_message
    network = rollups.filter(dimension="network", key=offer.network_id).aggregate(
        conversions=Sum("conversions"), revenue=Sum("revenue")
    )
    counted = Conversion.objects.filter(status__in=["approved", "pending"])
    assert network["conversions"] == counted.count()
    assert network["revenue"] == counted.aggregate(revenue=Sum("payout"))["revenue"]
    assert network["revenue"] >= Decimal("2.50") * len(converted)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_conversion_by_person_waits_for_a_click_still_in_another_nodes_spool(cluster):
    # given: node B's web and drainer have run (its drain point is published), then its
    # drainer stops while the web keeps answering
    offer = cast(Offer, OfferFactory.create(attribution_model="last_click"))
    _, bobs_link = person_with_link(offer, "bob@example.com")
    zoe, zoes_link = person_with_link(offer, "zoe@example.com")
    assert click(cluster.b, bobs_link)[0] == 302
    wait_until(Click.objects.exists, timeout=10, what="Bob's click drained")
    stopped = cluster.b.stop_drainer()
    assert "drain point kept" in stopped, stopped[-2000:]

    # when: Zoe clicks through node B, and the network names her by email at node A
    status, zoes_click = click(cluster.b, zoes_link)
    assert status == 302
    _, postback_id = postback(
        cluster.a, offer, offer=str(offer.pk), order_id="Z-1", email=str(zoe.email)
    )
    time.sleep(5)  # the workers try at once, and again after their 3 s retry

    # then: no worker can read node B's spool, and none decides while her click may be in it
    assert not Click.objects.filter(click_id=zoes_click).exists()
    assert Postback.objects.get(pk=postback_id).status == Postback.Status.RECEIVED
    assert not Conversion.objects.filter(conversion_id="Z-1").exists()

    # when: node B's drainer is back
    cluster.b.start_drainer()
    wait_until(
        lambda: Postback.objects.get(pk=postback_id).status != Postback.Status.RECEIVED,
        timeout=20,
        what="Zoe's conversion decided",
    )

    # then: her click, drained late, earns the conversion
    conversion = Conversion.objects.select_related("credited_click").get(conversion_id="Z-1")
    assert conversion.attributed, conversion.reason
    assert conversion.credited_click is not None
    assert conversion.credited_click.click_id == zoes_click
    assert conversion.contact_id == zoe.pk

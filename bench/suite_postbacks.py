"""Postbacks under load: intake requests/s, and conversions attributed per second by one worker.

1. Intake: `/postback/<slug>/` against a bare Django view answering the same JSON, and
   against a Django view that only commits the raw row (as the intake does) before
   answering: what the contract's "committed before the answer" costs by itself. All
   three in one granian server (production settings, the Procfile's workers and threads),
   `wrk -t2 -c32 -d8s`, in `ROUNDS` rounds whose order alternates, the best round of
   each (this machine's speed drifts within minutes, as in the redirect suite). Every
   intake request stores its raw row and wakes a worker.
2. Worker: 100,000 stored postbacks (with the one wake-up task the intake leaves
   queued for them) against 1,000,000 stored clicks of 100,000 contacts, one Celery
   worker process (prefork, concurrency 1, the production task settings). The rate
   is postbacks processed per second between the first and the last batch commit;
   the wall time from worker start is reported as well. Baseline: the same worker
   with one task per postback, each decided in its own transaction
   (`POSTBACK_BATCH_SIZE=1`, `POSTBACK_COALESCE_WAKEUPS=false`), on 5,000.
3. Intake with a worker beside it: the commit-only view and the intake again, each while
   one Celery worker (as in 2; niced by `WORKER_NICE`, as under `make run`) decides
   postbacks: a backlog of `BESIDE_BACKLOG` stored before each run (so it is busy from
   the first request to the last in both), and then what the run itself stores. Every
   request carries a new `txid` (a wrk script), so each intake postback is a new
   conversion of a stored click. Both views have the same worker beside them; the
   worker's rate in each run is reported too, to show it was busy in both.
   `BESIDE_ROUNDS` rounds, alternating which goes first, the best of each (its worker rate
   with it): with three, the ratio read 0.77 in one full run and 0.84 alone right after.
   The database is vacuumed first: the worker runs of 2 left 105,000 updated rows behind,
   which autovacuum would have cleared long before (it is off on some bench servers).
4. The intake as `make run` runs it: the Procfile's worker (its concurrency) beside the
   server with no backlog, so it decides what the intake stores as it comes, in the
   batches the intake's wake-ups gather; against the bare JSON view of the same server with
   the same worker beside it, `ROUNDS` rounds alternating, the best of each. Every postback
   the intake stored must then be decided, each into one conversion.

Seeding runs in a child process (`python -m bench.suite_postbacks seed-...`) with
`INSERT ... SELECT generate_series` in the dedicated database `creditflow_bench_postbacks`.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.figures import Figure
from bench.server import (
    GranianServer,
    WrkResult,
    bench_database,
    bench_environment,
    django_manage,
    procfile_option,
    python_module,
    run_wrk,
    wrk_best,
)
from bench.sustained import process_cpu_seconds
from harness.processes import ManagedProcess
from harness.services import redis_keys_delete

logger = logging.getLogger("bench")

DATABASE = "creditflow_bench_postbacks"
SETTINGS = "bench.postbacks_settings"
TOKEN = "bench-postback-token-0123456789"  # noqa: S105 (a throwaway bench database)
SLUG = "bench"
CONTACTS = 100_000
CLICKS_PER_LINK = 5  # two links per contact (SMS and email): 1,000,000 clicks
POSTBACKS = 100_000
BASELINE_POSTBACKS = 5_000
CONNECTIONS = 32
DURATION = "8s"
ROUNDS = 3
BESIDE_ROUNDS = 5
# Postbacks stored before each run with a worker beside it: more than one worker decides
# in a run (about 1,300/s alone), so it never runs dry.
BESIDE_BACKLOG = 30_000
# A new conversion id on every request, unique across wrk's threads and runs.
NEW_TXID_SCRIPT = """
local threads = 0
function setup(thread) threads = threads + 1; thread:set("thread_number", threads) end
function init(args) sent = 0 end
function request()
  sent = sent + 1
  return wrk.format(nil, wrk.path .. "&txid=RUN_NAME-" .. thread_number .. "-" .. sent)
end
"""


def _postgres_url(database_url: str) -> str:
    return database_url.replace("postgres://", "postgresql://", 1)


def _measure(server: GranianServer, path: str, *, new_txid_as: str = "") -> WrkResult:
    """Warm up 2 s, then measure; with `new_txid_as`, each request adds a new `txid`."""
    scripts: list[Path] = []

    def args(run: str) -> list[str] | None:
        if not new_txid_as:
            return None
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
            file.write(NEW_TXID_SCRIPT.replace("RUN_NAME", f"{new_txid_as}{run}"))
        scripts.append(Path(file.name))
        return ["-s", file.name]

    try:
        run_wrk(server.url(path), connections=CONNECTIONS, duration="2s", extra_args=args("w"))
        result = run_wrk(
            server.url(path), connections=CONNECTIONS, duration=DURATION, extra_args=args("m")
        )
    finally:
        for script in scripts:
            script.unlink(missing_ok=True)
    logger.info(
        "%s: %.0f req/s, p50 %.2f ms, p99 %.2f ms, non-2xx %d, socket errors %d",
        path.split("?")[0],
        result.requests_per_second,
        result.p50_ms,
        result.p99_ms,
        result.non_2xx_3xx,
        result.socket_errors,
    )
    if result.non_2xx_3xx:
        raise RuntimeError(f"{path} answered something else than 2xx:\n{result.output}")
    return result


def _one(
    connection: psycopg.Connection[Any], sql: str, params: tuple[Any, ...] | None = None
) -> tuple[Any, ...]:
    row = connection.execute(sql, params).fetchone()
    if row is None:
        raise RuntimeError(f"no row from {sql}")
    return row


def _forget_queues(env: dict[str, str]) -> None:
    redis_keys_delete(redis_url=env["REDIS_URL"], prefix=env["REDIS_KEY_PREFIX"])


def _worker(env: dict[str, str], *, concurrency: int = 1) -> ManagedProcess:
    return ManagedProcess(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config.celery_app",
            "worker",
            "--loglevel",
            "WARNING",
            "--concurrency",
            str(concurrency),
            "--without-gossip",
            "--without-mingle",
        ],
        env=env,
        name="bench-worker",
    )


def _postbacks_counted(database_url: str) -> tuple[int, int]:
    """(waiting, decided): stored postbacks still `received`, and the others."""
    with psycopg.connect(_postgres_url(database_url), autocommit=True) as connection:
        waiting, decided = _one(
            connection,
            "SELECT count(*) FILTER (WHERE status = 'received'), "
            "count(*) FILTER (WHERE status <> 'received') FROM attribution_postback",
        )
    return int(waiting), int(decided)


def _decided(database_url: str) -> int:
    return _postbacks_counted(database_url)[1]


def a_person_click_id(database_url: str) -> str:
    """A stored click of a person (not a bot), for postbacks that name one."""
    with psycopg.connect(_postgres_url(database_url), autocommit=True) as connection:
        return str(
            _one(
                connection,
                "SELECT click_id FROM tracking_click WHERE NOT is_bot ORDER BY id LIMIT 1",
            )[0]
        )


def _wait_until_deciding(env: dict[str, str], worker: ManagedProcess, database_url: str) -> None:
    """Wake the worker and wait until it has decided some of the backlog (it may still be
    starting). Woken again every 10 s: on a shared machine another bench run's cleanup may
    delete every `creditflow-bench:` key, queued wake-up included."""
    first = _decided(database_url)
    deadline = time.monotonic() + 300
    woken_at = 0.0
    while _decided(database_url) == first:
        if worker.exited():
            raise RuntimeError(f"worker died:\n{worker.output()[-4000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError("the worker decided nothing of its backlog in 300 s")
        if time.monotonic() - woken_at > 10:
            _forget_queues(env)  # a stale wake-up key would keep the new wake-up off the queue
            python_module(env, "bench.suite_postbacks", "enqueue", "wake")
            woken_at = time.monotonic()
        time.sleep(0.2)


@dataclass(frozen=True)
class BesideRun:
    wrk: WrkResult
    # Postbacks the worker decided per second while wrk ran (its backlog and the run's own).
    worker_rate: float


def beside_paths(click_id: str) -> tuple[tuple[str, str], ...]:
    """(name, path) of the commit-only view and the intake, measured beside a worker.

    The same query: the rows the commit-only view stores are postbacks the worker decides
    like the intake's (they are not woken, the backlog's full batches chain into them)."""
    return (
        ("commit_only", f"/bench/commit-only-postback/{SLUG}/?click_id={click_id}&payout=1"),
        ("intake", f"/postback/{SLUG}/?token={TOKEN}&click_id={click_id}&payout=1"),
    )


def _beside_a_worker(env: dict[str, str], database_url: str) -> dict[str, BesideRun]:
    """The commit-only view and the intake, each with one worker deciding a backlog beside it."""
    click_id = a_person_click_id(database_url)
    runs: dict[str, list[BesideRun]] = {}
    worker = _worker(env)
    with GranianServer(env=env) as server:
        worker.start()
        try:
            for round_number in range(BESIDE_ROUNDS):
                for name, path in _alternated(beside_paths(click_id), round_number):
                    python_module(
                        env,
                        "bench.suite_postbacks",
                        "seed-postbacks",
                        str(BESIDE_BACKLOG),
                        f"{name}{round_number}",
                    )
                    _wait_until_deciding(env, worker, database_url)
                    decided_before, started = _decided(database_url), time.monotonic()
                    result = _measure(server, path, new_txid_as=f"{name}{round_number}-")
                    elapsed = time.monotonic() - started
                    rate = (_decided(database_url) - decided_before) / elapsed
                    if worker.exited():
                        raise RuntimeError(f"worker died:\n{worker.output()[-4000:]}")
                    logger.info("beside %s: the worker decided %.0f postbacks/s", name, rate)
                    runs.setdefault(name, []).append(BesideRun(wrk=result, worker_rate=rate))
        finally:
            worker.stop()
    return {
        name: max(each, key=lambda run: run.wrk.requests_per_second) for name, each in runs.items()
    }


@dataclass(frozen=True)
class AsMakeRun:
    bare: WrkResult
    intake: WrkResult
    # Postbacks the intake stored in these rounds, and how many of them were then decided
    # into a conversion of their own.
    stored: int
    decided: int


def _received(database_url: str) -> int:
    return _postbacks_counted(database_url)[0]


def _until_nothing_received(worker: ManagedProcess, database_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _received(database_url):
        if worker.exited():
            raise RuntimeError(f"worker died:\n{worker.output()[-4000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"postbacks still waiting after {timeout:.0f} s")
        time.sleep(0.2)


def _as_make_run(env: dict[str, str], database_url: str) -> AsMakeRun:
    """The bare JSON view and the intake with the Procfile's worker beside them and no
    backlog: it decides what the intake stores, as under `make run`."""
    url = _postgres_url(database_url)
    paths = (
        ("bare", f"/bench/bare-postback/{SLUG}/"),
        ("intake", dict(beside_paths(a_person_click_id(database_url)))["intake"]),
    )
    runs: dict[str, list[WrkResult]] = {}
    worker = _worker(env, concurrency=procfile_option("worker", "--concurrency"))
    with GranianServer(env=env) as server:
        worker.start()
        try:
            # What the commit-only view stored in 3 is decided first: no backlog.
            if _received(database_url):
                _wait_until_deciding(env, worker, database_url)
                _until_nothing_received(worker, database_url, timeout=900)
            with psycopg.connect(url, autocommit=True) as connection:
                connection.execute("VACUUM ANALYZE")
                last_postback, last_conversion = _one(
                    connection,
                    "SELECT (SELECT coalesce(max(id), 0) FROM attribution_postback), "
                    "(SELECT coalesce(max(id), 0) FROM attribution_conversion)",
                )
            for round_number in range(ROUNDS):
                for name, path in _alternated(paths, round_number):
                    new_txid_as = f"make-run-{round_number}-" if name == "intake" else ""
                    result = _measure(server, path, new_txid_as=new_txid_as)
                    runs.setdefault(name, []).append(result)
            _until_nothing_received(worker, database_url, timeout=120)
        finally:
            worker.stop()
    with psycopg.connect(url, autocommit=True) as connection:
        stored, decided = _one(
            connection,
            "SELECT (SELECT count(*) FROM attribution_postback WHERE id > %s), "
            "(SELECT count(*) FROM attribution_conversion WHERE id > %s)",
            (last_postback, last_conversion),
        )
    logger.info("as make run: %d postbacks stored, %d conversions", stored, decided)
    return AsMakeRun(
        bare=wrk_best(runs["bare"]),
        intake=wrk_best(runs["intake"]),
        stored=int(stored),
        decided=int(decided),
    )


def _alternated(paths: tuple[tuple[str, str], ...], round_number: int) -> list[tuple[str, str]]:
    """The paths in their order in even rounds, reversed in odd ones: neither always runs
    first after a pause, or always last on a machine slowing down."""
    return list(paths if round_number % 2 == 0 else reversed(paths))


def _work_through(
    env: dict[str, str], database_url: str, expected: int, *, concurrency: int = 1
) -> dict[str, float]:
    """Start one worker, wait until `expected` postbacks are processed, stop it."""
    started = time.monotonic()
    worker = _worker(env, concurrency=concurrency).start()
    try:
        with psycopg.connect(_postgres_url(database_url), autocommit=True) as connection:
            deadline = time.monotonic() + 900
            done = 0
            while time.monotonic() < deadline:
                done = _one(
                    connection,
                    "SELECT count(*) FROM attribution_postback WHERE status <> 'received'",
                )[0]
                if done >= expected:
                    break
                if worker.exited():
                    raise RuntimeError(f"worker died:\n{worker.output()[-4000:]}")
                time.sleep(0.2)
            wall = time.monotonic() - started
            if done < expected:
                raise RuntimeError(f"only {done} of {expected} postbacks processed in time")
            # processed_at is when a batch started deciding: the last batch's rows are
            # left out of the count, its time is not in the span.
            first, last, counted, in_last = _one(
                connection,
                """
                SELECT min(processed_at), max(processed_at), count(processed_at),
                       count(*) FILTER (WHERE processed_at = (SELECT max(processed_at)
                                                             FROM attribution_postback))
                FROM attribution_postback WHERE status <> 'received'
                """,
            )
        cpu = process_cpu_seconds(worker.process.pid) if worker.process else float("nan")
    finally:
        worker.stop()
    span = (last - first).total_seconds()
    return {
        "rate": (counted - in_last) / span if span else float("nan"),
        "wall": wall,
        "span": span,
        # The worker's own CPU time (all its processes), far less noisy than wall time on a
        # shared machine.
        "cpu": cpu,
    }


def run() -> list[Figure]:
    with bench_database(DATABASE) as database_url:
        env = bench_environment(database_url=database_url, DJANGO_SETTINGS_MODULE=SETTINGS)
        django_manage(env, "migrate", "--noinput")
        python_module(env, "bench.suite_postbacks", "seed-network")
        intake_path = f"/postback/{SLUG}/?token={TOKEN}&click_id=bench-click-1&txid=T1&payout=2"
        alone = (
            ("bare", f"/bench/bare-postback/{SLUG}/"),
            ("commit_only", f"/bench/commit-only-postback/{SLUG}/?txid=T1"),
            ("intake", intake_path),
        )
        runs: dict[str, list[WrkResult]] = {}
        with GranianServer(env=env) as server:
            for round_number in range(ROUNDS):
                for name, path in _alternated(alone, round_number):
                    runs.setdefault(name, []).append(_measure(server, path))
        bare, commit_only, intake = (wrk_best(runs[name]) for name, _ in alone)
        _forget_queues(env)
        with psycopg.connect(_postgres_url(database_url)) as connection:
            connection.execute("TRUNCATE attribution_postback CASCADE")

        logger.info("seeding %s clicks and %s postbacks", CONTACTS * 2 * CLICKS_PER_LINK, POSTBACKS)
        python_module(env, "bench.suite_postbacks", "seed-clicks", timeout=1800)
        python_module(env, "bench.suite_postbacks", "seed-postbacks", str(POSTBACKS), "main")
        python_module(env, "bench.suite_postbacks", "enqueue", "wake")
        batched = _work_through(env, database_url, POSTBACKS)
        logger.info(
            "batched worker: %.0f postbacks/s (%.1f s between first and last commit, "
            "%.1f s wall from worker start)",
            batched["rate"],
            batched["span"],
            batched["wall"],
        )
        with psycopg.connect(_postgres_url(database_url)) as connection:
            conversions, attributed, events = _one(
                connection,
                "SELECT count(*), count(*) FILTER (WHERE attributed), "
                "(SELECT count(*) FROM attribution_conversionevent) FROM attribution_conversion",
            )
            connection.execute("UPDATE attribution_postback SET processed_at = NULL")
        logger.info("%s conversions, %s attributed, %s events", conversions, attributed, events)
        if conversions != POSTBACKS or events != POSTBACKS:
            raise RuntimeError("each postback must count exactly once")
        _forget_queues(env)

        python_module(
            env, "bench.suite_postbacks", "seed-postbacks", str(BASELINE_POSTBACKS), "baseline"
        )
        one_at_a_time = {**env, "POSTBACK_BATCH_SIZE": "1", "POSTBACK_COALESCE_WAKEUPS": "false"}
        python_module(one_at_a_time, "bench.suite_postbacks", "enqueue", "each", timeout=600)
        one_by_one = _work_through(one_at_a_time, database_url, POSTBACKS + BASELINE_POSTBACKS)
        logger.info("one transaction per postback: %.0f postbacks/s", one_by_one["rate"])
        _forget_queues(env)

        # The runs above left 105,000 updated postback rows behind, dead tuples that
        # autovacuum would have cleared long before (it is off on some bench servers).
        with psycopg.connect(_postgres_url(database_url), autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE")
        beside = _beside_a_worker(env, database_url)
        _forget_queues(env)
        as_make_run = _as_make_run(env, database_url)
        _forget_queues(env)
    intake_beside, commit_only_beside = beside["intake"].wrk, beside["commit_only"].wrk

    return [
        Figure(
            name="postback intake",
            value=intake.requests_per_second,
            unit="req/s",
            baseline=bare.requests_per_second,
            baseline_name="bare Django JSON view",
            target=">= 0.5",
        ),
        Figure(
            name="postback intake against a view that only commits the row",
            value=intake.requests_per_second,
            unit="req/s",
            baseline=commit_only.requests_per_second,
            baseline_name="Django view: one INSERT, then the JSON",
            target=">= 0.8",
        ),
        Figure(
            name="a view that only commits the row",
            value=commit_only.requests_per_second,
            unit="req/s",
            baseline=bare.requests_per_second,
            baseline_name="bare Django JSON view",
        ),
        Figure(
            name="postback intake p99",
            value=intake.p99_ms,
            unit="ms",
            baseline=bare.p99_ms,
            baseline_name="bare Django JSON view",
        ),
        Figure(
            name="postback intake, a worker deciding beside it",
            value=intake_beside.requests_per_second,
            unit="req/s",
            baseline=commit_only_beside.requests_per_second,
            baseline_name="the view that only commits the row, the same worker beside it",
            target=">= 0.8",
        ),
        Figure(
            name="postback intake p99, a worker deciding beside it",
            value=intake_beside.p99_ms,
            unit="ms",
            baseline=commit_only_beside.p99_ms,
            baseline_name="the view that only commits the row, the same worker beside it",
            target="< 50 ms",
        ),
        Figure(
            name="postbacks decided per second by the worker beside the intake",
            value=beside["intake"].worker_rate,
            unit="postbacks/s",
            baseline=beside["commit_only"].worker_rate,
            baseline_name="beside the view that only commits the row",
        ),
        Figure(
            name="postback intake as make run runs it (its worker deciding what it stores)",
            value=as_make_run.intake.requests_per_second,
            unit="req/s",
            baseline=as_make_run.bare.requests_per_second,
            baseline_name="bare Django JSON view, the same worker beside it",
        ),
        Figure(
            name="postback intake p99 as make run runs it",
            value=as_make_run.intake.p99_ms,
            unit="ms",
            baseline=as_make_run.bare.p99_ms,
            baseline_name="bare Django JSON view, the same worker beside it",
        ),
        Figure(
            name="postbacks the intake stored as make run runs it, each decided into a conversion",
            value=as_make_run.decided,
            unit="conversions",
            baseline=as_make_run.stored,
            baseline_name="postbacks stored",
            target="1.00 (each exactly once)",
        ),
        Figure(
            name="conversions attributed per worker process (100k postbacks, 1M clicks)",
            value=batched["rate"],
            unit="conversions/s",
            baseline=one_by_one["rate"],
            baseline_name="one transaction per postback",
            target=">= 1,000/s",
        ),
        Figure(
            name="worker wall time for 100k postbacks, from process start",
            value=batched["wall"],
            unit="s",
        ),
    ]


# --- child-process commands (Django configured with the bench environment) ----------


def _seed_network() -> None:
    from attribution.services.catalog import network_create, offer_create
    from tracking.models import Campaign, Creative

    network, _ = network_create(slug=SLUG, name="Bench network", postback_token=TOKEN)
    offer_create(name="Bench offer", network=network, destination_url="https://example.com/")
    campaign = Campaign.objects.create(slug="bench", name="Bench")
    Creative.objects.create(campaign=campaign, slug="bench", name="Bench")


def _seed_clicks() -> None:
    from django.db import connection

    from attribution.models import Offer
    from tracking.models import Creative

    offer = Offer.objects.get()
    creative = Creative.objects.get()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tracking_contact (phone, created_at) "
            "SELECT '+1200' || lpad(g::text, 7, '0'), now() FROM generate_series(1, %s) g",
            [CONTACTS],
        )
        cursor.execute(
            """
            INSERT INTO tracking_message (contact_id, campaign_id, creative_id, offer_id, channel,
                                          sent_at, created_at)
            SELECT contact.id, %s, %s, %s, channel, now() - interval '10 days', now()
            FROM tracking_contact contact CROSS JOIN (VALUES ('sms'), ('email')) AS c(channel)
            """,
            [creative.campaign_id, creative.pk, offer.pk],
        )
        cursor.execute(
            "INSERT INTO tracking_link (message_id, code, created_at) "
            "SELECT id, 'b' || id, now() FROM tracking_message"
        )
        cursor.execute(
            """
            INSERT INTO tracking_click (click_id, occurred_at, link_id, message_id, contact_id,
                offer_id, channel, user_agent, referrer, ip, method, is_bot, is_preview,
                is_duplicate, is_imported, recorded_at)
            SELECT 'bk-' || link.id || '-' || g, now() - random() * interval '9 days', link.id,
                   message.id, message.contact_id, message.offer_id, message.channel,
                   'Mozilla/5.0', '', NULL, 'GET', g = 5 AND link.id %% 10 = 0, false, false,
                   false, now()
            FROM tracking_link link
            JOIN tracking_message message ON message.id = link.message_id
            CROSS JOIN generate_series(1, %s) g
            """,
            [CLICKS_PER_LINK],
        )
        cursor.execute("ANALYZE")


def _seed_postbacks(count: int, tag: str) -> None:
    from django.db import connection

    from attribution.models import Network

    network = Network.objects.get(slug=SLUG)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO attribution_postback (network_id, received_at, method, query_string, body,
                content_type, headers, source_ip, status, reason, attempts)
            SELECT %s, now(), 'GET',
                   'click_id=' || click_id || '&txid=' || %s || '-' || n || '&payout=1.50',
                   '', '', '{}', '127.0.0.1', 'received', '', 0
            FROM (
                SELECT click_id, row_number() OVER () AS n
                FROM (SELECT DISTINCT ON (contact_id) click_id FROM tracking_click
                      WHERE NOT is_bot ORDER BY contact_id, random()) one_per_contact
                LIMIT %s
            ) named
            """,
            [network.pk, tag, count],
        )
        cursor.execute("ANALYZE attribution_postback")


def _enqueue(mode: str) -> None:
    """What the intake leaves on the queue: one wake-up task ("wake"), or one per postback."""
    from attribution.models import Postback
    from attribution.services.wakeup import postback_wake_worker
    from attribution.tasks import process_postback
    from config.celery_app import app

    ids = list(
        Postback.objects.filter(status=Postback.Status.RECEIVED)
        .order_by("id")
        .values_list("pk", flat=True)
    )
    if mode == "wake":
        # Every later intake would find the wake-up key set and enqueue nothing.
        postback_wake_worker(postback_id=ids[0])
        return
    with app.producer_or_acquire() as producer:
        for postback_id in ids:
            process_postback.apply_async((postback_id,), producer=producer)


def main(argv: list[str]) -> None:
    import django

    django.setup()
    command = argv[0]
    if command == "seed-network":
        _seed_network()
    elif command == "seed-clicks":
        _seed_clicks()
    elif command == "seed-postbacks":
        _seed_postbacks(int(argv[1]), argv[2])
    elif command == "enqueue":
        _enqueue(argv[1])
    else:
        raise SystemExit(f"unknown command {command!r}")
    sys.stdout.write(json.dumps({"done": command}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])

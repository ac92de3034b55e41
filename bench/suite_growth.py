"""Growth: what a stored click costs later. Each figure is taken on the rollups seed
(1,000,000 clicks on one day, 20,000 messages and contacts) and again after 20M clicks of
history (`BENCH_HISTORY_CLICKS`) were added in the twelve months before it:

- the drain rate (`clicks_drain`, in process; best of three drains of 50,000 clicks, each
  on a day of its own) and its CPU per click (the drainer's process and its PostgreSQL
  backend, the least of the three: what the drain cost, whatever else the machine did
  meanwhile), both once the history is loaded: three drains with it attached to the
  clicks table and three with it detached, alternating (`_drains_with_and_without_history`);
- one day's rollup recompute (the fastest of five after a warm-up, and the least CPU time
  of its PostgreSQL backend: the median of three read 433 ms at 1M in one full run and
  607 ms in the next, the same code on the same rows, and the ratio with it 1.27 and 0.90);
- conversions attributed per worker process: 100,000 postbacks naming clicks of the seeded
  day, one Celery worker as in the postbacks suite (`_work_through`);
- the sustained redirect (drainer running, as in the redirect suite) against the bare 302.

`BENCH_SMOKE=1` runs every step at small sizes. Runs on its own database
(`creditflow_bench_growth`). Loading the history takes minutes: with `BENCH_GROWTH_KEEP=1`
the database is kept after the run, and the next run with it set measures the figures with
history again on it (those taken before the history are read back from the database).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.figures import Figure
from bench.server import (
    GranianServer,
    bench_database_name,
    bench_environment,
    bench_redis_prefix,
    django_manage,
    kept_state,
    kept_state_save,
    python_module,
    wrk_best,
)

logger = logging.getLogger("bench.growth")

DATABASE = "creditflow_bench_growth"
SMOKE = os.environ.get("BENCH_SMOKE") == "1"
KEEP = os.environ.get("BENCH_GROWTH_KEEP") == "1"
HISTORY_CLICKS = int(os.environ.get("BENCH_HISTORY_CLICKS", 120_000 if SMOKE else 20_000_000))
DRAIN_CLICKS = 5_000 if SMOKE else 50_000
DRAIN_ROUNDS = 1 if SMOKE else 3
# Days after the seeded day (the 10th) a drain may take, all in its month: 4 to 19.
DRAIN_DAYS = 16
RECOMPUTE_ROUNDS = 2 if SMOKE else 5
POSTBACKS = 5_000 if SMOKE else 100_000
NAN = float("nan")
# The redirect's own link, on the first seeded message: its clicks are counted apart.
REDIRECT_CODE = "growthRedirect2"
# The attribution rounds' postbacks and conversions, removed before each round.
CONVERSION_PREFIX = "growth-"
# Where a kept database holds the figures measured before its history was loaded.
STATE_TABLE = "bench_growth_state"


def run() -> list[Figure]:
    from bench.suite_rollups import CLICKS

    name = bench_database_name(DATABASE)
    admin_url, database_url = _urls(name)
    state = kept_state(database_url, STATE_TABLE) if KEEP else None
    if state is None or state.get("history_clicks") != HISTORY_CLICKS:
        state = {}
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    else:
        logger.info("reusing the kept database %s", name)
    env = bench_environment(database_url=database_url)
    try:
        if not state:
            django_manage(env, "migrate", "--noinput")
            state.update(_child(env, "seed", timeout=1800))
            state.update(_child(env, "small"))
            state.update(_attribution(env, database_url, "small"))
            state.update(_redirect(env, database_url, "small"))
            state.update(_child(env, "load", timeout=3600))
            state["history_clicks"] = HISTORY_CLICKS
            kept_state_save(database_url, STATE_TABLE, state)
        state.update(_child(env, "large", str(state.get("runs", 0))))
        state.update(_attribution(env, database_url, "large"))
        state.update(_redirect(env, database_url, "large"))
        state["runs"] = state.get("runs", 0) + 1
        kept_state_save(database_url, STATE_TABLE, state)
    finally:
        if not KEEP:
            # The seeded database takes several GB: not left behind after the run.
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    logger.info("growth measured %s", state)
    history = f"{HISTORY_CLICKS / 1e6:,.1f}M"
    small = f"{CLICKS / 1e6:,.2f}M"
    return [
        Figure(
            name=f"growth: drain rate with {history} more clicks stored",
            value=state.get("drain_large_per_s", NAN),
            unit="clicks/s",
            baseline=state.get("drain_small_per_s", NAN),
            baseline_name=f"same drains, the history detached ({small} stored), alternating",
            target="ratio >= 0.9",
        ),
        Figure(
            name=f"growth: drain CPU per click (drainer + its PostgreSQL backend) with "
            f"{history} more clicks stored",
            value=state.get("drain_large_cpu_us", NAN),
            unit="µs",
            baseline=state.get("drain_small_cpu_us", NAN),
            baseline_name=f"same drains, the history detached ({small} stored), alternating",
            target="ratio <= 1.11 (a rate ratio of 0.9)",
        ),
        Figure(
            name=f"growth: recompute 1 day with {history} more clicks stored",
            value=state.get("recompute_large_ms", NAN),
            unit="ms",
            baseline=state.get("recompute_small_ms", NAN),
            baseline_name=f"same day at {small} stored",
            target="ratio <= 1.2",
        ),
        Figure(
            name=f"growth: recompute 1 day, its PostgreSQL backend's CPU, with {history} more"
            " clicks stored",
            value=state.get("recompute_large_cpu_ms", NAN),
            unit="ms",
            baseline=state.get("recompute_small_cpu_ms", NAN),
            baseline_name=f"same day at {small} stored",
        ),
        Figure(
            name=f"growth: conversions attributed per worker process, {POSTBACKS:,} postbacks, "
            f"{history} more clicks stored",
            value=state.get("attribution_large_per_s", NAN),
            unit="conversions/s",
            baseline=state.get("attribution_small_per_s", NAN),
            baseline_name=f"same postbacks at {small} stored",
            target=">= 1,000/s",
        ),
        Figure(
            name=f"growth: redirect sustained (drainer running), {history} more clicks stored",
            value=state.get("redirect_large_per_s", NAN),
            unit="req/s",
            baseline=state.get("redirect_large_bare_per_s", NAN),
            baseline_name="bare 302, same round",
        ),
        Figure(
            name=f"growth: redirect sustained (drainer running), {small} stored",
            value=state.get("redirect_small_per_s", NAN),
            unit="req/s",
            baseline=state.get("redirect_small_bare_per_s", NAN),
            baseline_name="bare 302, same round",
        ),
    ]


def _urls(name: str) -> tuple[str, str]:
    from bench.server import _database_url_with_name, _services

    server_url = _services().get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/creditflow")
    admin_url = _database_url_with_name(server_url, "postgres")
    return _postgres_url(admin_url), _database_url_with_name(server_url, name)


def _postgres_url(database_url: str) -> str:
    return database_url.replace("postgres://", "postgresql://", 1)


def _child(env: dict[str, str], *args: str, timeout: float = 900) -> dict[str, Any]:
    """A step in a child process with Django set up on the bench database."""
    output = python_module(
        {**env, "DJANGO_SETTINGS_MODULE": "config.settings.local", "DJANGO_DEBUG": "0"},
        "bench.suite_growth",
        *args,
        timeout=timeout,
    )
    measured: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    logger.info("growth %s: %s", args[0], measured)
    return measured


def _attribution(env: dict[str, str], database_url: str, size: str) -> dict[str, float]:
    """One worker process through `POSTBACKS` postbacks, as the postbacks suite measures it."""
    from bench.suite_postbacks import _forget_queues, _work_through

    # Keys of its own: a wake-up key or queue left by an earlier round would hold this one up.
    env = {**env, "REDIS_KEY_PREFIX": bench_redis_prefix()}
    _child(env, "postbacks")
    python_module(env, "bench.suite_postbacks", "enqueue", "wake")
    measured = _work_through(env, database_url, POSTBACKS)
    _forget_queues(env)
    logger.info("growth attribution %s: %s", size, measured)
    return {f"attribution_{size}_per_s": measured["rate"]}


def _redirect(env: dict[str, str], database_url: str, size: str) -> dict[str, float]:
    """The redirect suite's sustained rounds (drainer running) against its own link."""
    from bench.suite_redirect import NO_ROTATION, _sustained

    link_id = int(_child(env, "redirect-link")["link_id"])
    spool = Path(tempfile.mkdtemp(prefix="bench-growth-spool-"))
    server_env = {**env, "CLICK_SPOOL_DIR": str(spool), "CLICK_SPOOL_ROTATE_BYTES": NO_ROTATION}
    try:
        with GranianServer(env=server_env) as server:
            sustained = _sustained(
                server,
                server_env,
                spool,
                _postgres_url(database_url),
                REDIRECT_CODE,
                link_id,
            )
    finally:
        shutil.rmtree(spool, ignore_errors=True)
        _child(env, "redirect-link-remove")
    held, bare = wrk_best(sustained.runs), wrk_best(sustained.bare_runs)
    logger.info(
        "growth redirect %s: sustained %.0f req/s (p99 %.1f ms), bare %.0f req/s",
        size,
        held.requests_per_second,
        held.p99_ms,
        bare.requests_per_second,
    )
    return {
        f"redirect_{size}_per_s": held.requests_per_second,
        f"redirect_{size}_bare_per_s": bare.requests_per_second,
    }


# --- steps in the child process ------------------------------------------------------


def _step_seed() -> dict[str, Any]:
    from bench.suite_rollups import CLICKS, _seed

    started = time.perf_counter()
    _seed()
    logger.info("seeded %s clicks in %.1fs", CLICKS, time.perf_counter() - started)
    return {}


def _step_measure(size: str, run: int) -> dict[str, Any]:
    from django.db import connection

    # The step before wrote the seed or 20M clicks of history: measured while the server
    # still writes that back (and every page is due a full-page image in the WAL at the
    # next checkpoint, whenever it falls), the figures timed the load. Each size starts
    # from a checkpoint.
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    recompute_ms, recompute_cpu_ms = _recompute_measure()
    measured: dict[str, Any] = {
        f"recompute_{size}_ms": recompute_ms,
        f"recompute_{size}_cpu_ms": recompute_cpu_ms,
    }
    if size == "large":
        measured.update(_drains_with_and_without_history(run))
    return measured


def _drains_with_and_without_history(run: int) -> dict[str, float]:
    """The drain, DRAIN_ROUNDS times with the history attached to the clicks table and as
    many times with it detached (`history_detached`), alternating which goes first.

    Both in the same minutes on the same month's partition. That partition grows by every
    drain (50,000 clicks), and a drain costs more the larger it is, history or not (its
    indexes outgrow the server's buffers). Measured before the history was loaded and
    again after it, as this suite did until 2026-12-07, the drains after faced a partition
    three drains larger and read 1.01-1.18 times the CPU per click of those before. On the
    kept database after such a run (the partition at 1.4-1.8M clicks) the drain cost
    52-64 µs a click with the history attached and 56-62 detached, alternating.
    """
    from bench.history import DrainMeasured, drain_measure, history_detached
    from bench.suite_rollups import DAY

    # Warm-up: the first batch of a process compiles the flag rules and fills its caches.
    drain_measure(clicks=min(DRAIN_CLICKS, 1000), day=DAY + timedelta(days=3), seed=3)
    drains: dict[str, list[DrainMeasured]] = {"small": [], "large": []}
    for number in range(DRAIN_ROUNDS):
        order = ("small", "large") if (number + run) % 2 == 0 else ("large", "small")
        for which in order:
            # Each drain a day of its own (the duplicate check sees no earlier drain's
            # clicks), within the seeded day's month (a kept database's later runs wrap).
            drain = 2 * DRAIN_ROUNDS * run + 2 * number + (which == "large")
            day = DAY + timedelta(days=4 + drain % DRAIN_DAYS)
            with history_detached(before=DAY) if which == "small" else nullcontext():
                drains[which].append(drain_measure(clicks=DRAIN_CLICKS, day=day, seed=drain))
    measured: dict[str, float] = {}
    for which, measures in drains.items():
        logger.info(
            "growth drain %s: %s clicks/s, CPU per click (drainer + backend) %s us",
            "with the history" if which == "large" else "without it",
            [round(measure.per_second) for measure in measures],
            [f"{m.drainer_cpu_us:.1f} + {m.backend_cpu_us:.1f}" for m in measures],
        )
        # The best of the rounds counts, as elsewhere in the bench: a burst of other work
        # on the machine during one drain says nothing about the table. The CPU per click
        # (the least of the rounds) is that burst's reading: it moves with the drain's work.
        measured[f"drain_{which}_per_s"] = max(measure.per_second for measure in measures)
        measured[f"drain_{which}_cpu_us"] = min(measure.cpu_us for measure in measures)
    return measured


def _recompute_measure() -> tuple[float, float]:
    """One day's recompute, RECOMPUTE_ROUNDS times after a warm-up: the least wall time and
    the least CPU time of this process's PostgreSQL backend, in milliseconds. The work is the
    same every round (nothing changed in between); a slower round is the machine's."""
    import psutil
    from django.db import connection

    from bench.suite_rollups import DAY
    from reports.services import rollup_recompute_day

    rollup_recompute_day(day=DAY)
    backend = psutil.Process(connection.connection.info.backend_pid)
    walls, cpus = [], []
    for _ in range(RECOMPUTE_ROUNDS):
        cpu_before, started = sum(backend.cpu_times()[:2]), time.perf_counter()
        rollup_recompute_day(day=DAY)
        walls.append((time.perf_counter() - started) * 1000)
        cpus.append((sum(backend.cpu_times()[:2]) - cpu_before) * 1000)
    logger.info(
        "recompute: %s ms, backend CPU %s ms",
        [round(wall) for wall in walls],
        [round(cpu) for cpu in cpus],
    )
    return min(walls), min(cpus)


def _step_load() -> dict[str, Any]:
    from bench.history import history_load
    from bench.suite_rollups import DAY

    started = time.perf_counter()
    history_load(clicks=HISTORY_CLICKS, before=DAY)
    seconds = time.perf_counter() - started
    logger.info("loaded %s clicks of history in %.1fs", HISTORY_CLICKS, seconds)
    return {"history_load_s": seconds}


def _step_postbacks() -> dict[str, Any]:
    """`POSTBACKS` stored postbacks, each naming a different human click of the seeded day,
    received the day after it; the previous round's postbacks and conversions removed."""
    from django.db import connection, transaction

    from attribution.models import Network
    from bench.suite_rollups import CLICKS, DAY

    network = Network.objects.get(slug="bench")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM attribution_conversionevent WHERE conversion_id IN "
            "(SELECT id FROM attribution_conversion WHERE conversion_id LIKE %s)",
            [CONVERSION_PREFIX + "%"],
        )
        cursor.execute(
            "DELETE FROM attribution_conversion WHERE conversion_id LIKE %s",
            [CONVERSION_PREFIX + "%"],
        )
        cursor.execute("DELETE FROM attribution_postback")
        # The seed's click ids are `bench-click-<n>`, n = 1..CLICKS; every 20th is a bot.
        cursor.execute(
            """
            INSERT INTO attribution_postback (network_id, received_at, method, query_string,
                body, content_type, headers, source_ip, status, reason, attempts)
            SELECT %(network)s, %(received)s::timestamptz + n * interval '1 ms', 'GET',
                   'click_id=bench-click-' || lpad(c::text, 10, '0') || '&txid='
                   || %(prefix)s || n || '&payout=1.50',
                   '', '', '{}', '127.0.0.1', 'received', '', 0
            FROM generate_series(1, %(count)s) AS n,
                 LATERAL (SELECT 1 + (n * 7919) %% %(clicks)s AS c) AS named
            WHERE c %% 20 <> 0
            """,
            {
                "network": network.pk,
                "received": f"{(DAY + timedelta(days=1)).isoformat()} 00:00:00+00",
                "prefix": CONVERSION_PREFIX,
                "count": POSTBACKS * 20 // 19 + 20,
                "clicks": CLICKS,
            },
        )
        cursor.execute(
            "DELETE FROM attribution_postback WHERE id > "
            "(SELECT min(id) + %s - 1 FROM attribution_postback)",
            [POSTBACKS],
        )
        cursor.execute("ANALYZE attribution_postback")
        cursor.execute("SELECT count(*) FROM attribution_postback")
        count = cursor.fetchone()[0]
    if count != POSTBACKS:
        raise RuntimeError(f"seeded {count} postbacks, not {POSTBACKS}")
    return {}


def _step_redirect_link(*, remove: bool) -> dict[str, Any]:
    """The redirect's link exists only while it is measured: the history load and the
    drain spread their clicks over every message's links."""
    from django.db import connection

    from tracking.models import Link, Message

    if remove:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM tracking_click WHERE link_id IN "
                "(SELECT id FROM tracking_link WHERE code = %s)",
                [REDIRECT_CODE],
            )
            cursor.execute("DELETE FROM tracking_link WHERE code = %s", [REDIRECT_CODE])
        return {}
    link, _ = Link.objects.get_or_create(
        code=REDIRECT_CODE, defaults={"message": Message.objects.earliest("pk")}
    )
    return {"link_id": link.pk}


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import django

    django.setup()
    step = argv[0]
    if step == "seed":
        measured = _step_seed()
    elif step == "small":
        measured = _step_measure("small", 0)
    elif step == "large":
        measured = _step_measure("large", int(argv[1]) + 1)
    elif step == "load":
        measured = _step_load()
    elif step == "postbacks":
        measured = _step_postbacks()
    elif step in ("redirect-link", "redirect-link-remove"):
        measured = _step_redirect_link(remove=step.endswith("-remove"))
    else:
        raise SystemExit(f"unknown step {step!r}")
    sys.stdout.write(json.dumps(measured) + "\n")


if __name__ == "__main__":
    if sys.argv[1:]:
        main(sys.argv[1:])
    else:
        from bench.figures import markdown_table, write_results

        figures = run()
        sys.stdout.write(markdown_table(figures) + "\n")
        write_results(figures)

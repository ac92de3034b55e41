"""The redirect under load, against a bare Django 302 and a naive insert-per-request redirect.

All three run in one granian server (production settings, the Procfile's workers and
threads) on one bench database, measured with `wrk -t2 -c32 -d8s`. Two figures for ours:
burst (nothing drains the spool while wrk runs) and sustained (a `drain_clicks` process runs
beside the server, as `make run` has it; each round's clicks must be stored within 2 s of the
redirect, probed by clicks of our own, and the drainer's plus PostgreSQL's CPU time per
stored click is measured over the round). Each is compared with the bare rounds that
alternated with its own (the best of each); the sustained one also with the best bare round
of the whole suite. After the run every click that got a 302 must be
in the table exactly once. `BENCH_SMOKE=1`: one short round of each, to check the suite end
to end.

Then bulk message + link creation (10,000 messages through `message_create_bulk`)
against a raw COPY of the same rows.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.figures import Figure
from bench.server import (
    GranianServer,
    WrkResult,
    bench_database,
    bench_environment,
    django_manage,
    python_module,
    run_wrk,
    wrk_best,
)
from bench.sustained import (
    DatabaseBackendsCpu,
    Drainer,
    VisibilityProbe,
    postgres_cpu_seconds,
    postgres_cpu_times,
    stored_clicks,
    wait_until_drained,
)

logger = logging.getLogger("bench")

SMOKE = os.environ.get("BENCH_SMOKE") == "1"
CONNECTIONS = 4 if SMOKE else 32
DURATION = "2s" if SMOKE else "8s"
WARM_UP = "1s" if SMOKE else "2s"
ROUNDS = 1 if SMOKE else 3
# The sustained pairs move most with other work on the machine (the drainer and PostgreSQL
# share its two cores with the server): with three, a full run read 0.72 where the rounds
# of the growth suite minutes later read 0.78 and 0.80.
SUSTAINED_ROUNDS = 1 if SMOKE else 5
# No spool file rotates during the run: the spooled lines are counted from the files.
NO_ROTATION = str(1 << 40)
# wrk sends no User-Agent, and a click without one is a bot: every wrk request says it is
# Safari on an iPhone, so the redirect spools (and the drainer stores) a person's click.
MOBILE_USER_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
WRK_HEADERS = ["-H", f"User-Agent: {MOBILE_USER_AGENT}"]


def _measure(server: GranianServer, path: str, *, errors_allowed: bool = False) -> WrkResult:
    measured = run_wrk(
        server.url(path), connections=CONNECTIONS, duration=DURATION, extra_args=WRK_HEADERS
    )
    logger.info(
        "%s: %.0f req/s, p50 %.2f ms, p99 %.2f ms, non-3xx %d, socket errors %d",
        path,
        measured.requests_per_second,
        measured.p50_ms,
        measured.p99_ms,
        measured.non_2xx_3xx,
        measured.socket_errors,
    )
    if measured.non_2xx_3xx and not errors_allowed:
        raise RuntimeError(f"{path} answered something else than 3xx:\n{measured.output}")
    return measured


def _spooled_lines(directory: Path) -> int:
    return sum(path.read_bytes().count(b"\n") for path in directory.glob("clicks-*.log"))


def _postgres_url(database_url: str) -> str:
    return database_url.replace("postgres://", "postgresql://", 1)


@dataclass
class Sustained:
    runs: list[WrkResult] = field(default_factory=list)
    bare_runs: list[WrkResult] = field(default_factory=list)
    visible_after: list[float] = field(default_factory=list)
    probe_requests: int = 0
    stored: int = 0
    drainer_cpu: float = 0.0
    postgres_cpu: float = 0.0
    database_cpu: float = 0.0


def _sustained(
    server: GranianServer,
    env: dict[str, str],
    spool: Path,
    database_url: str,
    code: str,
    link_id: int,
) -> Sustained:
    """Rounds of bare and ours with the drainer running; CPU per stored click over each
    round of ours, from before wrk starts until every click of the round is stored."""
    result = Sustained()
    drainer = Drainer(env, spool)
    try:
        # The burst rounds' backlog goes in first, outside the measured rounds.
        wait_until_drained(database_url, spool, timeout=900)
        for _ in range(SUSTAINED_ROUNDS):
            result.bare_runs.append(_measure(server, "/bench/bare"))
            stored_before = stored_clicks(database_url, link_id)
            drainer_before, postgres_before = drainer.cpu_seconds(), postgres_cpu_times()
            database = DatabaseBackendsCpu(database_url).start()
            probe = VisibilityProbe(
                host="127.0.0.1", port=server.port, code=code, database_url=database_url
            ).start()
            try:
                result.runs.append(_measure(server, f"/{code}"))
            finally:
                probe.stop()
            wait_until_drained(database_url, spool, timeout=300)
            result.drainer_cpu += drainer.cpu_seconds() - drainer_before
            result.postgres_cpu += postgres_cpu_seconds(postgres_before)
            result.database_cpu += database.stop()
            result.stored += stored_clicks(database_url, link_id) - stored_before
            result.visible_after.extend(probe.delays)
            result.probe_requests += probe.requests
    finally:
        drainer.stop()
    return result


def run() -> list[Figure]:
    # Other work on the machine moves every figure; the ratios are what compare.
    load_before = os.getloadavg()[0]
    spool = Path(tempfile.mkdtemp(prefix="bench-click-spool-"))
    bulk = None
    try:
        with bench_database() as database_url:
            env = bench_environment(
                database_url=database_url,
                CLICK_SPOOL_DIR=str(spool),
                CLICK_SPOOL_ROTATE_BYTES=NO_ROTATION,
            )
            django_manage(env, "migrate", "--noinput")
            seed = json.loads(python_module(env, "bench.apps.seed"))
            code, link_id, naive_code = seed["code"], seed["link_id"], seed["naive_code"]
            postgres_url = _postgres_url(database_url)
            with GranianServer(env=env) as server:
                for path in ("/bench/bare", f"/bench/naive/{naive_code}"):
                    run_wrk(
                        server.url(path),
                        connections=CONNECTIONS,
                        duration=WARM_UP,
                        extra_args=WRK_HEADERS,
                    )
                warm_up_302s = run_wrk(
                    server.url(f"/{code}"),
                    connections=CONNECTIONS,
                    duration=WARM_UP,
                    extra_args=WRK_HEADERS,
                ).requests
                # Bare and ours alternate, best of each: other work on the machine drifts.
                bare_runs, ours_runs = [], []
                for _ in range(ROUNDS):
                    bare_runs.append(_measure(server, "/bench/bare"))
                    ours_runs.append(_measure(server, f"/{code}"))
                naive = _measure(server, f"/bench/naive/{naive_code}", errors_allowed=True)
                sustained = _sustained(server, env, spool, postgres_url, code, link_id)
                # Each figure of ours against the bare rounds that alternated with it: this
                # machine's speed drifts over the minutes between the burst and the sustained
                # rounds (in one full run the bare 302 fell from 15.1k to 10.5k req/s). The
                # strictest reading, against the best bare of the whole suite, is shown too.
                bare = wrk_best(bare_runs)
                bare_sustained = wrk_best(sustained.bare_runs)
                bare_any = wrk_best(bare_runs + sustained.bare_runs)
                ours = wrk_best(ours_runs)
                held = wrk_best(sustained.runs)
            # The server is gone: its spool files are finished and can be drained to the end.
            spooled = _spooled_lines(spool)
            django_manage(env, "drain_clicks", "--once", "--spool-dir", str(spool))
            with psycopg.connect(postgres_url) as connection:
                stored, distinct = connection.execute(
                    "SELECT count(*), count(DISTINCT click_id) FROM tracking_click"
                    " WHERE link_id = %s",
                    [link_id],
                ).fetchone() or (0, 0)
            redirected = (
                warm_up_302s
                + sum(run.requests for run in ours_runs + sustained.runs)
                + sustained.probe_requests
            )
            logger.info(
                "clicks: %d answered 302 (wrk and probes), %d spooled, %d stored, %d distinct",
                redirected,
                spooled,
                stored,
                distinct,
            )
            # wrk stops with up to one request per connection in flight: those were
            # answered (and recorded) but not counted by wrk.
            if not (
                stored == distinct == spooled
                and redirected
                <= stored
                <= redirected + (ROUNDS + SUSTAINED_ROUNDS + 1) * CONNECTIONS
            ):
                raise RuntimeError(
                    f"clicks lost or repeated: {redirected} redirects seen by wrk, "
                    f"{spooled} spooled, {stored} stored, {distinct} distinct"
                )
            if not SMOKE:
                bulk = _bulk_messages(env)
    finally:
        shutil.rmtree(spool, ignore_errors=True)

    per_click = 1e6 / max(sustained.stored, 1)
    figures = [
        Figure("redirect: bare Django 302", bare.requests_per_second, "req/s"),
        Figure("redirect: bare Django 302 p99", bare.p99_ms, "ms"),
        Figure(
            "redirect: naive ORM insert",
            naive.requests_per_second,
            "req/s",
            baseline=bare.requests_per_second,
            baseline_name="bare 302",
        ),
        Figure("redirect: naive ORM insert p99", naive.p99_ms, "ms"),
        Figure("redirect: naive ORM insert non-3xx answers", float(naive.non_2xx_3xx), "responses"),
        Figure(
            "redirect: ours",
            ours.requests_per_second,
            "req/s",
            baseline=bare.requests_per_second,
            baseline_name="bare 302",
            target=">= 0.6",
        ),
        Figure("redirect: ours p50", ours.p50_ms, "ms"),
        Figure("redirect: ours p99", ours.p99_ms, "ms", target="< 25 ms at 32 connections"),
        Figure(
            "redirect: sustained, drainer running",
            held.requests_per_second,
            "req/s",
            baseline=bare_sustained.requests_per_second,
            baseline_name="bare 302, rounds alternating with these",
            target=">= 0.75",
        ),
        Figure(
            "redirect: sustained, against the best bare 302 of the whole suite",
            held.requests_per_second,
            "req/s",
            baseline=bare_any.requests_per_second,
            baseline_name="bare 302, best round of the suite",
        ),
        Figure(
            "redirect: bare Django 302, sustained phase",
            bare_sustained.requests_per_second,
            "req/s",
        ),
        Figure("redirect: sustained p50", held.p50_ms, "ms"),
        Figure("redirect: sustained p99", held.p99_ms, "ms", target="< 25 ms at 32 connections"),
        Figure(
            "redirect: sustained, slowest probe click visible after",
            max(sustained.visible_after, default=float("nan")),
            "s",
            target="< 2 s",
        ),
        Figure(
            "stored click: drainer + PostgreSQL CPU per click (sustained)",
            (sustained.drainer_cpu + sustained.postgres_cpu) * per_click,
            "µs",
            target="<= 60 µs",
        ),
        Figure("stored click: drainer CPU per click", sustained.drainer_cpu * per_click, "µs"),
        Figure(
            "stored click: PostgreSQL CPU per click (every server process)",
            sustained.postgres_cpu * per_click,
            "µs",
        ),
        Figure(
            "stored click: PostgreSQL CPU per click (backends of the bench database)",
            sustained.database_cpu * per_click,
            "µs",
        ),
        Figure(
            "redirect: clicks stored",
            float(stored),
            "clicks",
            baseline=float(spooled),
            baseline_name="clicks spooled",
            target="1.00 (each exactly once)",
        ),
        Figure("redirect: 302s counted by wrk", float(redirected), "responses"),
        Figure("machine load average before the redirect runs", load_before, "runnable"),
    ]
    if bulk is not None:
        figures.append(
            Figure(
                "bulk messages+links: message_create_bulk",
                bulk["service_rows_per_second"],
                "messages/s",
                baseline=bulk["copy_rows_per_second"],
                baseline_name="raw COPY",
                target=">= 0.5",
            )
        )
    return figures


def _bulk_messages(env: dict[str, str]) -> dict[str, float] | None:
    try:
        output = python_module(env, "bench.apps.bulk_messages", timeout=900)
    except RuntimeError:
        logger.exception("bulk message benchmark failed")
        return None
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result

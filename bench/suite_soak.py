"""Soak: minutes of redirects at half the measured maximum rate, with postbacks, a worker,
beat and the drainer running, on the private stack of `bench.faults`.

The rate is held by a wrk Lua script that waits between requests on each connection
(wrk itself has no rate option). Figures: the rate held against the maximum measured
first, p99, answers other than 302, clicks or conversions lost, and the growth of the
resident memory of every process of the stack between the start and the end.
`SOAK_SECONDS` (default 180) sets the length.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

import psutil

from bench.faults import (
    Stack,
    Tally,
    click,
    postback,
    private_postgres,
    running_stack,
    settle_and_count,
)
from bench.figures import Figure
from bench.server import WrkResult, python_module, run_wrk

logger = logging.getLogger("bench")

SOAK_SECONDS = int(os.environ.get("SOAK_SECONDS", "180"))
CONNECTIONS = 16
POSTBACKS_PER_SECOND = 20

# Each connection waits `pause_ms` before its next request.
PACED_SCRIPT = """
pause_ms = {pause_ms}
function delay() return pause_ms end
"""


def _processes(stack: Stack) -> dict[str, list[psutil.Process]]:
    groups = {
        "web": stack.server.process,
        "worker": stack.worker.process,
        "drainer": stack.drainer.process,
        "beat": stack.beats[0].process if stack.beats else None,
    }
    found: dict[str, list[psutil.Process]] = {}
    for name, popen in groups.items():
        if popen is None:
            continue
        parent = psutil.Process(popen.pid)
        found[name] = [parent, *parent.children(recursive=True)]
    return found


def _rss_mb(processes: dict[str, list[psutil.Process]]) -> dict[str, float]:
    sizes = {}
    for name, members in processes.items():
        total = 0
        for member in members:
            try:
                total += member.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        sizes[name] = total / 1024 / 1024
    return sizes


def _paced(url: str, *, pause_ms: int, duration: str) -> WrkResult:
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
    script.write(PACED_SCRIPT.format(pause_ms=pause_ms))
    script.close()
    try:
        return run_wrk(
            url, connections=CONNECTIONS, duration=duration, extra_args=["-s", script.name]
        )
    finally:
        Path(script.name).unlink(missing_ok=True)


def _calibrated_pause(url: str, *, target: float, first_guess: float) -> int:
    """Three short paced runs: the pause that gives about `target` requests a second.

    Each connection waits `pause` and then its answer, so a run at `measured` requests a
    second says how long an answer took (`CONNECTIONS / measured - pause`); the next pause
    leaves room for that. Scaling the pause by `measured / target` alone ignored the
    answer's time and held 0.37 of the maximum instead of 0.5."""
    pause = max(1.0, first_guess)
    for _ in range(3):
        measured = _paced(url, pause_ms=int(pause), duration="4s").requests_per_second
        answer_ms = max(0.0, CONNECTIONS * 1000 / max(measured, 1.0) - pause)
        pause = max(1.0, CONNECTIONS * 1000 / target - answer_ms)
    return int(pause)


def run() -> list[Figure]:
    with private_postgres() as postgres, running_stack(postgres) as stack:
        codes = json.loads(python_module(stack.env, "bench.faults", "codes"))
        url = stack.server.url(f"/{codes[0]}")
        maximum = run_wrk(url, connections=32, duration="6s")
        target = maximum.requests_per_second / 2

        tally = Tally()
        stop = threading.Event()

        def postbacks() -> None:
            index = 0
            while not stop.is_set():
                click_id = click(stack.server.port, codes[index % len(codes)], tally)
                if click_id is not None:
                    postback(stack.server.port, click_id, f"soak-{index}", tally)
                index += 1
                time.sleep(1 / POSTBACKS_PER_SECOND)

        processes = _processes(stack)
        time.sleep(2)
        rss_start = _rss_mb(processes)
        feeder = threading.Thread(target=postbacks, daemon=True)
        feeder.start()
        try:
            # Calibrated with the postbacks, the worker and the drainer already at work, as
            # in the soak itself: calibrated before them, the pause held 0.34 of the maximum.
            pause_ms = _calibrated_pause(
                url, target=target, first_guess=CONNECTIONS / target * 1000
            )
            logger.info(
                "max %.0f req/s; soak at ~%.0f req/s (pause %d ms)",
                maximum.requests_per_second,
                target,
                pause_ms,
            )
            soak = _paced(url, pause_ms=pause_ms, duration=f"{SOAK_SECONDS}s")
        finally:
            stop.set()
            feeder.join()
        rss_end = _rss_mb(processes)
        count = settle_and_count(stack, tally)
        logger.info("rss start %s end %s", rss_start, rss_end)

    figures = [
        Figure(
            f"soak {SOAK_SECONDS} s: redirect rate held",
            soak.requests_per_second,
            "req/s",
            baseline=maximum.requests_per_second,
            baseline_name="maximum, same run",
            target="~0.5",
        ),
        Figure(f"soak {SOAK_SECONDS} s: redirect p99", soak.p99_ms, "ms", target="< 25 ms"),
        Figure(
            f"soak {SOAK_SECONDS} s: answers other than 302 + socket errors",
            float(soak.non_2xx_3xx + soak.socket_errors),
            "responses",
            target="0",
        ),
        Figure(
            f"soak {SOAK_SECONDS} s: clicks + conversions lost",
            float(count.clicks_lost + count.conversions_lost + count.conversions_doubled),
            "rows",
            target="0",
        ),
        Figure(
            f"soak {SOAK_SECONDS} s: postbacks answered 200",
            float(len(tally.conversions)),
            "postbacks",
        ),
    ]
    for name in sorted(rss_start):
        figures.append(
            Figure(
                f"soak {SOAK_SECONDS} s: RSS at the end, {name} (all its processes)",
                rss_end[name],
                "MB",
                baseline=rss_start[name],
                baseline_name="RSS at the start",
                target="~1.0 (flat)",
            )
        )
    return figures


if __name__ == "__main__":
    # `python -m bench.suite_soak`: this suite alone, written to bench/results/soak.md
    # (`make bench` runs it with the others and writes the shared table).
    import sys
    from datetime import UTC, datetime

    from bench.figures import RESULTS, markdown_table

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    table = markdown_table(run())
    stamp = datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    (RESULTS / "soak.md").write_text(f"`python -m bench.suite_soak`, {stamp}:\n\n{table}\n")
    sys.stdout.write(table + "\n")

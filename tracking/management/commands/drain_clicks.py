"""`manage.py drain_clicks`: move clicks from the spool files into PostgreSQL.

Runs as a long-lived process next to the web server (one per host; a second one
waits on the advisory lock and takes over). `--once` drains what is there and exits.
"""

from __future__ import annotations

import gc
import logging
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, close_old_connections, connection

from config.priority import process_lower_priority
from tracking.services.drain import clicks_drain, clicks_drain_retire

logger = logging.getLogger("tracking.drain_clicks")


class Command(BaseCommand):
    help = "Drain the click spool into PostgreSQL (continuously, or --once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Drain what is there, then exit.")
        parser.add_argument("--spool-dir", type=Path, default=None)
        parser.add_argument("--interval", type=float, default=None, help="Seconds between passes.")

    def handle(self, *args: Any, **options: Any) -> None:
        directory: Path = options["spool_dir"] or Path(str(settings.CLICK_SPOOL_DIR))
        interval: float = options["interval"] or settings.CLICK_DRAIN_INTERVAL_SECONDS
        if options["once"]:
            self._drain_until_empty(directory)
            return
        # On a host the web shares, a drain pass that preempts a web worker holding its GIL
        # stalls every request of that worker; niced, the drainer runs in what the web leaves
        # and its passes take more clicks at once. Its session keeps its share of the CPU
        # (unlike the workers'): niced with it, the drainer fell behind a saturated web and
        # clicks took more than 2 s to show (README, "What a stored click costs").
        process_lower_priority(settings.CLICK_DRAIN_NICE, what="drainer", session=False)
        # Every pass leaves a batch's parsed lines to the cyclic collector, which then walks
        # all of Django's long-lived objects in each full collection: frozen, they are skipped
        # (drainer CPU per click 8.0 -> 7.0 µs, mean of three 60-pass runs each).
        gc.collect()
        gc.freeze()
        stopping = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        logger.info("drain_clicks ready: draining %s every %.1fs", directory, interval)
        while not stopping:
            try:
                report = clicks_drain(directory=directory)
            except (DatabaseError, OSError):
                # Never exit on a passing outage: under honcho one exiting process stops them all,
                # and the spool keeps every click until the next pass.
                logger.exception("drain pass failed; retrying")
                connection.close()
                time.sleep(min(5.0, interval * 10))
                continue
            if report.inserted or report.rejected:
                logger.info(
                    "drained %d lines: %d clicks new, %d rejected",
                    report.lines,
                    report.inserted,
                    report.rejected,
                )
            close_old_connections()
            time.sleep(interval)
        try:
            retired = clicks_drain_retire(directory=directory)
        except DatabaseError:
            logger.exception("could not withdraw the drain point; it stays")
            retired = False
        logger.info(
            "drain_clicks stopped (%s)",
            "spool empty: drain point withdrawn" if retired else "drain point kept",
        )

    def _drain_until_empty(self, directory: Path) -> None:
        total_lines = total_inserted = 0
        deadline = time.monotonic() + 60
        while True:
            report = clicks_drain(directory=directory)
            total_lines += report.lines
            total_inserted += report.inserted
            if not report.busy:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("another drainer kept the spool lock for a minute")
            time.sleep(0.05)
        logger.info("drained %d lines: %d clicks new", total_lines, total_inserted)

"""`manage.py replay_postbacks`: put stored postbacks back on the queue. Idempotent.

manage.py replay_postbacks --network acme --status failed --since 2026-11-01
manage.py replay_postbacks --ids 12 13 14
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from attribution.models import Postback
from attribution.selectors import postback_ids_for_replay
from attribution.services.recovery import postback_replay

CHUNK = 1000


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"{value!r} is not an ISO 8601 date or time") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Process stored postbacks again (invalid, failed or still waiting ones)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--network", help="network slug")
        parser.add_argument(
            "--status",
            action="append",
            choices=Postback.Status.values,
            help="only postbacks in this status (repeatable); default: all",
        )
        parser.add_argument("--since", type=_moment, help="received at or after (ISO 8601)")
        parser.add_argument("--until", type=_moment, help="received before (ISO 8601)")
        parser.add_argument("--ids", nargs="+", type=int, help="these postback ids")

    def handle(self, *args: Any, **options: Any) -> None:
        ids = list(
            postback_ids_for_replay(
                network_slug=options["network"],
                statuses=options["status"] or (),
                since=options["since"],
                until=options["until"],
                ids=options["ids"] or (),
            )
        )
        enqueued = already_processed = 0
        with tqdm(total=len(ids), unit="postback", disable=None) as progress:
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                outcome = postback_replay(postback_ids=chunk)
                enqueued += outcome.enqueued
                already_processed += outcome.already_processed
                progress.update(len(chunk))
        self.stdout.write(
            f"{len(ids)} postback(s) selected: {enqueued} queued again, "
            f"{already_processed} already processed and left unchanged."
        )

from pathlib import Path
from typing import Any, cast

from django.core.management import call_command

from tests.factories import LinkFactory
from tracking.models import Link


def make_link(**fields: Any) -> Link:
    return cast(Link, LinkFactory(**fields))


def drain(spool_dir: Path) -> None:
    call_command("drain_clicks", "--once", "--spool-dir", str(spool_dir))

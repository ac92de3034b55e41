import fcntl
import json
import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from tests import processes
from tests.processes import ManagedProcess
from tests.tracking.helpers import drain, make_link
from tracking.models import Click, ClickSpoolOffset, ClickSpoolWatermark, Link
from tracking.selectors import SPOOL_LINE_UNIX_TIME
from tracking.services.clicks import SPOOL_LINE_FIELDS, SPOOL_LINE_VERSION
from tracking.services.drain import clicks_drain, clicks_drain_retire
from tracking.services.spool import spool_files, spool_host, spool_writer

pytestmark = pytest.mark.usefixtures("spool_dir")


def click(client: Client, link: Link, count: int = 1) -> None:
    for _ in range(count):
        assert client.get(f"/{link.code}").status_code == 302


def spooled_bytes(spool_dir: Path) -> bytes:
    """What the redirect wrote, taken out of its files so a test can replay it by hand."""
    spool_writer.close()
    data = b"".join(path.read_bytes() for path in spool_files(directory=spool_dir))
    for path in spool_files(directory=spool_dir):
        path.unlink()
    return data


class FakeWriter:
    """A spool file held open and locked like a live web process holds its own."""

    def __init__(self, spool_dir: Path, name: str = "000001") -> None:
        spool_dir.mkdir(parents=True, exist_ok=True)
        self.path = spool_dir / f"clicks-{spool_host()}-999999-test-{name}.log"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        fcntl.flock(self.fd, fcntl.LOCK_SH)

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def exit(self) -> None:
        os.close(self.fd)


def drainer(spool_dir: Path, **env: str) -> ManagedProcess:
    return ManagedProcess(
        [sys.executable, "manage.py", "drain_clicks", "--once", "--spool-dir", str(spool_dir)],
        env={**processes.test_environment(), **env},
    )


def exit_code(process: ManagedProcess) -> int:
    assert process.process is not None
    try:
        return process.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


@pytest.mark.django_db
def test_a_partial_last_line_waits_for_the_rest(client, spool_dir):
    # given: two clicks, the second only half written by a live writer
    link = make_link()
    click(client, link, 2)
    first, second = spooled_bytes(spool_dir).splitlines(keepends=True)
    writer = FakeWriter(spool_dir)
    writer.write(first + second[:20])

    # when
    drain(spool_dir)

    # then
    assert Click.objects.count() == 1
    assert writer.path.exists()

    # when: the line is completed, then the writer exits
    writer.write(second[20:])
    drain(spool_dir)
    assert Click.objects.count() == 2
    writer.exit()
    drain(spool_dir)

    # then
    assert Click.objects.count() == 2
    assert not writer.path.exists()
    assert not ClickSpoolOffset.objects.exists()


@pytest.mark.django_db
def test_a_dead_writers_file_is_drained_and_its_torn_last_line_dropped(client, spool_dir):
    # given: the writer died in the middle of its third line
    link = make_link()
    click(client, link, 3)
    lines = spooled_bytes(spool_dir).splitlines(keepends=True)
    writer = FakeWriter(spool_dir)
    writer.write(lines[0] + lines[1] + lines[2][:-10])
    writer.exit()

    # when
    drain(spool_dir)

    # then
    assert Click.objects.count() == 2
    assert not writer.path.exists()


@pytest.mark.django_db
def test_an_unreadable_line_is_set_aside_and_the_rest_goes_in(client, spool_dir):
    # given
    link = make_link()
    click(client, link, 2)
    first, second = spooled_bytes(spool_dir).splitlines(keepends=True)
    writer = FakeWriter(spool_dir)
    writer.write(first + b"this is not a click\n" + second)
    writer.exit()

    # when
    drain(spool_dir)

    # then
    assert Click.objects.count() == 2
    assert b"this is not a click" in (spool_dir / "rejected" / writer.path.name).read_bytes()


@pytest.mark.django_db
def test_draining_twice_adds_nothing(client, spool_dir):
    # given
    link = make_link()
    click(client, link, 3)
    drain(spool_dir)

    # when
    drain(spool_dir)

    # then
    assert Click.objects.count() == 3


@pytest.mark.django_db
def test_lines_read_again_store_only_the_clicks_not_stored_yet(client, spool_dir):
    # given: three clicks drained, their lines written again with two new ones after them
    link = make_link()
    click(client, link, 3)
    stored = spooled_bytes(spool_dir)
    writer = FakeWriter(spool_dir)
    writer.write(stored)
    writer.exit()
    drain(spool_dir)
    click(client, link, 2)
    fresh = spooled_bytes(spool_dir)
    writer = FakeWriter(spool_dir, name="000002")
    writer.write(stored + fresh)
    writer.exit()

    # when
    drain(spool_dir)

    # then: each click once, none of the lines rejected
    assert Click.objects.count() == 5
    assert Click.objects.values("click_id").distinct().count() == 5
    assert not (spool_dir / "rejected").exists()


@pytest.mark.django_db
def test_clicks_of_a_link_that_no_longer_exists_do_not_block_the_others(client, spool_dir):
    # given: a spooled click whose link is gone (a rolled back send), then a good one
    doomed = make_link()
    click(client, doomed, 1)
    orphan = spooled_bytes(spool_dir)
    doomed.delete()
    link = make_link()
    click(client, link, 1)
    good = spooled_bytes(spool_dir)
    writer = FakeWriter(spool_dir)
    writer.write(orphan + good)
    writer.exit()

    # when
    drain(spool_dir)

    # then
    assert list(Click.objects.values_list("link_id", flat=True)) == [link.pk]
    assert not writer.path.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_drainer_killed_mid_batch_loses_and_repeats_nothing(client, spool_dir):
    # given: 60 clicks, drained in batches of a few lines each
    link = make_link()
    click(client, link, 60)
    spool_writer.close()  # the web process is gone too: the file can be removed once drained
    small_batches = {"CLICK_DRAIN_BATCH_BYTES": "1500"}

    # when: a drainer dies after its insert ran but before the commit
    crashed = drainer(spool_dir, CREDITFLOW_DRAIN_CRASH_AT="after_insert", **small_batches)
    assert exit_code(crashed.start()) == 70, crashed.output()
    crashed.stop()

    # then
    assert Click.objects.count() == 0

    # when: the next one dies right after committing its first batch (clicks and offset)
    crashed = drainer(spool_dir, CREDITFLOW_DRAIN_CRASH_AT="after_commit", **small_batches)
    assert exit_code(crashed.start()) == 70, crashed.output()
    crashed.stop()

    # then
    assert 0 < Click.objects.count() < 60

    # when: a drainer runs to the end
    restarted = drainer(spool_dir, **small_batches)
    assert exit_code(restarted.start()) == 0, restarted.output()
    restarted.stop()

    # then: every click exactly once, and the finished file is gone
    click_ids = list(Click.objects.filter(link=link).values_list("click_id", flat=True))
    assert len(click_ids) == 60
    assert len(set(click_ids)) == 60
    assert spool_files(directory=spool_dir) == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_running_drainer_makes_a_click_visible_within_two_seconds(client, spool_dir):
    # given
    link = make_link()
    process = ManagedProcess(
        [sys.executable, "manage.py", "drain_clicks", "--spool-dir", str(spool_dir)],
        ready_text="drain_clicks ready",
    ).start()
    try:
        # when
        clicked_at = time.monotonic()
        click(client, link)
        while not Click.objects.filter(link=link).exists() and time.monotonic() - clicked_at < 5:
            time.sleep(0.02)
        visible_after = time.monotonic() - clicked_at
    finally:
        process.stop()

    # then
    assert Click.objects.filter(link=link).count() == 1
    assert visible_after < 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_drainer_killed_at_random_while_clicks_arrive_keeps_every_click_once(client, spool_dir):
    # given: a running drainer with tiny batches
    link = make_link()
    env = {"CLICK_DRAIN_BATCH_BYTES": "600", "CLICK_DRAIN_INTERVAL_SECONDS": "0.01"}
    command = [sys.executable, "manage.py", "drain_clicks", "--spool-dir", str(spool_dir)]
    process = ManagedProcess(
        command, env={**processes.test_environment(), **env}, ready_text="drain_clicks ready"
    ).start()

    # when: clicks keep coming while the drainer is SIGKILLed twice and restarted
    for _ in range(2):
        click(client, link, 40)
        time.sleep(0.15)
        process.kill()
        process.stop()
        process = ManagedProcess(
            command, env={**processes.test_environment(), **env}, ready_text="drain_clicks ready"
        ).start()
    click(client, link, 40)
    deadline = time.monotonic() + 10
    while Click.objects.filter(link=link).count() < 120 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.stop()

    # then
    click_ids = list(Click.objects.filter(link=link).values_list("click_id", flat=True))
    assert len(click_ids) == 120
    assert len(set(click_ids)) == 120


@pytest.mark.django_db
def test_one_web_process_appends_all_its_clicks_to_one_file(client, spool_dir, settings):
    # given: the directory setting as production reads it from the environment
    import environ

    settings.CLICK_SPOOL_DIR = environ.Path(str(spool_dir))
    link = make_link()

    # when
    click(client, link, 5)

    # then
    files = spool_files(directory=spool_dir)
    assert len(files) == 1
    assert files[0].read_bytes().count(b"\n") == 5


@pytest.mark.django_db
def test_rotated_files_are_drained_and_removed_while_the_live_one_stays(
    client, spool_dir, settings
):
    # given: a web process that starts a new file after every line
    settings.CLICK_SPOOL_ROTATE_BYTES = 100
    link = make_link()
    click(client, link, 9)
    written = spool_files(directory=spool_dir)
    assert len(written) > 2

    # when
    drain(spool_dir)

    # then
    assert Click.objects.filter(link=link).count() == 9
    remaining = spool_files(directory=spool_dir)
    assert remaining == [written[-1]]  # only the file still open for writing


def test_the_spool_backlog_reads_the_click_time_where_the_redirect_writes_it():
    # given / when / then: the selector that tells the worker what is still spooled
    assert SPOOL_LINE_FIELDS[SPOOL_LINE_UNIX_TIME] == "unix_time"


IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)


def spool_line(
    link: Link,
    *,
    click_id: str = "",
    unix_time: float = 0.0,
    ip: str = "203.0.113.0",
    user_agent: str = IPHONE,
    referrer: str = "",
) -> bytes:
    """A line as the redirect writes it (SPOOL_LINE_FIELDS order)."""
    record = [
        SPOOL_LINE_VERSION,
        click_id or secrets.token_urlsafe(16),
        unix_time or time.time(),
        link.pk,
        ip,
        user_agent,
        referrer,
        "GET",
        "",
    ]
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def staging_table_oid() -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT oid FROM pg_class"
            " WHERE relname = 'click_incoming' AND relnamespace = pg_my_temp_schema()"
        )
        row = cursor.fetchone()
    return row[0] if row else None


@pytest.mark.django_db(transaction=True)
def test_one_staging_table_and_one_planned_insert_serve_every_batch_of_a_connection(spool_dir):
    # given: a live spool file, drained twice on the same database connection
    link = make_link()
    writer = FakeWriter(spool_dir)
    writer.write(b"".join(spool_line(link) for _ in range(3)))
    drain(spool_dir)
    first_table = staging_table_oid()

    # when
    writer.write(b"".join(spool_line(link) for _ in range(3)))
    drain(spool_dir)

    # then: the same table, emptied by each commit, and the insert planned once (generic)
    assert first_table is not None
    assert staging_table_oid() == first_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM click_incoming")
        assert cursor.fetchone() == (0,)
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE name = 'click_insert'"
        )
        generic_plans, custom_plans = cursor.fetchone()
    assert generic_plans >= 2
    assert custom_plans == 0
    assert Click.objects.filter(link=link).count() == 6
    writer.exit()


@pytest.mark.django_db(transaction=True)
def test_a_refused_first_batch_of_a_new_connection_stores_every_good_click_once(spool_dir):
    # given: a new database session, whose first batch holds a line PostgreSQL refuses (the
    # staging table made in that batch's transaction goes with its rollback; the prepared
    # insert stays)
    connection.close()
    link = make_link()
    good = [secrets.token_urlsafe(16) for _ in range(3)]
    writer = FakeWriter(spool_dir)
    writer.write(
        spool_line(link, click_id=good[0])
        + spool_line(link, click_id="refused", ip="not-an-address")
        + spool_line(link, click_id=good[1])
    )

    # when
    drain(spool_dir)
    writer.write(spool_line(link, click_id=good[2]))
    drain(spool_dir)

    # then
    click_ids = list(Click.objects.values_list("click_id", flat=True))
    assert sorted(click_ids) == sorted(good)
    assert b"refused" in (spool_dir / "rejected" / writer.path.name).read_bytes()
    writer.exit()
    drain(spool_dir)
    assert Click.objects.count() == 3
    assert not writer.path.exists()


@pytest.mark.django_db
def test_the_click_time_is_stored_as_python_reads_the_spool_time(spool_dir):
    # given: times whose microseconds round half to even, carry into the next second, or
    # need more digits than a float keeps
    link = make_link()
    times = [
        1796000000.0,
        1796000000.0000005,
        1796000000.9999996,
        1796000000.1234565,
        1796000000.5,
        1700000000.123456789,
        86400.0000015,
    ]
    lines = {secrets.token_urlsafe(16): moment for moment in times}
    writer = FakeWriter(spool_dir)
    writer.write(b"".join(spool_line(link, click_id=c, unix_time=t) for c, t in lines.items()))
    writer.exit()

    # when
    drain(spool_dir)

    # then
    stored = dict(Click.objects.values_list("click_id", "occurred_at"))
    assert stored == {
        click_id: datetime.fromtimestamp(moment, tz=UTC) for click_id, moment in lines.items()
    }


@pytest.mark.django_db
def test_lines_no_click_can_be_read_from_are_set_aside_and_the_rest_goes_in(spool_dir):
    # given: a time past year 9999, a time that is not a number, two records on one line
    link = make_link()
    good = secrets.token_urlsafe(16)
    writer = FakeWriter(spool_dir)
    writer.write(
        spool_line(link, click_id="too-late", unix_time=1e20)
        + spool_line(link, click_id="nan", unix_time=float("nan"))
        + spool_line(link, click_id="two").rstrip(b"\n")
        + b","
        + spool_line(link, click_id="records")
        + spool_line(link, click_id=good)
    )
    writer.exit()

    # when
    drain(spool_dir)

    # then
    assert list(Click.objects.values_list("click_id", flat=True)) == [good]
    rejected = (spool_dir / "rejected" / writer.path.name).read_bytes()
    assert rejected.count(b"\n") == 3
    assert b"too-late" in rejected
    assert b"nan" in rejected
    assert b"records" in rejected


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_running_drainer_yields_the_cpu_to_the_web(spool_dir):
    # given / when
    process = ManagedProcess(
        [sys.executable, "manage.py", "drain_clicks", "--spool-dir", str(spool_dir)],
        ready_text="drain_clicks ready",
    ).start()
    try:
        assert process.process is not None
        niceness = psutil.Process(process.process.pid).nice()
        autogroup = Path(f"/proc/{process.process.pid}/autogroup").read_text()
    finally:
        process.stop()

    # then: CLICK_DRAIN_NICE, while its session keeps its share of the CPU (niced with its
    # autogroup, it fell behind a saturated web)
    assert niceness == 10
    assert autogroup.split()[-1] == "0"


@pytest.mark.django_db
def test_text_with_copy_s_special_characters_is_stored_as_sent(spool_dir):
    # given: the characters COPY's text format escapes, and a NUL (PostgreSQL text has none)
    link = make_link()
    user_agent = "Agent\\1.0\tTab\nLine\rReturn\\N"
    referrer = "https://example.com/a\tb\\c\x00d"
    writer = FakeWriter(spool_dir)
    writer.write(spool_line(link, user_agent=user_agent, referrer=referrer))
    writer.exit()

    # when
    drain(spool_dir)

    # then
    stored = Click.objects.get()
    assert (stored.user_agent, stored.referrer) == (user_agent, "https://example.com/a\tb\\cd")


@pytest.mark.django_db
def test_a_node_named_like_the_start_of_another_leaves_the_others_files_alone(
    client, spool_dir, settings, tmp_path
):
    # given: node "web-2" spooled and drained two clicks; its live file stays, with its offset
    settings.CLICK_SPOOL_HOST = "web-2"
    link = make_link()
    click(client, link, 2)
    assert clicks_drain(directory=spool_dir).inserted == 2

    # when: node "web" drains its own (empty) spool, forgetting offsets of its removed files
    settings.CLICK_SPOOL_HOST = "web"
    clicks_drain(directory=tmp_path / "web-spool")

    # then: web-2's next pass does not read its clicks again
    settings.CLICK_SPOOL_HOST = "web-2"
    assert clicks_drain(directory=spool_dir).lines == 0
    assert Click.objects.filter(link=link).count() == 2


@pytest.mark.django_db
def test_a_full_pass_publishes_how_far_the_node_has_drained(client, spool_dir):
    # given
    link = make_link()
    click(client, link)
    before = timezone.now()

    # when
    drain(spool_dir)

    # then: every click written before the pass began is in PostgreSQL
    point = ClickSpoolWatermark.objects.get(host=spool_host())
    assert point.drained_before >= before
    assert point.drained_before >= Click.objects.get(link=link).occurred_at


@pytest.mark.django_db
def test_a_stopping_drainer_withdraws_its_point_only_when_its_spool_is_empty(
    client, spool_dir, tmp_path
):
    # given: a node whose web has a spool file open
    click(client, make_link())
    drain(spool_dir)

    # when / then: it stays while the spool holds a file
    assert clicks_drain_retire(directory=spool_dir) is False
    assert ClickSpoolWatermark.objects.filter(host=spool_host()).exists()

    # when / then: a node with no spool file at all is gone for the workers
    assert clicks_drain_retire(directory=tmp_path / "empty") is True
    assert not ClickSpoolWatermark.objects.filter(host=spool_host()).exists()

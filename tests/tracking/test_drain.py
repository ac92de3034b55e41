import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import Client

from tests import processes
from tests.processes import ManagedProcess
from tests.tracking.helpers import drain, make_link
from tracking.models import Click, ClickSpoolOffset, Link
from tracking.selectors import SPOOL_LINE_UNIX_TIME
from tracking.services.clicks import SPOOL_LINE_FIELDS
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

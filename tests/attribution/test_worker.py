"""With real Celery worker processes: the path a postback really takes, and its failures."""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import psutil
import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from attribution.models import Conversion, ConversionEvent, Postback
from attribution.services.recovery import postback_sweep
from harness.processes import ManagedProcess
from harness.services import redis_keys_delete
from tests.factories import TEST_POSTBACK_TOKEN, ClickFactory
from tests.processes import celery_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_until(condition: Callable[[], bool], timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or condition}")


def send(client, network, **params) -> int:
    response = client.get(f"/postback/{network.slug}/", {"token": TEST_POSTBACK_TOKEN, **params})
    assert response.status_code == 200, response.content
    return int(response.json()["postback_id"])


def processed(postback_id: int) -> bool:
    return Postback.objects.filter(pk=postback_id, status=Postback.Status.PROCESSED).exists()


def row_is_locked(postback_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute(
            "SELECT id FROM attribution_postback WHERE id = %s FOR UPDATE SKIP LOCKED",
            [postback_id],
        )
        free = cursor.fetchone() is not None
        cursor.execute("ROLLBACK")
    return not free


def test_a_postback_goes_from_intake_through_a_worker_to_a_conversion(worker, client, api_client):
    # given
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(minutes=30))
    network = click.offer.network
    # when
    postback_id = send(client, network, click_id=click.click_id, txid="E2E-1", payout="8")
    others = [send(client, network, click_id=click.click_id, txid=f"E2E-{i}") for i in (2, 3)]
    # then
    wait_until(
        lambda: all(processed(pk) for pk in [postback_id, *others]),
        what="the worker to process the postbacks",
    )
    answer = api_client.get(
        "/api/v1/conversions/", {"network": network.slug, "conversion_id": "E2E-1"}
    )
    [conversion] = answer.json()["results"]
    assert conversion["processed"] is True
    assert conversion["attributed"] is True
    assert conversion["click_id"] == click.click_id
    assert conversion["message"] == click.message_id
    assert conversion["payout"] == "8.0000"


@contextmanager
def clicks_table_held() -> Iterator[None]:
    """Another session holds the clicks table: a worker that has claimed postbacks waits
    there, inside its claim's transaction, until this ends."""
    database = connection.settings_dict
    with psycopg.connect(
        dbname=database["NAME"],
        host=database["HOST"] or None,
        port=database["PORT"] or None,
        user=database["USER"] or None,
        password=database["PASSWORD"] or None,
    ) as session:
        session.execute("LOCK TABLE tracking_click IN ACCESS EXCLUSIVE MODE")
        yield


def test_a_worker_killed_mid_task_loses_nothing_and_counts_once(client):
    # given: a worker that, right after claiming a postback, waits for the clicks it reads
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(minutes=30))
    network = click.offer.network
    stuck = celery_worker().start()
    try:
        with clicks_table_held():
            postback_id = send(client, network, click_id=click.click_id, txid="KILL-1")
            wait_until(lambda: row_is_locked(postback_id), what="the worker to claim the postback")
            # when: SIGKILL, mid-task
            stuck.kill()
    finally:
        stuck.stop()
    # then: its transaction died with it; the postback waits again, untouched
    wait_until(lambda: not row_is_locked(postback_id), what="PostgreSQL to drop the claim")
    assert Postback.objects.get(pk=postback_id).status == Postback.Status.RECEIVED
    assert not Conversion.objects.exists()
    # when: a new worker starts and the sweeper runs (its minute has come)
    fresh = celery_worker().start()
    try:
        outcome = postback_sweep(now=timezone.now() + timedelta(minutes=10))
        assert outcome.enqueued == 1
        wait_until(lambda: processed(postback_id), what="the new worker to process it")
    finally:
        fresh.stop()
    # then: exactly once
    assert Conversion.objects.count() == 1
    assert ConversionEvent.objects.count() == 1
    assert Postback.objects.get(pk=postback_id).attempts == 2


def test_the_sweeper_recovers_postbacks_whose_queue_was_wiped(client):
    # given: five postbacks accepted while no worker runs
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(minutes=30))
    network = click.offer.network
    ids = [send(client, network, click_id=click.click_id, txid=f"WIPE-{i}") for i in range(5)]
    broker = redis.Redis.from_url(settings.REDIS_URL)
    queue_key = f"{settings.REDIS_KEY_PREFIX}{settings.CELERY_TASK_DEFAULT_QUEUE}"
    # the queue lives under this run's prefix, so two runs never take each other's tasks;
    # one queued wake-up task serves all five (the worker would claim them as one batch);
    # the web process's wake-up thread sends it just after the answers
    wait_until(lambda: broker.llen(queue_key) == 1, what="the wake-up task to be queued")
    time.sleep(settings.POSTBACK_WAKEUP_GATHER_SECONDS * 5)
    assert broker.llen(queue_key) == 1
    # when: every key of this run goes (as after a Redis restart without persistence)
    redis_keys_delete(redis_url=settings.REDIS_URL, prefix=settings.REDIS_KEY_PREFIX)
    worker = celery_worker().start()
    try:
        assert not Postback.objects.filter(status=Postback.Status.PROCESSED).exists()
        outcome = postback_sweep(now=timezone.now() + timedelta(minutes=10))
        # then
        assert outcome.enqueued == 5
        wait_until(
            lambda: all(processed(postback_id) for postback_id in ids),
            what="the swept postbacks to be processed",
        )
    finally:
        worker.stop()
    assert Conversion.objects.count() == 5
    assert ConversionEvent.objects.count() == 5


def test_the_running_worker_yields_the_cpu_to_the_web():
    # given / when: a worker started in a session of its own, as honcho and systemd start it
    worker = celery_worker().start()
    try:
        assert worker.process is not None
        root = psutil.Process(worker.process.pid)
        pool = root.children(recursive=True)
        niceness = {process.nice() for process in [root, *pool]}
        autogroup = Path(f"/proc/{root.pid}/autogroup").read_text()
    finally:
        worker.stop()

    # then: WORKER_NICE, for the worker and its pool, and for its session's share of the
    # CPU (with autogrouping the scheduler shares the CPU between sessions first)
    assert pool
    assert niceness == {10}
    assert autogroup.split()[-1] == "10"


def worker_backends(worker: ManagedProcess) -> set[int]:
    """The PostgreSQL backends (pids) serving the worker's processes right now."""
    assert worker.process is not None
    root = psutil.Process(worker.process.pid)
    server_port = int(connection.settings_dict["PORT"] or 5432)
    ports = {
        opened.laddr.port
        for process in [root, *root.children(recursive=True)]
        for opened in process.net_connections(kind="tcp")
        if opened.raddr and opened.raddr.port == server_port
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, client_port FROM pg_stat_activity WHERE datname = current_database()"
        )
        return {pid for pid, port in cursor.fetchall() if port in ports}


def test_a_worker_keeps_its_database_session_between_tasks_and_replaces_a_lost_one(client):
    # given: a worker whose connections may live a minute, as in production
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(minutes=30))
    network = click.offer.network
    worker = celery_worker(env={"DATABASE_CONN_MAX_AGE": "60"}).start()
    try:
        first = send(client, network, click_id=click.click_id, txid="SESSION-1")
        wait_until(lambda: processed(first), what="the first postback to be processed")
        after_first = worker_backends(worker)
        # when: a second task
        second = send(client, network, click_id=click.click_id, txid="SESSION-2")
        wait_until(lambda: processed(second), what="the second postback to be processed")
        after_second = worker_backends(worker)
        # when: its session is terminated between two tasks (a failover, an idle timeout)
        with connection.cursor() as cursor:
            for pid in after_second:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        third = send(client, network, click_id=click.click_id, txid="SESSION-3")
        wait_until(lambda: processed(third), what="the third postback to be processed")
        after_third = worker_backends(worker)
    finally:
        worker.stop()

    # then: the second task ran on the first one's session, not a new one of its own
    assert after_first
    assert after_second == after_first
    # then: the lost session was replaced and nothing was lost
    assert after_third
    assert not after_third & after_second
    assert Conversion.objects.count() == 3

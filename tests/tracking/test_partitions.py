"""tracking_click is partitioned by month: clicks land in their month, never refused, once."""

import sys
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection

from tests import processes
from tests.processes import ManagedProcess
from tests.tracking.helpers import drain, make_link
from tests.tracking.test_drain import click, exit_code
from tracking.models import Click
from tracking.services.partitions import (
    click_partitions,
    click_partitions_ensure,
    click_partitions_forget,
    month_of,
)
from tracking.services.spool import spool_files, spool_writer

pytestmark = pytest.mark.usefixtures("spool_dir")


def partition_of_each_click() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT click_id, tableoid::regclass::text FROM tracking_click")
        return dict(cursor.fetchall())


@pytest.fixture(autouse=True)
def _partitions_looked_up_again():
    click_partitions_forget()
    yield
    click_partitions_forget()


@pytest.mark.django_db
def test_a_drained_click_lands_in_the_partition_of_its_month(client, spool_dir):
    # given: a click in a month nobody created a partition for
    link = make_link()
    with time_machine.travel(datetime(2031, 3, 15, 12, tzinfo=UTC), tick=False):
        click(client, link)

    # when
    drain(spool_dir)

    # then
    assert list(partition_of_each_click().values()) == ["tracking_click_p203103"]


@pytest.mark.django_db
def test_clicks_the_default_partition_took_move_into_their_month_when_it_is_created():
    # given: a click written straight into the table for a month without a partition
    from tests.factories import ClickFactory

    stray = ClickFactory.create(occurred_at=datetime(2019, 7, 4, 9, tzinfo=UTC))
    assert partition_of_each_click() == {stray.click_id: "tracking_click_default"}

    # when
    created = click_partitions_ensure(months=[month_of(stray.occurred_at)])

    # then
    assert created == ["tracking_click_p201907"]
    assert partition_of_each_click() == {stray.click_id: "tracking_click_p201907"}
    assert Click.objects.get(click_id=stray.click_id).occurred_at == stray.occurred_at


@pytest.mark.django_db
def test_imported_history_of_old_months_gets_their_partitions(api_client):
    # given
    link = make_link()
    old = datetime(2020, 1, 31, 23, 59, 59, tzinfo=UTC)

    # when
    response = api_client.post(
        "/api/v1/clicks/import/",
        [
            {"code": link.code, "occurred_at": old.isoformat(), "user_agent": "a", "ip": None},
            {
                "code": link.code,
                "occurred_at": (old + timedelta(seconds=2)).isoformat(),
                "user_agent": "b",
                "ip": None,
            },
        ],
        format="json",
    )

    # then
    assert response.status_code == 201, response.content
    first, second = response.json()["click_ids"]
    assert partition_of_each_click() == {
        first: "tracking_click_p202001",
        second: "tracking_click_p202002",
    }


@pytest.mark.django_db
def test_only_the_indexes_a_query_uses_are_on_the_click_table():
    # then: each is named with its query in tracking/models.py (Click.Meta)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'tracking_click'"
        )
        indexes = dict(cursor.fetchall())
        cursor.execute(
            "SELECT count(*) FROM pg_constraint"
            " WHERE conrelid = 'tracking_click'::regclass AND contype = 'f'"
        )
        foreign_keys = cursor.fetchone()[0]
    assert sorted(indexes) == [
        "click_contact_offer_time",
        "click_flagged_time",
        "click_id_unique",
        "click_link_ip_time",
        "click_link_time",
        "click_occurred_at_brin",
        "click_recorded_at_brin",
        "tracking_click_pkey",
    ]
    assert "USING brin" in indexes["click_occurred_at_brin"]
    assert "(click_id, occurred_at)" in indexes["click_id_unique"]
    assert foreign_keys == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_drainer_killed_mid_batch_stores_clicks_of_two_months_once_each(client, spool_dir):
    # given: 40 clicks on both sides of a month's end (two partitions, one of them new)
    link = make_link()
    for moment in (datetime(2032, 5, 31, 23, 59, 58, tzinfo=UTC), datetime(2032, 6, 1, tzinfo=UTC)):
        with time_machine.travel(moment, tick=False):
            click(client, link, 20)
    spool_writer.close()
    small_batches = {**processes.test_environment(), "CLICK_DRAIN_BATCH_BYTES": "1500"}
    command = [sys.executable, "manage.py", "drain_clicks", "--once", "--spool-dir", str(spool_dir)]

    # when: one drainer dies right after a commit, the next runs to the end
    crashed = ManagedProcess(
        command, env={**small_batches, "CREDITFLOW_DRAIN_CRASH_AT": "after_commit"}
    )
    assert exit_code(crashed.start()) == 70, crashed.output()
    crashed.stop()
    assert 0 < Click.objects.count() < 40
    restarted = ManagedProcess(command, env=small_batches)
    assert exit_code(restarted.start()) == 0, restarted.output()
    restarted.stop()

    # then: every click exactly once, each in its month's partition
    where = partition_of_each_click()
    assert Click.objects.filter(link=link).count() == 40
    assert (
        sorted(where.values()) == ["tracking_click_p203205"] * 20 + ["tracking_click_p203206"] * 20
    )
    assert spool_files(directory=spool_dir) == []
    assert {p.name for p in click_partitions()} >= {
        "tracking_click_p203205",
        "tracking_click_p203206",
    }


@pytest.mark.django_db
def test_the_beat_task_creates_this_month_and_the_next_ones_ahead(settings):
    # given
    from tracking.tasks import create_click_partitions

    settings.CLICK_PARTITIONS_AHEAD_MONTHS = 2

    # when
    with time_machine.travel(datetime(2040, 11, 20, tzinfo=UTC), tick=False):
        create_click_partitions()

    # then
    assert {p.name for p in click_partitions()} >= {
        "tracking_click_p204011",
        "tracking_click_p204012",
        "tracking_click_p204101",
    }


@pytest.mark.django_db
def test_the_beat_task_keeps_the_whole_click_table_statistics_fresh(client, spool_dir):
    # given: clicks stored since the table was last analyzed as a whole
    from tracking.tasks import create_click_partitions

    link = make_link()
    for _ in range(3):
        client.get(f"/{link.code}")
    drain(spool_dir)

    # when
    create_click_partitions()

    # then: the planner's row estimate for the table counts them
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'tracking_click'")
        assert cursor.fetchone()[0] >= 3

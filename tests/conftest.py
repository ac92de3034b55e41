import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from harness.services import redis_keys_delete
from tests.processes import ManagedProcess, celery_worker
from tracking.services.link_cache import link_cache_clear
from tracking.services.spool import spool_writer


def _delete_this_runs_redis_keys() -> None:
    redis_keys_delete(redis_url=settings.REDIS_URL, prefix=settings.REDIS_KEY_PREFIX)


@pytest.fixture(scope="session", autouse=True)
def _redis_keys_removed_after_run() -> Iterator[None]:
    """Leave the shared Redis as we found it: every key of this run goes at the end."""
    yield
    _delete_this_runs_redis_keys()


@pytest.fixture(scope="session", autouse=True)
def _run_files_removed_after_run() -> Iterator[None]:
    """This run's spool and metrics directories under `.run/` go at the end too."""
    yield
    from config.metrics import multiprocess_directory

    run_id = os.environ["CREDITFLOW_TEST_RUN"]
    run_root = Path(settings.BASE_DIR) / ".run"
    for directory in (run_root / f"test-{run_id}", multiprocess_directory()):
        # Only ever a directory of this run, inside .run/.
        if run_root in directory.parents and run_id in directory.name:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    # Not `cache.clear()`: Django's Redis cache clears with FLUSHDB, which would wipe every
    # other run's keys and queues on the shared Redis. Only this run's keys go.
    _delete_this_runs_redis_keys()
    yield


@pytest.fixture
def spool_dir(settings, tmp_path) -> Iterator[Path]:
    """A spool of this test's own, and a link cache that starts empty."""
    settings.CLICK_SPOOL_DIR = tmp_path / "spool"
    link_cache_clear()
    yield settings.CLICK_SPOOL_DIR
    spool_writer.close()
    link_cache_clear()


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_user(
        username="operator", password="operator-password", is_staff=True, is_superuser=True
    )


@pytest.fixture
def api_client(staff_user) -> APIClient:
    client = APIClient()
    token = Token.objects.create(user=staff_user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def admin_client_logged_in(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def worker(transactional_db) -> Iterator[ManagedProcess]:
    """A real Celery worker process on this run's database and queues."""
    process = celery_worker().start()
    yield process
    process.stop()

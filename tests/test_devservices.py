"""The fallback of `make run` / `make test` on a machine without PostgreSQL or Redis:
both are started from pip packages, answer, and are gone after `stop`."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
import redis

from harness.processes import free_port

ROOT = Path(__file__).resolve().parent.parent


def _devservices(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.devservices", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _environment_without_servers() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "REDIS_URL")
    }


def _gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # Short: PostgreSQL's and Redis's unix socket paths must fit in ~100 characters.
    path = Path(tempfile.mkdtemp(prefix="cfdev-", dir="/tmp"))
    yield path
    _devservices("stop", "--state-dir", str(path), env=_environment_without_servers())
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_embedded_postgres_and_redis_start_answer_and_stop(state_dir):
    # given: no DATABASE_URL, no REDIS_URL
    env = _environment_without_servers()

    # when
    started = _devservices("ensure", "--embedded", "--state-dir", str(state_dir), env=env)

    # then: both answer at the addresses written to services.env
    assert started.returncode == 0, started.stderr[-3000:]
    urls = dict(
        line.split("=", 1) for line in (state_dir / "services.env").read_text().splitlines()
    )
    database_url = urls["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    with psycopg.connect(database_url, connect_timeout=5) as connection:
        assert connection.execute("SELECT current_database()").fetchone() == ("creditflow",)
    cache = redis.Redis.from_url(urls["REDIS_URL"], socket_connect_timeout=2)
    assert cache.ping() is True
    postgres_pid = int((state_dir / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
    redis_pid = int((state_dir / "redis.pid").read_text().strip())

    # when
    stopped = _devservices("stop", "--state-dir", str(state_dir), env=env)

    # then: both are gone
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert _gone(postgres_pid)
    assert _gone(redis_pid)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(database_url, connect_timeout=2)
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(urls["REDIS_URL"], socket_connect_timeout=1).ping()


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:{port}/creditflow"),
        ("REDIS_URL", "redis://127.0.0.1:{port}/0"),
    ],
)
def test_a_url_pointing_at_nothing_fails_with_a_message_naming_it(state_dir, variable, url):
    # given
    env = _environment_without_servers()
    env[variable] = url.format(port=free_port())

    # when
    result = _devservices("ensure", "--state-dir", str(state_dir), env=env)

    # then
    assert result.returncode != 0
    assert variable in result.stderr + result.stdout
    assert not (state_dir / "services.env").exists()

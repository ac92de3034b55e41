"""Test settings: every run gets its own database and its own Redis key prefix.

`CREDITFLOW_TEST_RUN` names the run; worker processes started by a test inherit
it, so they find the same database and the same queues. Two runs on one machine
never see each other's rows or keys, and `tests/conftest.py` removes both at the end.
"""

import os
import secrets

from config.settings.base import *  # noqa: F403
from config.settings.base import DATABASES, REDIS_URL, env

RUN_ID = os.environ.setdefault("CREDITFLOW_TEST_RUN", secrets.token_hex(4))

# A new connection for every request and task, unless a test's process asks otherwise.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DATABASES["default"]["TEST"] = {"NAME": f"test_creditflow_{RUN_ID}"}

REDIS_KEY_PREFIX = f"cftest:{RUN_ID}:"
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
    }
}
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "global_keyprefix": REDIS_KEY_PREFIX,
    "socket_connect_timeout": 2,
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECRET_KEY = "test-secret-key-not-for-production"

# A test that plays several nodes gives each of their processes a spool of its own.
CLICK_SPOOL_DIR = os.environ.get("CREDITFLOW_TEST_SPOOL_DIR") or (
    BASE_DIR / ".run" / f"test-{RUN_ID}" / "click-spool"  # noqa: F405
)
# Every postback asks Redis whether a network changed: tests create networks with
# factories (no invalidation) and remove this run's keys between tests.
POSTBACK_NETWORK_CHECK_SECONDS = 0.0

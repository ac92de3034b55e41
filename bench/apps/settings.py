"""The production settings, plus the bench-only URLs (a bare 302 and a naive redirect)."""

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.apps.urls"

# The reference views run through the same middleware as the redirect they are compared with.
HOT_PATH_PATTERN = rf"/bench/[^/]+(?:/[^/]+)?|{HOT_PATH_PATTERN}"  # noqa: F405

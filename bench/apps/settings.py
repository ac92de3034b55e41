"""The production settings, plus the bench-only URLs (a bare 302 and a naive redirect)."""

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.apps.urls"

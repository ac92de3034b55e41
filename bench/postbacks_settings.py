"""The production settings, with the postback benchmark's URLs (two reference views in front)."""

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.postbacks_urls"

"""The production settings, with the postback benchmark's URLs (two reference views in front)."""

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.postbacks_urls"

# The reference views run through the same middleware as the intake they are compared with.
HOT_PATH_PATTERN = rf"/bench/(bare|commit-only)-postback/[^/]+/|{HOT_PATH_PATTERN}"  # noqa: F405

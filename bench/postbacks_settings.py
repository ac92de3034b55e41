"""The production settings, with the postback benchmark's URLs (a bare JSON view in front)."""

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.postbacks_urls"

# The bare view runs through the same middleware as the intake it is compared with.
HOT_PATH_PATTERN = rf"/bench/bare-postback/[^/]+/|{HOT_PATH_PATTERN}"  # noqa: F405

from collections.abc import Iterator
from pathlib import Path

import pytest

from tracking.services.link_cache import link_cache_clear
from tracking.services.spool import spool_writer


@pytest.fixture
def spool_dir(settings, tmp_path) -> Iterator[Path]:
    """A spool of this test's own, and a link cache that starts empty."""
    settings.CLICK_SPOOL_DIR = tmp_path / "spool"
    link_cache_clear()
    yield settings.CLICK_SPOOL_DIR
    spool_writer.close()
    link_cache_clear()

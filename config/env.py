"""The one place that reads the environment.

Every setting that can come from outside is read here, so `base.py` and the
other settings modules never touch `os.environ` themselves.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# `make` writes the addresses it found or started (see harness/devservices.py)
# into this file; values already in the environment win over it.
_services_file = BASE_DIR / ".run" / "services.env"
if _services_file.exists():
    environ.Env.read_env(str(_services_file), overwrite=False)

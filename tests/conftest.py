from __future__ import annotations

import trustproxy  # noqa: F401  (offline switches before litellm/presidio import)
from tests.fakes.fixtures import *  # noqa: F403

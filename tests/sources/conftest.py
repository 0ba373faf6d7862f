"""Fixtures of the LOAD tests (the builders live in sources_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from sources_helpers import chat_pairs  # noqa: F401

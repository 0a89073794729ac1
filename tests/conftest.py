"""Test setup shared by every area. Environment is set before the app is imported.

Backend tests run once per database: SQLite always; PostgreSQL whenever a server answers at
KABINET_TEST_PG_URL (under CI=true it must answer, or the run fails instead of skipping).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_TMP = Path(tempfile.mkdtemp(prefix="kabinet-tests-"))
os.environ.setdefault("KABINET_DATA_DIR", str(_TMP / "default"))
os.environ.setdefault("KABINET_LOG_FORMAT", "console")

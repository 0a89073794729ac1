"""Time at the edges: UTC inside, the region's calendar day for deadlines and overdue."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from backend.db.models import utcnow


def region_today(tz: str, now: dt.datetime | None = None) -> dt.date:
    return (now or utcnow()).astimezone(ZoneInfo(tz)).date()


__all__ = ["region_today", "utcnow"]

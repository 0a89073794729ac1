"""Built cards, kept per (document, revision, region day) for a short while.

A card takes a dozen statements to build and is the same for everyone who may open it.
The revision (the document's audit-event count, see visibility.visible_revision) changes
with every decision on the document, so a cached card is never older than the last
decision. What the revision does not see — a renamed position or user shown on the card
— is bounded by the TTL.
"""

from __future__ import annotations

import datetime as dt
import uuid

from backend.domain.documents.schemas import DocumentCardOut
from backend.ttl_cache import TtlCache

CardKey = tuple[uuid.UUID, int, dt.date]  # (document, revision, region day)
TTL_SECONDS = 30.0
MAX_ENTRIES = 2_000


def card_cache() -> TtlCache[CardKey, DocumentCardOut]:
    return TtlCache(TTL_SECONDS, MAX_ENTRIES)

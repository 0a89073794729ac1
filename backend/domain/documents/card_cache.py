"""Built cards, kept per (document, region day) with the revision they were built at,
for a short while.

A card is the same for everyone who may open it. The revision (the document's
audit-event count, see visibility.visible_revision) changes with every decision on the
document; a cached card is served only while the revision read with the request's
visibility check is the one it was built at, so it is never older than the last
decision. What the revision does not see — a renamed position or user shown on the card
— is bounded by the TTL. A document with no card cached is read with its check in one
round trip (services.visible_card).
"""

from __future__ import annotations

import datetime as dt
import uuid

from backend.domain.documents.schemas import DocumentCardOut
from backend.ttl_cache import TtlCache

CardKey = tuple[uuid.UUID, dt.date]  # (document, region day)
CachedCard = tuple[int, DocumentCardOut]  # (revision, card)
TTL_SECONDS = 30.0
MAX_ENTRIES = 2_000


def card_cache() -> TtlCache[CardKey, CachedCard]:
    return TtlCache(TTL_SECONDS, MAX_ENTRIES)

"""Remembered answers to "may this user have this page image, and where is it?".

A tablet opening a document asks for its pages in a burst (and again for the next width
when it rotates); each answer costs a visibility check and a file look-up. For pages
that can no longer change, the answer is kept per user for KABINET_PRINCIPAL_CACHE_SECONDS.
It was checked against cabinets that may themselves be that old (the principal cache), so
a withdrawn right stops opening pages within twice that time (10 s by default).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from backend.ttl_cache import TtlCache

# (user, document, file version, page, width)
PageKey = tuple[uuid.UUID, uuid.UUID, uuid.UUID, int, int]
MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class PageGrant:
    etag: str
    cache_control: str
    path: Path  # the rendered WebP in the page cache


def page_grants(ttl_seconds: float) -> TtlCache[PageKey, PageGrant]:
    return TtlCache(ttl_seconds, MAX_ENTRIES)

"""A short-lived, per-process cache of who a user is and which cabinets they may open.

Every authenticated request needs both; loading them costs three queries, which was half
the CPU of a queue request. A few seconds of staleness is the price: a revoked assistant
right or a deactivated user takes effect within `ttl` seconds (access tokens themselves
live 15 minutes, so this is well inside what the design already accepts).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from backend.domain.accounts.access import Cabinet, UserRef
from backend.ttl_cache import TtlCache

MAX_ENTRIES = 50_000  # a region has ~20,000 users


@dataclass(frozen=True)
class Entry:
    user: UserRef
    cabinets: tuple[Cabinet, ...]


class PrincipalCache:
    def __init__(self, ttl_seconds: float) -> None:
        self._cache: TtlCache[uuid.UUID, Entry] = TtlCache(ttl_seconds, MAX_ENTRIES)

    def get(self, user_id: uuid.UUID, now: float | None = None) -> Entry | None:
        return self._cache.get(user_id, now)

    def put(self, user: UserRef, cabinets: tuple[Cabinet, ...], now: float | None = None) -> None:
        self._cache.put(user.id, Entry(user, cabinets), now)

    def forget(self, user_id: uuid.UUID) -> None:
        self._cache.forget(user_id)

"""A short-lived, per-process cache of who a user is and which cabinets they may open.

Every authenticated request needs both; loading them costs three queries, which was half
the CPU of a queue request. A few seconds of staleness is the price: a revoked assistant
right or a deactivated user takes effect within `ttl` seconds (access tokens themselves
live 15 minutes, so this is well inside what the design already accepts).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from backend.domain.accounts.access import Cabinet, UserRef

MAX_ENTRIES = 50_000


@dataclass(frozen=True)
class Entry:
    user: UserRef
    cabinets: tuple[Cabinet, ...]
    expires: float


class PrincipalCache:
    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[uuid.UUID, Entry] = {}

    def get(self, user_id: uuid.UUID, now: float | None = None) -> Entry | None:
        entry = self._entries.get(user_id)
        if entry is None:
            return None
        if entry.expires <= (time.monotonic() if now is None else now):
            del self._entries[user_id]
            return None
        return entry

    def put(self, user: UserRef, cabinets: tuple[Cabinet, ...], now: float | None = None) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()  # crude, but bounded; a region has ~20,000 users
        start = time.monotonic() if now is None else now
        self._entries[user.id] = Entry(user, cabinets, start + self.ttl)

    def forget(self, user_id: uuid.UUID) -> None:
        self._entries.pop(user_id, None)

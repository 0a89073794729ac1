"""A small per-process cache whose entries expire after a fixed number of seconds.

Used where a few seconds of staleness is already part of the design (see
accounts/cache.py). Every entry lives the same TTL, so insertion order is expiry order:
when full, the oldest entry goes (and an expired one would be first in line anyway).
"""

from __future__ import annotations

import time
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, ttl_seconds: float, max_entries: int) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K, now: float | None = None) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= (time.monotonic() if now is None else now):
            del self._entries[key]
            return None
        return found[1]

    def put(self, key: K, value: V, now: float | None = None) -> None:
        if self.ttl <= 0:
            return
        # Re-inserted at the end, so that the dict's order stays the expiry order.
        self._entries.pop(key, None)
        if len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
        start = time.monotonic() if now is None else now
        self._entries[key] = (start + self.ttl, value)

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

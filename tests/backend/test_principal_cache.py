"""The per-process caches expire, stay bounded, and can be switched off."""

from __future__ import annotations

import uuid

from backend.domain.accounts.access import UserRef
from backend.domain.accounts.cache import PrincipalCache
from backend.ttl_cache import TtlCache


def _user() -> UserRef:
    return UserRef(uuid.uuid4(), "x", "X")


def test_entries_expire_after_ttl() -> None:
    cache = PrincipalCache(5)
    user = _user()
    cache.put(user, (), now=100.0)
    assert cache.get(user.id, now=104.9) is not None
    assert cache.get(user.id, now=105.0) is None
    assert cache.get(user.id, now=104.0) is None  # an expired entry is dropped for good


def test_zero_ttl_disables_caching() -> None:
    cache = PrincipalCache(0)
    user = _user()
    cache.put(user, (), now=1.0)
    assert cache.get(user.id, now=1.0) is None


def test_forget() -> None:
    cache = PrincipalCache(60)
    user = _user()
    cache.put(user, ())
    cache.forget(user.id)
    assert cache.get(user.id) is None


def test_ttl_cache_drops_the_oldest_when_full() -> None:
    cache: TtlCache[int, str] = TtlCache(60, max_entries=2)
    cache.put(1, "a", now=0.0)
    cache.put(2, "b", now=0.0)
    assert cache.get(1, now=1.0) == "a"
    cache.put(3, "c", now=1.0)
    assert cache.get(1, now=1.0) is None and cache.get(3, now=1.0) == "c"
    assert cache.get(2, now=1.0) == "b"
    assert cache.get(3, now=61.0) is None

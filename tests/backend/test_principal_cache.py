"""The per-process principal cache expires, stays bounded, and can be switched off."""

from __future__ import annotations

import uuid

from backend.domain.accounts.access import UserRef
from backend.domain.accounts.cache import PrincipalCache


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

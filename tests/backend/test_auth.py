"""Auth: login, throttling, token forgery and expiry, refresh rotation and reuse, logout."""

from __future__ import annotations

import datetime as dt
import uuid

import jwt
import pytest
from sqlalchemy import update

from backend.db.models import User
from backend.domain.accounts.tokens import TokenCodec
from backend.errors import Unauthorized
from tests.backend.conftest import Env


async def test_login_returns_token_pair(env: Env) -> None:
    r = await env.client.post("/api/v1/auth/login", json={"login": "governor", "password": "demo"})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == env.settings.access_ttl_seconds
    assert body["access_token"] and body["refresh_token"]


async def test_wrong_password_and_unknown_login_look_the_same(env: Env) -> None:
    wrong = await env.client.post("/api/v1/auth/login", json={"login": "lawyer", "password": "x"})
    unknown = await env.client.post(
        "/api/v1/auth/login", json={"login": "nobody.here", "password": "x"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.headers["content-type"].startswith("application/problem+json")
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_repeated_failures_are_throttled(env: Env) -> None:
    login = f"ghost.{uuid.uuid4().hex[:8]}"
    codes = []
    for _ in range(env.settings.login_max_failures + 1):
        r = await env.client.post("/api/v1/auth/login", json={"login": login, "password": "nope"})
        codes.append(r.status_code)
    assert codes[:-1] == [401] * env.settings.login_max_failures
    assert codes[-1] == 429
    assert "retry-after" in r.headers


async def test_login_rejects_unknown_fields(env: Env) -> None:
    r = await env.client.post(
        "/api/v1/auth/login", json={"login": "governor", "password": "demo", "admin": True}
    )
    assert r.status_code == 422
    assert "admin" in r.text


async def test_requests_without_or_with_bad_tokens_are_401(env: Env) -> None:
    assert (await env.client.get("/api/v1/me")).status_code == 401
    bad = {"Authorization": "Bearer not-a-jwt"}
    assert (await env.client.get("/api/v1/me", headers=bad)).status_code == 401
    basic = {"Authorization": "Basic Z292ZXJub3I6ZGVtbw=="}
    assert (await env.client.get("/api/v1/me", headers=basic)).status_code == 401


async def test_forged_expired_and_alg_none_tokens_are_401(env: Env) -> None:
    me = await env.cabinets("governor")
    user_id = uuid.UUID(me["user"]["id"])
    now = dt.datetime.now(dt.UTC)
    forged = TokenCodec(b"some-other-key-of-thirty-two-byt", 900).issue(user_id, uuid.uuid4(), now)
    expired = env.app.state.services.tokens.issue(
        user_id, uuid.uuid4(), now - dt.timedelta(hours=2)
    )
    none_alg = jwt.encode(
        {
            "iss": "kabinet",
            "sub": str(user_id),
            "sid": str(uuid.uuid4()),
            "typ": "access",
            "iat": int(now.timestamp()),
            "exp": int(now.timestamp()) + 600,
        },
        None,
        algorithm="none",
    )
    for token in (forged, expired, none_alg):
        r = await env.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token
    r = await env.client.get("/api/v1/me", headers={"Authorization": f"Bearer {expired}"})
    assert "expired" in r.json()["detail"]


def test_a_remembered_token_still_expires_and_a_changed_one_is_not_found() -> None:
    codec = TokenCodec(b"k" * 32, 900)
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    issued = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
    token = codec.issue(user_id, session_id, issued)
    at = issued.timestamp()
    assert codec.decode(token, now=at + 1).user_id == user_id  # verified, remembered
    assert codec.decode(token, now=at + 899).session_id == session_id  # from memory
    with pytest.raises(Unauthorized, match="expired"):
        codec.decode(token, now=at + 900)  # exp is checked on every hit, not only once
    # One character of the signature changed: not the remembered token, so verified (and
    # refused) instead of found.
    head, _, sig = token.rpartition(".")
    tampered = f"{head}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}"
    with pytest.raises(Unauthorized, match="invalid"):
        codec.decode(tampered, now=at + 1)
    fresh = TokenCodec(b"k" * 32, 900)
    with pytest.raises(Unauthorized, match="expired"):
        fresh.decode(token, now=at + 900)  # the same answer without the memory


async def test_a_deactivated_user_is_refused_once_the_principal_is_loaded_again(
    env: Env,
) -> None:
    headers = await env.login("clerk")
    me = await env.client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200 and me.json()["cabinets"]
    user_id = uuid.UUID(me.json()["user"]["id"])
    async with env.engine.begin() as conn:
        await conn.execute(update(User).where(User.id == user_id).values(is_active=False))
    # The principal cache keeps a user for its seconds (accounts/cache.py); then the user
    # is read again, and an inactive one is refused with the token still valid.
    env.app.state.services.principals.forget(user_id)
    r = await env.client.get("/api/v1/me", headers=headers)
    assert r.status_code == 401 and "not active" in r.json()["detail"]
    async with env.engine.begin() as conn:
        await conn.execute(update(User).where(User.id == user_id).values(is_active=True))
    env.app.state.services.principals.forget(user_id)
    assert (await env.client.get("/api/v1/me", headers=headers)).json() == me.json()


async def test_refresh_rotates_and_reuse_revokes_the_login(env: Env) -> None:
    first = (
        await env.client.post("/api/v1/auth/login", json={"login": "clerk", "password": "demo"})
    ).json()
    r = await env.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert r.status_code == 200
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    # The rotated-out token presented again: reuse → the whole family is revoked.
    reuse = await env.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert reuse.status_code == 401
    assert "reused" in reuse.json()["detail"]
    after = await env.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert after.status_code == 401


async def test_refresh_with_unknown_token_is_401(env: Env) -> None:
    r = await env.client.post("/api/v1/auth/refresh", json={"refresh_token": "made-up"})
    assert r.status_code == 401


async def test_logout_revokes_refresh_tokens(env: Env) -> None:
    pair = (
        await env.client.post("/api/v1/auth/login", json={"login": "clerk", "password": "demo"})
    ).json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    assert (await env.client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
    r = await env.client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 401


async def test_me_lists_own_assistant_and_acting_cabinets(env: Env) -> None:
    gov = await env.cabinets("governor")
    assert gov["user"]["login"] == "governor"
    assert [c["role"] for c in gov["cabinets"]] == ["own"]
    assistant = await env.cabinets("assistant")
    roles = {c["role"]: c for c in assistant["cabinets"]}
    assert roles["assistant"]["position_id"] == gov["cabinets"][0]["position_id"]
    assert "decide" not in roles["assistant"]["rights"]
    assert "prepare_resolutions" in roles["assistant"]["rights"]


async def test_parallel_failures_cannot_pass_the_limit(env: Env) -> None:
    import asyncio

    login = f"ghost.{uuid.uuid4().hex[:8]}"
    tries = env.settings.login_max_failures * 2
    answers = await asyncio.gather(
        *(
            env.client.post("/api/v1/auth/login", json={"login": login, "password": f"p{i}"})
            for i in range(tries)
        )
    )
    codes = [r.status_code for r in answers]
    assert set(codes) <= {401, 429}
    assert codes.count(401) <= env.settings.login_max_failures

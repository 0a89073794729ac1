"""Access tokens (short-lived JWT, HS256) and opaque refresh tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

from backend.errors import Unauthorized
from backend.ttl_cache import TtlCache

ISSUER = "kabinet"
# Tokens verified once and remembered until they expire; a region has ~20,000 users,
# each with a token or two alive at a time.
VERIFIED_MAX = 50_000


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID


class TokenCodec:
    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        self._key = key
        self.ttl_seconds = ttl_seconds
        # Checking a token's HMAC and claims was 7 % of a queue request, and a tablet
        # sends the same token with every request for its 15 minutes. The full token
        # string is the key, signature included, so only the very token that was
        # verified is found; its own `exp` is checked again on every hit.
        self._verified: TtlCache[str, tuple[int, AccessClaims]] = TtlCache(
            ttl_seconds, VERIFIED_MAX
        )

    def issue(self, user_id: uuid.UUID, session_id: uuid.UUID, now: dt.datetime) -> str:
        payload = {
            "iss": ISSUER,
            "sub": str(user_id),
            "sid": str(session_id),
            "typ": "access",
            "iat": int(now.timestamp()),
            "exp": int(now.timestamp()) + self.ttl_seconds,
        }
        return jwt.encode(payload, self._key, algorithm="HS256")

    def decode(self, token: str, now: float | None = None) -> AccessClaims:
        at = time.time() if now is None else now
        known = self._verified.get(token)
        if known is not None:
            if at < known[0]:
                return known[1]
            raise Unauthorized("access token expired")
        claims, exp = self._verify(token, at)
        self._verified.put(token, (exp, claims))
        return claims

    def _verify(self, token: str, now: float) -> tuple[AccessClaims, int]:
        try:
            # The algorithm list is fixed: a token claiming "none" or RS256 is refused.
            payload = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "sid", "iss"], "verify_exp": False},
            )
            if payload.get("typ") != "access":
                raise Unauthorized("not an access token")
            exp = payload["exp"]
            if not isinstance(exp, int):
                raise Unauthorized("invalid access token")
            if now >= exp:
                raise Unauthorized("access token expired")
            claims = AccessClaims(uuid.UUID(payload["sub"]), uuid.UUID(payload["sid"]))
            return claims, exp
        except (jwt.InvalidTokenError, ValueError) as exc:
            raise Unauthorized("invalid access token") from exc


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    # Only the hash is stored: a database leak does not hand out sessions.
    return hashlib.sha256(token.encode()).hexdigest()

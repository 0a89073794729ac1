"""Access tokens (short-lived JWT, HS256) and opaque refresh tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass

import jwt

from backend.errors import Unauthorized

ISSUER = "kabinet"


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID


class TokenCodec:
    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        self._key = key
        self.ttl_seconds = ttl_seconds

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

    def decode(self, token: str) -> AccessClaims:
        try:
            # The algorithm list is fixed: a token claiming "none" or RS256 is refused.
            payload = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "sid", "iss"]},
            )
            if payload.get("typ") != "access":
                raise Unauthorized("not an access token")
            return AccessClaims(uuid.UUID(payload["sub"]), uuid.UUID(payload["sid"]))
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("access token expired") from exc
        except (jwt.InvalidTokenError, ValueError) as exc:
            raise Unauthorized("invalid access token") from exc


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    # Only the hash is stored: a database leak does not hand out sessions.
    return hashlib.sha256(token.encode()).hexdigest()

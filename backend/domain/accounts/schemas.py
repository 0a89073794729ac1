"""msgspec structs for auth and /me."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec


class LoginIn(msgspec.Struct, forbid_unknown_fields=True):
    login: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    device_name: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class RefreshIn(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class TokenOut(msgspec.Struct):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


class UserOut(msgspec.Struct):
    id: uuid.UUID
    login: str
    full_name: str


class CabinetOut(msgspec.Struct):
    position_id: uuid.UUID
    title: str
    organization: str
    role: str
    rights: list[str]


class MeOut(msgspec.Struct):
    user: UserOut
    cabinets: list[CabinetOut]

"""msgspec structs for the org directory."""

from __future__ import annotations

import uuid

import msgspec


class PositionOut(msgspec.Struct):
    position_id: uuid.UUID
    title: str
    organization: str
    holder: str | None


class PositionPage(msgspec.Struct):
    items: list[PositionOut]

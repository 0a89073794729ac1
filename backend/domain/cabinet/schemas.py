"""msgspec structs for the cabinet endpoints."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec


class FolderCount(msgspec.Struct):
    folder: str
    count: int
    overdue: int
    unread: int


class QueueItem(msgspec.Struct):
    item_id: uuid.UUID
    document_id: uuid.UUID
    kind: str
    folder: str
    title: str
    reg_number: str | None
    reg_date: dt.date | None
    author: str
    correspondent: str | None
    deadline: dt.date | None
    overdue: bool
    urgent: bool
    unread: bool
    pages: int
    received_at: dt.datetime
    expected_action: str
    access_level: str


class QueuePage(msgspec.Struct):
    items: list[QueueItem]
    next_cursor: str | None


class ReadIn(msgspec.Struct, forbid_unknown_fields=True):
    """The user opened this document in this cabinet."""

    document_id: uuid.UUID

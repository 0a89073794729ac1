"""msgspec structs at the HTTP edge for documents."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec

DocumentKind = Literal["incoming", "outgoing", "internal", "citizen_appeal", "npa", "instruction"]
AccessLevel = Literal["open", "dsp"]


class AddresseeIn(msgspec.Struct, forbid_unknown_fields=True):
    position_id: uuid.UUID
    mode: Literal["resolve", "info"] = "resolve"


class CorrespondentIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    kind: Literal["organization", "citizen", "federal"] = "organization"


class DocumentCardIn(msgspec.Struct, forbid_unknown_fields=True):
    """The `card` part of POST /documents."""

    position_id: uuid.UUID
    kind: DocumentKind
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    summary: Annotated[str, msgspec.Meta(max_length=20000)] | None = None
    access_level: AccessLevel = "open"
    correspondent: CorrespondentIn | None = None
    addressees: list[AddresseeIn] = []
    journal_id: uuid.UUID | None = None
    outgoing_number: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    outgoing_date: dt.date | None = None
    deadline: dt.date | None = None
    urgent: bool = False


class FileOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    mime: str
    size: int
    sha256: str
    version: int
    pages: int
    role: str


class PositionRef(msgspec.Struct):
    position_id: uuid.UUID
    title: str
    organization: str


class AddresseeOut(msgspec.Struct):
    position_id: uuid.UUID
    title: str
    mode: str


class HistoryOut(msgspec.Struct):
    at: dt.datetime
    action: str
    user: str | None
    position_id: uuid.UUID | None
    actor_role: str | None
    details: dict[str, object]


class DocumentCardOut(msgspec.Struct):
    id: uuid.UUID
    kind: str
    title: str
    summary: str | None
    state: str
    reg_number: str | None
    reg_date: dt.date | None
    access_level: str
    urgent: bool
    deadline: dt.date | None
    author: PositionRef
    correspondent: str | None
    addressees: list[AddresseeOut]
    files: list[FileOut]
    # Filled by the workflow and signing parts: the route of a draft, its signatures and
    # the resolution tree. Empty until those exist for this document.
    route: dict[str, object] | None
    signatures: list[dict[str, object]]
    resolutions: list[dict[str, object]]
    history: list[HistoryOut]
    created_at: dt.datetime

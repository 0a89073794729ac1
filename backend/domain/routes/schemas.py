"""msgspec structs at the HTTP edge for routes, versions and visas."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec

Sha256 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
Comment = Annotated[str, msgspec.Meta(max_length=10000)]


class StageIn(msgspec.Struct, forbid_unknown_fields=True):
    approvers: Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=50)]
    deadline_days: Annotated[int, msgspec.Meta(ge=1, le=60)] = 3


class RouteIn(msgspec.Struct, forbid_unknown_fields=True):
    stages: Annotated[list[StageIn], msgspec.Meta(max_length=20)]
    signatories: Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=10)]
    journal_id: uuid.UUID


class VisaIn(msgspec.Struct, forbid_unknown_fields=True):
    position_id: uuid.UUID
    decision: Literal["approved", "approved_with_remarks", "rejected"]
    file_sha256: Sha256
    comment: Comment | None = None


class ForwardIn(msgspec.Struct, forbid_unknown_fields=True):
    position_id: uuid.UUID
    to_position_id: uuid.UUID
    note: Comment | None = None


class ApproverOut(msgspec.Struct):
    position_id: uuid.UUID
    title: str
    decision: str | None
    comment: str | None
    decided_at: dt.datetime | None
    decided_by: str | None
    actor_role: str | None
    auto: bool
    file_sha256: str | None
    file_version: int | None
    stale: bool


class StageOut(msgspec.Struct):
    index: int
    state: str
    deadline_days: int
    deadline: dt.date | None
    approvers: list[ApproverOut]


class SignatoryOut(msgspec.Struct):
    position_id: uuid.UUID
    title: str
    order: int
    state: str
    signed_at: dt.datetime | None
    file_sha256: str | None
    actor_role: str | None


class RouteOut(msgspec.Struct):
    id: uuid.UUID
    document_id: uuid.UUID
    state: str
    current_stage: int | None
    journal_id: uuid.UUID | None
    stages: list[StageOut]
    signatories: list[SignatoryOut]


class VisaOut(msgspec.Struct):
    id: uuid.UUID
    document_id: uuid.UUID
    position_id: uuid.UUID
    decision: str
    comment: str | None
    decided_at: dt.datetime
    actor_role: str
    file_sha256: str
    file_version: int
    stage: int
    route_state: str


class VersionOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    mime: str
    size: int
    sha256: str
    version: int
    pages: int
    stale_visas: int
    reasked: list[uuid.UUID]


class ForwardOut(msgspec.Struct):
    document_id: uuid.UUID
    from_position_id: uuid.UUID
    to_position_id: uuid.UUID
    at: dt.datetime

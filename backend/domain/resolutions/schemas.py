"""msgspec structs at the HTTP edge for resolutions, assignments and templates."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import msgspec

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=10000)]
Comment = Annotated[str, msgspec.Meta(max_length=10000)]


class ExecutorIn(msgspec.Struct, forbid_unknown_fields=True):
    position_id: uuid.UUID
    responsible: bool = False


Executors = Annotated[list[ExecutorIn], msgspec.Meta(min_length=1, max_length=50)]


class ResolutionIn(msgspec.Struct, forbid_unknown_fields=True):
    position_id: uuid.UUID
    text: Text
    executors: Executors
    deadline: dt.date | None = None
    on_control: bool = False
    controller_id: uuid.UUID | None = None
    parent_id: uuid.UUID | None = None
    draft: bool = False


class IssueIn(msgspec.Struct, forbid_unknown_fields=True):
    """Issue a draft as is, or with any of these edits."""

    text: Text | None = None
    executors: Executors | None = None
    deadline: dt.date | None = None
    on_control: bool | None = None
    controller_id: uuid.UUID | None = None


class CommentIn(msgspec.Struct, forbid_unknown_fields=True):
    comment: Comment | None = None


class ReturnIn(msgspec.Struct, forbid_unknown_fields=True):
    """What to rework: returning a draft to the assistant needs a comment."""

    comment: Text


class ReportIn(msgspec.Struct, forbid_unknown_fields=True):
    text: Text


class TemplateIn(msgspec.Struct, forbid_unknown_fields=True):
    position_id: uuid.UUID
    text: Text


class TemplateOut(msgspec.Struct):
    id: uuid.UUID
    position_id: uuid.UUID
    text: str


class AssignmentOut(msgspec.Struct):
    id: uuid.UUID
    resolution_id: uuid.UUID
    document_id: uuid.UUID
    executor_position_id: uuid.UUID
    executor: str
    responsible: bool
    state: str
    deadline: dt.date | None
    overdue: bool
    on_control: bool
    controller_position_id: uuid.UUID | None
    report_text: str | None
    reported_at: dt.datetime | None
    accepted: bool | None
    review_comment: str | None
    removed_from_control_at: dt.datetime | None


class ResolutionOut(msgspec.Struct):
    id: uuid.UUID
    document_id: uuid.UUID
    parent_id: uuid.UUID | None
    author_position_id: uuid.UUID
    author: str
    state: str
    text: str
    deadline: dt.date | None
    on_control: bool
    controller_position_id: uuid.UUID | None
    prepared_by: str | None
    decided_by: str | None
    actor_role: str | None
    comment: str | None
    created_at: dt.datetime
    issued_at: dt.datetime | None
    planned_executors: list[dict[str, object]]
    assignments: list[AssignmentOut]
    children: list[ResolutionOut] = []

"""Typed SQLAlchemy 2 models: the whole schema in one module, grouped by area.

Folders of a cabinet are fed by one table, `cabinet_items`: every thing that waits for a
position (a visa step, a signature, a document to resolve, a draft resolution, an
assignment, a controlled assignment, a document for information) is one row. Workflow code
opens and closes rows in the same transaction as the decision, so `/folders` and `/queue`
are two index range scans whatever the size of the archive.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnClause
from sqlalchemy.types import TypeDecorator, Uuid

from backend.db.ids import new_id


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which keeps no offset) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        # asyncpg decodes every timestamptz as an aware datetime in UTC already (only its
        # ±infinity come back naive, and nothing here stores those): on PostgreSQL the
        # conversion above is an identity, paid ~20 times by every queue page.
        if dialect.driver == "asyncpg":
            return None
        return super().result_processor(dialect, coltype)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UtcDateTime, uuid.UUID: Uuid, dict[str, Any]: JSON}


def _pk() -> Mapped[uuid.UUID]:
    return mapped_column(Uuid, primary_key=True, default=new_id)


# --- organisations and people -------------------------------------------------------------


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[uuid.UUID] = _pk()
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(String(500))
    short_name: Mapped[str] = mapped_column(String(200))
    # government | administration | ministry | municipality | department
    kind: Mapped[str] = mapped_column(String(32))


class Position(Base):
    """A node of the org tree (должностное лицо). Decisions are made by positions."""

    __tablename__ = "positions"
    id: Mapped[uuid.UUID] = _pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("positions.id"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    is_executive: Mapped[bool] = mapped_column(Boolean, default=False)
    # Cleared for "ДСП" (for official use) documents.
    dsp_cleared: Mapped[bool] = mapped_column(Boolean, default=False)
    is_clerk: Mapped[bool] = mapped_column(Boolean, default=False)


class User(Base):
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = _pk()
    login: Mapped[str] = mapped_column(String(100), unique=True)
    full_name: Mapped[str] = mapped_column(String(300))
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PositionHolder(Base):
    """A user holds a position: that position's cabinet is the user's own cabinet."""

    __tablename__ = "position_holders"
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    position_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("positions.id"), primary_key=True, index=True
    )


class CabinetAccess(Base):
    """A user's access to another position's cabinet: an assistant, or acting for a period."""

    __tablename__ = "cabinet_access"
    id: Mapped[uuid.UUID] = _pk()
    position_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("positions.id"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # assistant | acting
    # read, prepare_resolutions, decide (act in the executive's name)
    rights: Mapped[list[str]] = mapped_column(JSON, default=list)
    valid_from: Mapped[dt.datetime | None] = mapped_column()
    valid_to: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RefreshToken(Base):
    """One refresh token of a login session (family). Rotation marks the old one used;
    presenting a used one again revokes the whole family (reuse detection)."""

    __tablename__ = "refresh_tokens"
    id: Mapped[uuid.UUID] = _pk()
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    device_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    used_at: Mapped[dt.datetime | None] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()


class LoginFailure(Base):
    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    login: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    __table_args__ = (Index("ix_login_failures_login_at", "login", "at"),)


# --- documents ------------------------------------------------------------------------------


class Journal(Base):
    """A registration journal and its number format, e.g. `01-12/{seq}` → `01-12/345`."""

    __tablename__ = "journals"
    id: Mapped[uuid.UUID] = _pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(32))
    number_format: Mapped[str] = mapped_column(String(100))
    year: Mapped[int] = mapped_column(Integer)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)


class Correspondent(Base):
    __tablename__ = "correspondents"
    id: Mapped[uuid.UUID] = _pk()
    name: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(32))  # organization | citizen | federal


class Document(Base):
    """A registration card (РК) or a draft (РКПД) of any kind."""

    __tablename__ = "documents"
    id: Mapped[uuid.UUID] = _pk()
    # incoming | outgoing | internal | citizen_appeal | npa | instruction
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(1000))
    summary: Mapped[str | None] = mapped_column(Text)
    # open | dsp. Set at creation and never changed: cached queue pages and folder counts
    # of viewers not cleared for ДСП rely on it (cabinet/services.py, _stamp_columns).
    access_level: Mapped[str] = mapped_column(String(8), default="open")
    # draft | on_route | signed | registered | closed
    state: Mapped[str] = mapped_column(String(16))
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    author_position_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("positions.id"), index=True)
    created_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    correspondent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("correspondents.id"))
    journal_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("journals.id"))
    reg_number: Mapped[str | None] = mapped_column(String(100))
    reg_seq: Mapped[int | None] = mapped_column(Integer)
    reg_date: Mapped[dt.date | None] = mapped_column(Date)
    outgoing_number: Mapped[str | None] = mapped_column(String(100))
    outgoing_date: Mapped[dt.date | None] = mapped_column(Date)
    deadline: Mapped[dt.date | None] = mapped_column(Date)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    __table_args__ = (
        # No duplicate number in one journal, even under concurrent registration.
        UniqueConstraint("journal_id", "reg_seq", name="uq_documents_journal_seq"),
    )


class DocumentAddressee(Base):
    __tablename__ = "document_addressees"
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    position_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("positions.id"), primary_key=True)
    mode: Mapped[str] = mapped_column(String(8))  # resolve | info


class DocumentFile(Base):
    """One immutable version of a document's file; `slot_id` groups the versions of one file.

    The API's file id is this row's id, so a page URL names an exact version and can be
    cached forever. Bytes live content-addressed by sha256 in the data dir.
    """

    __tablename__ = "document_files"
    id: Mapped[uuid.UUID] = _pk()
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id"))
    slot_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    role: Mapped[str] = mapped_column(String(16))  # main | attachment
    name: Mapped[str] = mapped_column(String(300))
    mime: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    pages: Mapped[int] = mapped_column(Integer)
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    __table_args__ = (
        Index("ix_document_files_document", "document_id", "is_current"),
        UniqueConstraint("slot_id", "version", name="uq_document_files_slot_version"),
    )


# --- cabinet --------------------------------------------------------------------------------

FOLDERS = ("sign", "visa", "resolve", "drafts", "execute", "control", "info")


# Compare CabinetItem.state with this, not with a bound 'open': written into the SQL, it
# lets PostgreSQL match the partial indexes below (WHERE state = 'open') in the generic
# plan of a prepared statement instead of planning every execution.
ITEM_OPEN: ColumnClause[str] = literal_column("'open'")


class CabinetItem(Base):
    """One thing waiting in a position's folder. Closed (state=done) rows stay as history
    and keep the document visible to that position."""

    __tablename__ = "cabinet_items"
    id: Mapped[uuid.UUID] = _pk()
    position_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("positions.id"))
    folder: Mapped[str] = mapped_column(String(16))
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id"))
    # What produced the item (route step, resolution, assignment); filled by workflow.
    ref_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    state: Mapped[str] = mapped_column(String(8), default="open")  # open | done
    expected_action: Mapped[str] = mapped_column(String(32))
    deadline: Mapped[dt.date | None] = mapped_column(Date)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    unread: Mapped[bool] = mapped_column(Boolean, default=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    done_at: Mapped[dt.datetime | None] = mapped_column()
    __table_args__ = (
        # The queue: WHERE position_id, folder, open ORDER BY received_at DESC, id DESC.
        Index(
            "ix_cabinet_items_queue",
            "position_id",
            "folder",
            "received_at",
            "id",
            postgresql_where=text("state = 'open'"),
            sqlite_where=text("state = 'open'"),
        ),
        # Folder counts: an index-only scan grouped by folder, deadline and unread inside.
        Index(
            "ix_cabinet_items_counts",
            "position_id",
            "folder",
            "deadline",
            "unread",
            postgresql_where=text("state = 'open'"),
            sqlite_where=text("state = 'open'"),
        ),
        # Visibility checks: may this position see this document?
        Index("ix_cabinet_items_document_position", "document_id", "position_id"),
        # Closing the item of an answered approval or assignment (every decision does).
        Index(
            "ix_cabinet_items_ref",
            "ref_id",
            postgresql_where=text("state = 'open'"),
            sqlite_where=text("state = 'open'"),
        ),
    )


class CabinetMark(Base):
    """A cabinet's change counter: every transaction that opens, closes or re-flags items
    of a position adds one, before its commit, to one of the position's slots (chosen at
    random, so that busy cabinets' decisions seldom wait on one row: see
    backend/domain/cabinet/marks.py). The slots' sum only grows; folder counts are cached
    per process against it, so a count is recomputed only after a change."""

    __tablename__ = "cabinet_marks"
    position_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("positions.id"), primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))


# --- audit -----------------------------------------------------------------------


class AuditEvent(Base):
    """Append-only: never updated nor deleted. A document's count of events is its
    revision, which cached cards and queue pages are checked against (deleting one and
    adding one would hide a change)."""

    __tablename__ = "audit_events"
    id: Mapped[uuid.UUID] = _pk()
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    # The position whose cabinet the decision was made in, and the one actually acting
    # (an assistant or an acting deputy), so history shows "on whose behalf".
    position_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    document_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    __table_args__ = (Index("ix_audit_events_document_at", "document_id", "at"),)


# --- workflow: routes and visas ---------------------------------------------------------------


class Route(Base):
    """The approval route of a draft: stages of parallel approvers, then signatories, then
    registration in `journal_id`. A returned route is superseded by a new one when the author
    sets the route again; the latest row is the document's current route.

    `version` is bumped by every decision on the route: that UPDATE is also the row lock that
    serialises decisions on one route, so a stage completes exactly once."""

    __tablename__ = "routes"
    id: Mapped[uuid.UUID] = _pk()
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id"))
    # draft | active | signing | returned | completed | superseded | cancelled
    state: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=1)
    current_stage: Mapped[int | None] = mapped_column(Integer)
    journal_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("journals.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[dt.datetime | None] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    __table_args__ = (Index("ix_routes_document", "document_id", "created_at"),)


class RouteStage(Base):
    __tablename__ = "route_stages"
    id: Mapped[uuid.UUID] = _pk()
    route_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("routes.id"))
    index: Mapped[int] = mapped_column(Integer)
    deadline_days: Mapped[int] = mapped_column(Integer)
    # pending | active | done | rejected
    state: Mapped[str] = mapped_column(String(16), default="pending")
    started_at: Mapped[dt.datetime | None] = mapped_column()
    # The last working day to answer (region calendar) and the moment it ends: the
    # auto-visa job acts at `due_at`.
    deadline: Mapped[dt.date | None] = mapped_column(Date)
    due_at: Mapped[dt.datetime | None] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    # When the reminder the working day before the deadline went out: once per stage.
    reminded_at: Mapped[dt.datetime | None] = mapped_column()
    __table_args__ = (
        UniqueConstraint("route_id", "index", name="uq_route_stages_route_index"),
        # The auto-visa job: active stages by due moment.
        Index(
            "ix_route_stages_due",
            "due_at",
            postgresql_where=text("state = 'active'"),
            sqlite_where=text("state = 'active'"),
        ),
    )


class RouteApprover(Base):
    """A position that must visa a stage (the plan; `approvals` are the answers asked)."""

    __tablename__ = "route_approvers"
    stage_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("route_stages.id"), primary_key=True)
    position_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("positions.id"), primary_key=True)


class Approval(Base):
    """One request for a visa and its answer. A new file version marks decided approvals
    `stale` and asks the current stage again with new rows, so history keeps every answer."""

    __tablename__ = "approvals"
    id: Mapped[uuid.UUID] = _pk()
    route_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("routes.id"))
    stage_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("route_stages.id"))
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id"))
    position_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("positions.id"))
    # NULL while waiting; approved | approved_with_remarks | rejected
    decision: Mapped[str | None] = mapped_column(String(24))
    comment: Mapped[str | None] = mapped_column(Text)
    asked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column()
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    # own | acting | assistant — on whose behalf the user decided
    actor_role: Mapped[str | None] = mapped_column(String(16))
    auto: Mapped[bool] = mapped_column(Boolean, default=False)
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    file_version: Mapped[int | None] = mapped_column(Integer)
    stale: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (
        Index("ix_approvals_route", "route_id", "stage_id"),
        # Who is asked at this stage: every visa, auto-visa and reminder looks up by stage.
        Index("ix_approvals_stage", "stage_id"),
        # At most one live (not stale) request per position and stage.
        Index(
            "uq_approvals_live",
            "stage_id",
            "position_id",
            unique=True,
            postgresql_where=text("NOT stale"),
            sqlite_where=text("stale = 0"),
        ),
    )


class RouteSignatory(Base):
    """A signatory step; completed by the signing flow (`complete_signatory_step`)."""

    __tablename__ = "route_signatories"
    id: Mapped[uuid.UUID] = _pk()
    route_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("routes.id"))
    order: Mapped[int] = mapped_column(Integer)
    position_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("positions.id"))
    # pending | waiting | signed
    state: Mapped[str] = mapped_column(String(16), default="pending")
    signed_at: Mapped[dt.datetime | None] = mapped_column()
    signed_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    actor_role: Mapped[str | None] = mapped_column(String(16))
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    signature_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    __table_args__ = (UniqueConstraint("route_id", "order", name="uq_route_signatories_order"),)


# --- workflow: resolutions and assignments ------------------------------------------------------


class Resolution(Base):
    __tablename__ = "resolutions"
    id: Mapped[uuid.UUID] = _pk()
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id"))
    # A resolution under the parent's assignment (a minister's under the governor's).
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("resolutions.id"))
    author_position_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("positions.id"))
    # The assistant who prepared a draft (NULL when the executive wrote it).
    prepared_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    actor_role: Mapped[str | None] = mapped_column(String(16))
    # draft | returned (to the assistant for rework) | issued | rejected | cancelled
    state: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    deadline: Mapped[dt.date | None] = mapped_column(Date)
    on_control: Mapped[bool] = mapped_column(Boolean, default=False)
    controller_position_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("positions.id"))
    # Executors planned by a draft, applied when it is issued: [{position_id, responsible}].
    planned_executors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    issued_at: Mapped[dt.datetime | None] = mapped_column()
    closed_at: Mapped[dt.datetime | None] = mapped_column()
    __table_args__ = (Index("ix_resolutions_document", "document_id", "created_at"),)


class Assignment(Base):
    """One executor's part of an issued resolution (поручение)."""

    __tablename__ = "assignments"
    id: Mapped[uuid.UUID] = _pk()
    resolution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("resolutions.id"), index=True)
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id"))
    executor_position_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("positions.id"))
    responsible: Mapped[bool] = mapped_column(Boolean, default=False)
    # open | reported | executed | cancelled
    state: Mapped[str] = mapped_column(String(16), default="open")
    deadline: Mapped[dt.date | None] = mapped_column(Date)
    on_control: Mapped[bool] = mapped_column(Boolean, default=False)
    controller_position_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("positions.id"))
    report_text: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[dt.datetime | None] = mapped_column()
    reported_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    accepted: Mapped[bool | None] = mapped_column(Boolean)
    review_comment: Mapped[str | None] = mapped_column(Text)
    accepted_at: Mapped[dt.datetime | None] = mapped_column()
    removed_from_control_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Notifications sent once each by the jobs: the day before the deadline, and overdue.
    reminded_at: Mapped[dt.datetime | None] = mapped_column()
    overdue_notified_at: Mapped[dt.datetime | None] = mapped_column()
    __table_args__ = (
        Index("ix_assignments_executor", "executor_position_id", "state"),
        # The card's resolution tree reads a document's assignments.
        Index("ix_assignments_document", "document_id"),
        # The reminder and overdue jobs: open assignments not yet notified, by deadline.
        Index(
            "ix_assignments_remind_due",
            "deadline",
            postgresql_where=text("state = 'open' AND reminded_at IS NULL"),
            sqlite_where=text("state = 'open' AND reminded_at IS NULL"),
        ),
        Index(
            "ix_assignments_overdue_due",
            "deadline",
            postgresql_where=text("state = 'open' AND overdue_notified_at IS NULL"),
            sqlite_where=text("state = 'open' AND overdue_notified_at IS NULL"),
        ),
    )


class ResolutionTemplate(Base):
    """A frequent resolution text of one executive (e.g. «Прошу подготовить ответ»)."""

    __tablename__ = "resolution_templates"
    id: Mapped[uuid.UUID] = _pk()
    position_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("positions.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# --- production calendar ----------------------------------------------------------------------


class CalendarDay(Base):
    """An exception to the Monday–Friday week: a non-working weekday (holiday, transferred
    day off) or a working weekend day (a transferred working Saturday)."""

    __tablename__ = "calendar_days"
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    working: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(String(200))


# --- idempotency and outbox ---------------------------------------------------------------------


class IdempotencyRecord(Base):
    """The first answer to a decision POST with an `Idempotency-Key`, written in the same
    transaction as the decision: a replay returns it; another body with the key is 422."""

    __tablename__ = "idempotency_records"
    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    __table_args__ = (
        UniqueConstraint("user_id", "key", name="uq_idempotency_user_key"),
        # The expiry job deletes the oldest first.
        Index("ix_idempotency_records_created", "created_at"),
    )


class OutboxEvent(Base):
    """A transactional outbox row, written with the decision; the push worker consumes it."""

    __tablename__ = "outbox_events"
    id: Mapped[uuid.UUID] = _pk()
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    available_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    done_at: Mapped[dt.datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        Index(
            "ix_outbox_events_pending",
            "available_at",
            postgresql_where=text("done_at IS NULL"),
            sqlite_where=text("done_at IS NULL"),
        ),
    )


# --- signing ------------------------------------------------------------------------------------


class SigningKey(Base):
    """A signing key certified by the internal CA: a device key (WebCrypto, the private key
    never leaves the device) or a cloud key behind PKCS#11 unlocked by the user's PIN."""

    __tablename__ = "signing_keys"
    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    method: Mapped[str] = mapped_column(String(16))  # device | cloud
    device_name: Mapped[str | None] = mapped_column(String(200))
    public_key_spki: Mapped[bytes] = mapped_column(LargeBinary)
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    certificate_serial: Mapped[str] = mapped_column(String(64), unique=True)
    not_before: Mapped[dt.datetime] = mapped_column()
    not_after: Mapped[dt.datetime] = mapped_column()
    # Cloud keys: where the key lives in the PKCS#11 module.
    token_label: Mapped[str | None] = mapped_column(String(64))
    key_label: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SignBatch(Base):
    __tablename__ = "sign_batches"
    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    position_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("positions.id"))
    key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("signing_keys.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SignRequest(Base):
    """A one-time, short-lived request to sign exact bytes (the CMS signed attributes of one
    file version), bound to user, position, document, file sha256 and key."""

    __tablename__ = "sign_requests"
    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    position_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("positions.id"))
    actor_role: Mapped[str] = mapped_column(String(16))
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id"), index=True)
    file_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("document_files.id"))
    file_sha256: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("signing_keys.id"))
    batch_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sign_batches.id"), index=True)
    to_be_signed: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[dt.datetime] = mapped_column()
    used_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Signature(Base):
    """A detached CMS (CAdES-BES) over one exact file version."""

    __tablename__ = "signatures"
    id: Mapped[uuid.UUID] = _pk()
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id"), index=True)
    file_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("document_files.id"))
    file_sha256: Mapped[str] = mapped_column(String(64))
    position_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("positions.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    actor_role: Mapped[str] = mapped_column(String(16))
    key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("signing_keys.id"))
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sign_requests.id"), unique=True)
    cms_der: Mapped[bytes] = mapped_column(LargeBinary)
    certificate_serial: Mapped[str] = mapped_column(String(64))
    signing_time: Mapped[dt.datetime] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# --- push -----------------------------------------------------------------------------------


class PushSubscription(Base):
    """A browser's Web Push subscription (one per user and device)."""

    __tablename__ = "push_subscriptions"
    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    endpoint: Mapped[str] = mapped_column(Text)
    endpoint_hash: Mapped[str] = mapped_column(String(64), unique=True)
    p256dh: Mapped[str] = mapped_column(String(200))
    auth: Mapped[str] = mapped_column(String(100))
    device_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_success_at: Mapped[dt.datetime | None] = mapped_column()


class NotificationSettings(Base):
    """Per-user choices: kinds switched off and quiet hours (region time)."""

    __tablename__ = "notification_settings"
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    disabled_kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    quiet_from: Mapped[dt.time | None] = mapped_column(Time)
    quiet_to: Mapped[dt.time | None] = mapped_column(Time)


class PushDelivery(Base):
    """One notification to one subscription: claimed by workers with SKIP LOCKED, retried
    with backoff, its outcome recorded."""

    __tablename__ = "push_deliveries"
    id: Mapped[uuid.UUID] = _pk()
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("outbox_events.id"))
    # SET NULL: a dead subscription is deleted, its deliveries' history stays.
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("push_subscriptions.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    urgency: Mapped[str] = mapped_column(String(16))
    ttl: Mapped[int] = mapped_column(Integer)
    topic: Mapped[str | None] = mapped_column(String(32))
    # pending | delivered | gone | failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_http_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column()
    __table_args__ = (
        Index(
            "ix_push_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        UniqueConstraint("event_id", "subscription_id", name="uq_push_deliveries_event_sub"),
    )

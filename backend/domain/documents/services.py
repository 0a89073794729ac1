"""Creating documents (with registration in a journal) and reading their cards."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import msgspec
from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from backend.clock import region_today
from backend.db.fastread import AnySelect, fetch_together
from backend.db.ids import new_id
from backend.db.models import (
    AuditEvent,
    CabinetItem,
    Correspondent,
    Document,
    DocumentAddressee,
    DocumentFile,
    Journal,
    Organization,
    Position,
    User,
)
from backend.domain.accounts.access import Principal
from backend.domain.audit.services import record
from backend.domain.documents import schemas
from backend.domain.documents.visibility import visible_revision_with
from backend.domain.files.formats import inspect_file
from backend.domain.files.storage import BlobStore
from backend.errors import Forbidden, Invalid, NotFound
from backend.settings import Settings, get_settings

REGISTERED_ON_CREATE = ("incoming", "citizen_appeal", "instruction")


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str | None
    stream: IO[bytes]


@dataclass(frozen=True)
class StoredFile:
    name: str
    mime: str
    size: int
    sha256: str
    pages: int


def store_upload(blobs: BlobStore, settings: Settings, upload: Upload) -> StoredFile:
    """Blocking (hashing, PDF parsing): run in a worker thread."""
    name = Path(upload.filename or "file").name[:300] or "file"
    tmp, sha, size = blobs.spool(upload.stream, settings.max_upload_bytes)
    try:
        if size == 0:
            raise Invalid(f"file '{name}' is empty")
        info = inspect_file(
            tmp, name, upload.content_type, settings.max_pages, settings.max_image_pixels
        )
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    blobs.commit(tmp, sha)
    return StoredFile(name, info.mime, size, sha, info.pages)


async def next_registration_number(session: AsyncSession, journal_id: uuid.UUID) -> tuple[str, int]:
    """Take the journal's next number inside the caller's transaction.

    The UPDATE locks the journal row until commit, so concurrent registrations queue up:
    no duplicates, and a rolled-back registration gives its number back (no gaps).
    """
    row = (
        await session.execute(
            update(Journal)
            .where(Journal.id == journal_id)
            .values(last_seq=Journal.last_seq + 1)
            .returning(Journal.last_seq, Journal.number_format)
        )
    ).one_or_none()
    if row is None:
        raise Invalid("unknown journal", field="journal_id")
    seq, fmt = row
    return fmt.replace("{seq}", str(seq)), seq


async def create_document(
    session: AsyncSession,
    principal: Principal,
    card: schemas.DocumentCardIn,
    files: list[StoredFile],
    now: dt.datetime,
    today: dt.date,
) -> Document:
    cabinet = principal.cabinet(card.position_id, "decide")
    author = await session.get(Position, card.position_id)
    assert author is not None  # the cabinet came from this row
    if card.access_level == "dsp" and not cabinet.dsp_cleared:
        raise Forbidden("this position is not cleared for ДСП documents")

    addressee_ids = [a.position_id for a in card.addressees]
    if len(set(addressee_ids)) != len(addressee_ids):
        raise Invalid("an addressee is listed twice", field="addressees")
    if addressee_ids:
        found = {
            p.id: p
            for p in await session.scalars(select(Position).where(Position.id.in_(addressee_ids)))
        }
        missing = [str(i) for i in addressee_ids if i not in found]
        if missing:
            raise Invalid(f"unknown addressee positions: {', '.join(missing)}", field="addressees")
        if card.access_level == "dsp":
            uncleared = [p.title for p in found.values() if not p.dsp_cleared]
            if uncleared:
                raise Invalid(
                    "addressees not cleared for ДСП: " + "; ".join(uncleared), field="addressees"
                )

    doc = Document(
        id=new_id(),
        kind=card.kind,
        title=card.title,
        summary=card.summary,
        access_level=card.access_level,
        state="draft",
        organization_id=author.organization_id,
        author_position_id=author.id,
        created_by_id=principal.user.id,
        outgoing_number=card.outgoing_number,
        outgoing_date=card.outgoing_date,
        deadline=card.deadline,
        urgent=card.urgent,
        created_at=now,
    )
    if card.correspondent is not None:
        corr = Correspondent(
            id=new_id(), name=card.correspondent.name, kind=card.correspondent.kind
        )
        session.add(corr)
        doc.correspondent_id = corr.id

    if card.journal_id is not None:
        if not author.is_clerk:
            raise Forbidden("only a clerk's position registers documents in a journal")
        if not addressee_ids:
            raise Invalid("a registered document needs at least one addressee", field="addressees")
        journal_org = await session.scalar(
            select(Journal.organization_id).where(Journal.id == card.journal_id)
        )
        if journal_org != author.organization_id:
            raise Invalid("unknown journal for this organisation", field="journal_id")
        doc.reg_number, doc.reg_seq = await next_registration_number(session, card.journal_id)
        doc.journal_id = card.journal_id
        doc.reg_date = today
        doc.state = "registered"
    elif card.kind in REGISTERED_ON_CREATE:
        raise Invalid(
            f"a document of kind '{card.kind}' is registered: give journal_id", field="journal_id"
        )

    session.add(doc)
    await session.flush()
    for index, f in enumerate(files):
        session.add(
            DocumentFile(
                id=new_id(),
                document_id=doc.id,
                slot_id=new_id(),
                role="main" if index == 0 else "attachment",
                name=f.name,
                mime=f.mime,
                size=f.size,
                sha256=f.sha256,
                version=1,
                pages=f.pages,
                created_at=now,
                created_by_id=principal.user.id,
            )
        )
    for a in card.addressees:
        session.add(DocumentAddressee(document_id=doc.id, position_id=a.position_id, mode=a.mode))
        if doc.state == "registered":
            session.add(
                CabinetItem(
                    id=new_id(),
                    position_id=a.position_id,
                    folder=a.mode,
                    document_id=doc.id,
                    expected_action="resolve" if a.mode == "resolve" else "read",
                    deadline=card.deadline,
                    urgent=card.urgent,
                    received_at=now,
                )
            )
    record(
        session,
        action="document.registered" if doc.state == "registered" else "document.created",
        user_id=principal.user.id,
        position_id=cabinet.position_id,
        actor_role=cabinet.role,
        document_id=doc.id,
        object_type="document",
        object_id=doc.id,
        details={"reg_number": doc.reg_number, "files": [f.sha256 for f in files]},
        at=now,
    )
    # The caller commits (with the idempotency record of the request).
    await session.flush()
    return doc


@lru_cache(maxsize=1)
def _header_statement() -> AnySelect:
    """The document's own fields with its author's title and organisation and the
    correspondent's name, in one statement."""
    return (
        select(
            Document.kind,
            Document.title,
            Document.summary,
            Document.state,
            Document.reg_number,
            Document.reg_date,
            Document.access_level,
            Document.urgent,
            Document.deadline,
            Document.author_position_id,
            Position.title,
            Organization.short_name,
            Correspondent.name,
            Document.created_at,
        )
        .join(Position, Position.id == Document.author_position_id)
        .join(Organization, Organization.id == Position.organization_id)
        .outerjoin(Correspondent, Correspondent.id == Document.correspondent_id)
        .where(Document.id == bindparam("document_id", type_=Uuid()))
    )


@lru_cache(maxsize=1)
def _files_statement() -> AnySelect:
    return (
        select(
            DocumentFile.id,
            DocumentFile.name,
            DocumentFile.mime,
            DocumentFile.size,
            DocumentFile.sha256,
            DocumentFile.version,
            DocumentFile.pages,
            DocumentFile.role,
        )
        .where(
            DocumentFile.document_id == bindparam("document_id", type_=Uuid()),
            DocumentFile.is_current.is_(True),
        )
        .order_by(DocumentFile.id)
    )


@lru_cache(maxsize=1)
def _addressees_statement() -> Select[uuid.UUID, str, str]:
    return (
        select(DocumentAddressee.position_id, Position.title, DocumentAddressee.mode)
        .join(Position, Position.id == DocumentAddressee.position_id)
        .where(DocumentAddressee.document_id == bindparam("document_id", type_=Uuid()))
        .order_by(Position.title)
    )


@lru_cache(maxsize=1)
def _history_statement() -> Select[Any]:
    """The document's audit trail with the acting user's name (the card's history)."""
    return (
        select(
            AuditEvent.at,
            AuditEvent.action,
            User.full_name,
            AuditEvent.position_id,
            AuditEvent.actor_role,
            AuditEvent.details,
        )
        .outerjoin(User, User.id == AuditEvent.user_id)
        .where(AuditEvent.document_id == bindparam("document_id", type_=Uuid()))
        .order_by(AuditEvent.at, AuditEvent.id)
    )


@lru_cache(maxsize=1)
def _card_parts() -> tuple[AnySelect, ...]:
    """What a card shows, each part a select of the module it belongs to, read together
    (one constant tuple, so the combined statement is built once)."""
    # Workflow parts of the card (imported here: those packages import this module).
    from backend.domain.resolutions.card import ASSIGNMENTS, RESOLUTIONS
    from backend.domain.routes.card import CURRENT_ROUTE
    from backend.domain.signing.services import CARD_SIGNATURES

    return (
        _header_statement(),
        _addressees_statement(),
        _files_statement(),
        *CURRENT_ROUTE,
        CARD_SIGNATURES,
        RESOLUTIONS,
        ASSIGNMENTS,
        _history_statement(),
    )


async def document_card(session: AsyncSession, document_id: uuid.UUID) -> schemas.DocumentCardOut:
    """The card, read in one round trip (on PostgreSQL one statement, fetch_together).

    Built once per (document, revision) and then served from the card cache; a card not
    in the cache comes with its visibility check instead (`visible_card`)."""
    params = {"document_id": document_id, "of_document": document_id}
    return card_from_parts(document_id, await fetch_together(session, _card_parts(), params))


async def visible_card(
    session: AsyncSession, principal: Principal, document_id: uuid.UUID
) -> tuple[int, schemas.DocumentCardOut]:
    """The revision and the card of a document the principal may see (404 otherwise),
    both in one round trip: the first look at a document (a new letter) is a common
    request, and the check and the card were two."""
    revision, parts = await visible_revision_with(
        session, principal, document_id, _card_parts(), {"of_document": document_id}
    )
    return revision, card_from_parts(document_id, parts)


def card_from_parts(
    document_id: uuid.UUID, parts: list[Sequence[Sequence[Any]]]
) -> schemas.DocumentCardOut:
    """The card from the rows of `_card_parts()`, in its order."""
    from backend.domain.resolutions.card import tree_from_rows
    from backend.domain.routes.card import CURRENT_ROUTE, route_from_rows
    from backend.domain.signing.services import signatures_from_rows

    # In _card_parts' order: three parts, the route's, four more.
    route_end = 3 + len(CURRENT_ROUTE)
    header, addressees, files = parts[:3]
    route = route_from_rows(*parts[3:route_end])
    signatures, resolutions, assignments, events = parts[route_end:]
    if not header:
        raise NotFound("document not found")
    (
        kind,
        title,
        summary,
        state,
        reg_number,
        reg_date,
        access_level,
        urgent,
        deadline,
        author_id,
        author_title,
        author_org,
        correspondent,
        created_at,
    ) = header[0]
    tree = tree_from_rows(resolutions, assignments, region_today(get_settings().timezone))
    return schemas.DocumentCardOut(
        id=document_id,
        kind=kind,
        title=title,
        summary=summary,
        state=state,
        reg_number=reg_number,
        reg_date=reg_date,
        access_level=access_level,
        urgent=urgent,
        deadline=deadline,
        author=schemas.PositionRef(author_id, author_title, author_org),
        correspondent=correspondent,
        addressees=[schemas.AddresseeOut(pid, t, mode) for pid, t, mode in addressees],
        files=[schemas.FileOut(*f) for f in files],
        route=msgspec.to_builtins(route) if route is not None else None,
        signatures=msgspec.to_builtins(signatures_from_rows(signatures)),
        resolutions=msgspec.to_builtins(tree),
        history=[schemas.HistoryOut(*e) for e in events],
        created_at=created_at,
    )


async def document_file(
    session: AsyncSession, document_id: uuid.UUID, file_id: uuid.UUID
) -> DocumentFile:
    f = await session.scalar(
        select(DocumentFile).where(
            DocumentFile.id == file_id, DocumentFile.document_id == document_id
        )
    )
    if f is None:
        raise NotFound("file not found")
    return f

"""Registration at the end of a route under concurrency: no gap, no duplicate."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

from sqlalchemy import select

from backend.db.engine import make_sessionmaker
from backend.db.ids import new_id
from backend.db.models import (
    Document,
    DocumentFile,
    Journal,
    Position,
    Route,
    RouteSignatory,
    User,
)
from backend.domain.routes.services import complete_signatory_step
from tests.backend.conftest import Env

N = 50


async def test_50_concurrent_registrations(env: Env) -> None:
    sessions = make_sessionmaker(env.engine)
    now = dt.datetime.now(dt.UTC)
    sha = "a" * 64
    async with sessions() as s:
        gov = await s.scalar(select(User).where(User.login == "governor"))
        assert gov is not None
        gov_pos = uuid.UUID(await env.own_position("governor"))
        org = await s.scalar(select(Position.organization_id).where(Position.id == gov_pos))
        journal = Journal(
            id=new_id(),
            organization_id=org,
            name=f"Тест {uuid.uuid4().hex[:6]}",
            kind="outgoing",
            number_format="Т-{seq}",
            year=2026,
            last_seq=0,
        )
        s.add(journal)
        docs = []
        for i in range(N):
            doc = Document(
                id=new_id(),
                kind="outgoing",
                title=f"Проект {i}",
                state="on_route",
                organization_id=org,
                author_position_id=gov_pos,
                created_by_id=gov.id,
                created_at=now,
            )
            s.add(doc)
            await s.flush()
            s.add(
                DocumentFile(
                    id=new_id(),
                    document_id=doc.id,
                    slot_id=new_id(),
                    role="main",
                    name="p.pdf",
                    mime="application/pdf",
                    size=1,
                    sha256=sha,
                    version=1,
                    pages=1,
                    is_current=True,
                    created_at=now,
                    created_by_id=gov.id,
                )
            )
            route = Route(
                id=new_id(),
                document_id=doc.id,
                state="signing",
                version=1,
                journal_id=journal.id,
                created_at=now,
                created_by_id=gov.id,
            )
            s.add(route)
            await s.flush()
            s.add(
                RouteSignatory(
                    id=new_id(), route_id=route.id, order=0, position_id=gov_pos, state="waiting"
                )
            )
            docs.append(doc.id)
        await s.commit()
        gov_id, journal_id = gov.id, journal.id

    async def sign(doc_id: uuid.UUID) -> None:
        async with sessions() as s:
            await complete_signatory_step(
                s,
                document_id=doc_id,
                position_id=gov_pos,
                user_id=gov_id,
                actor_role="own",
                file_sha256=sha,
                now=now,
                tz=env.settings.timezone,
            )
            await s.commit()

    await asyncio.gather(*(sign(d) for d in docs))
    async with sessions() as s:
        rows = (
            await s.execute(
                select(Document.reg_seq, Document.reg_number, Document.state).where(
                    Document.id.in_(docs)
                )
            )
        ).all()
        last = await s.scalar(select(Journal.last_seq).where(Journal.id == journal_id))
    assert sorted(r[0] for r in rows) == list(range(1, N + 1))
    assert {r[1] for r in rows} == {f"Т-{i}" for i in range(1, N + 1)}
    assert {r[2] for r in rows} == {"registered"}
    assert last == N

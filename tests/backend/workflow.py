"""Helpers for workflow tests: drafts, routes and decisions through the HTTP API."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from functools import lru_cache
from typing import Any

from sqlalchemy import select, text

from backend.db.engine import make_sessionmaker
from backend.db.models import CabinetItem, OutboxEvent, User
from backend.demo.pdfs import letter_pdf
from backend.domain.accounts.access import Principal, load_principal
from backend.domain.documents.visibility import visible_document
from backend.domain.routes.services import complete_signatory_step, start_route
from tests.backend.conftest import Env


@lru_cache(maxsize=64)
def pdf(tag: str) -> bytes:
    return letter_pdf("Тест", "проект", "01.12.2026", "Кому", f"Проект {tag}", ["Текст."], "Я", 1)


async def new_version(env: Env, doc: dict[str, Any], pages: int) -> dict[str, Any]:
    """Upload a `pages`-page version 2 of the draft's main file as its author (lawyer)."""
    two = letter_pdf("Тест", "проект", "01.12.2026", "Кому", "Версия 2", ["Текст."], "Я", pages)
    r = await env.client.post(
        f"/api/v1/documents/{doc['id']}/versions",
        files={"file": ("v2.pdf", two, "application/pdf")},
        headers=await env.login("lawyer"),
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def journal_id(env: Env, kind: str = "outgoing") -> str:
    async with env.engine.connect() as conn:
        return str(
            (
                await conn.execute(
                    text("SELECT id FROM journals WHERE kind = :k ORDER BY name LIMIT 1"),
                    {"k": kind},
                )
            ).scalar_one()
        )


async def create_draft(
    env: Env,
    author: str = "lawyer",
    addressees: list[tuple[str, str]] | None = None,
    kind: str = "outgoing",
) -> dict[str, Any]:
    position = await env.own_position(author)
    card = {
        "position_id": position,
        "kind": kind,
        "title": f"Проект {uuid.uuid4().hex[:6]}",
        "addressees": [
            {"position_id": await env.own_position(login), "mode": mode}
            for login, mode in (addressees or [])
        ],
    }
    r = await env.client.post(
        "/api/v1/documents",
        headers=await env.login(author),
        files=[
            ("card", (None, json.dumps(card), "application/json")),
            ("files", ("draft.pdf", pdf(uuid.uuid4().hex), "application/pdf")),
        ],
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def route_draft(
    env: Env,
    doc: dict[str, Any],
    stages: list[list[str]],
    signatories: list[str],
    author: str = "lawyer",
    deadline_days: int = 3,
    start: bool = True,
) -> dict[str, Any]:
    body = {
        "stages": [
            {
                "approvers": [await env.own_position(login) for login in stage],
                "deadline_days": deadline_days,
            }
            for stage in stages
        ],
        "signatories": [await env.own_position(login) for login in signatories],
        "journal_id": await journal_id(env),
    }
    h = await env.login(author)
    r = await env.client.post(f"/api/v1/documents/{doc['id']}/route", json=body, headers=h)
    assert r.status_code == 201, r.text
    if start:
        r = await env.client.post(f"/api/v1/documents/{doc['id']}/route/start", headers=h)
        assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def visa(
    env: Env,
    doc_id: str,
    login: str,
    decision: str = "approved",
    sha: str | None = None,
    comment: str | None = None,
    key: str | None = None,
    position: str | None = None,
) -> Any:
    if sha is None:
        sha = (await card(env, doc_id, login))["files"][0]["sha256"]
    body: dict[str, Any] = {
        "position_id": position or await env.own_position(login),
        "decision": decision,
        "file_sha256": sha,
    }
    if comment is not None:
        body["comment"] = comment
    headers = dict(await env.login(login))
    if key:
        headers["Idempotency-Key"] = key
    return await env.client.post(f"/api/v1/documents/{doc_id}/visas", json=body, headers=headers)


async def card(env: Env, doc_id: str, login: str = "lawyer") -> dict[str, Any]:
    r = await env.client.get(f"/api/v1/documents/{doc_id}", headers=await env.login(login))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def open_items(env: Env, doc_id: str, folder: str) -> list[str]:
    """Position ids with an open item of the document in `folder`."""
    async with env.engine.connect() as conn:
        rows = await conn.execute(
            select(CabinetItem.position_id).where(
                CabinetItem.document_id == uuid.UUID(doc_id),
                CabinetItem.folder == folder,
                CabinetItem.state == "open",
            )
        )
        return sorted(str(r[0]) for r in rows)


async def scalar(env: Env, query: Any) -> Any:
    async with env.engine.connect() as conn:
        return (await conn.execute(query)).scalar()


async def principal_at(env: Env, login: str, at: dt.datetime) -> Principal:
    """The principal of `login` as of `at`, for calling services directly."""
    async with make_sessionmaker(env.engine)() as s:
        user = await s.scalar(select(User).where(User.login == login))
        assert user is not None
        found = await load_principal(s, user.id, at)
        assert found is not None
        return Principal(found[0], uuid.uuid4(), found[1])


async def start_route_at(env: Env, doc_id: str, at: dt.datetime, author: str = "lawyer") -> None:
    """Start a set route as if at `at` (stage deadlines count from that moment)."""
    principal = await principal_at(env, author, at)
    async with make_sessionmaker(env.engine)() as s:
        document = await visible_document(s, principal, uuid.UUID(doc_id))
        await start_route(s, principal, document, at, env.settings.timezone)
        await s.commit()


async def outbox(env: Env, kind: str, doc_id: str) -> list[dict[str, Any]]:
    """Payloads of the outbox events of `kind` about one document, oldest first."""
    async with env.engine.connect() as conn:
        rows = await conn.execute(
            select(OutboxEvent.payload)
            .where(OutboxEvent.kind == kind)
            .order_by(OutboxEvent.created_at, OutboxEvent.id)
        )
        return [p for (p,) in rows if p.get("document_id") == doc_id]


async def sign_step(env: Env, doc: dict[str, Any], login: str) -> None:
    """The signatory's step as the signing flow ends it (its cryptography is tested in
    test_signing_flow.py; here only what it changes in cabinets and on the document)."""
    async with make_sessionmaker(env.engine)() as s:
        user_id = await s.scalar(select(User.id).where(User.login == login))
        assert user_id is not None
        await complete_signatory_step(
            s,
            document_id=uuid.UUID(doc["id"]),
            position_id=uuid.UUID(await env.own_position(login)),
            user_id=user_id,
            actor_role="own",
            file_sha256=doc["files"][0]["sha256"],
            now=dt.datetime.now(dt.UTC),
            tz=env.settings.timezone,
        )
        await s.commit()

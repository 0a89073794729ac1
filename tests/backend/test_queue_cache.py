"""Queue pages are cached per process against a stamp (cabinet/services.py, cached_queue):
the cabinet's mark and the audit events of the documents on the page. After every kind of
change the served pages, first and following, equal pages read afresh; a new version with
more pages shows at once in the queue of an approver whose own item did not change; and
the cache is really in use: a change that neither writes an audit event nor touches a
cabinet is not seen, the next audit event of that document makes it seen. A viewer not
cleared for ДСП and a cleared one of the same cabinet each get their own pages and counts.
And the rule the stamp rests on is watched: every transaction that writes a document or
its files writes an audit event too."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import msgspec
import pytest
from sqlalchemy import event, func, insert, select, update

from backend.clock import region_today
from backend.db.engine import make_sessionmaker
from backend.db.models import FOLDERS, AuditEvent, CabinetItem, CabinetMark, Document
from backend.domain.cabinet.services import queue
from tests.backend.conftest import Env
from tests.backend.test_documents import _assistant_login, _dsp_document
from tests.backend.test_folder_cache import through_every_change
from tests.backend.test_resolutions import registered_for, resolve
from tests.backend.workflow import (
    create_draft,
    new_version,
    principal_at,
    route_draft,
    scalar,
    sign_step,
    visa,
)

LOGINS = ("lawyer", "minister.digital", "minister.finance", "governor", "first.deputy")


async def _served(
    env: Env,
    login: str,
    folder: str,
    limit: int = 20,
    cursor: str | None = None,
    position: str | None = None,
) -> dict[str, Any]:
    position = position or await env.own_position(login)
    params: dict[str, Any] = {"folder": folder, "limit": limit}
    if cursor:
        params["cursor"] = cursor
    r = await env.client.get(
        f"/api/v1/cabinets/{position}/queue", params=params, headers=await env.login(login)
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def _fresh(
    env: Env,
    login: str,
    folder: str,
    limit: int = 20,
    cursor: str | None = None,
    position: str | None = None,
) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    principal = await principal_at(env, login, now)
    cabinet = principal.cabinet(uuid.UUID(position or await env.own_position(login)))
    async with make_sessionmaker(env.engine)() as session:
        page = await queue(
            session, cabinet, folder, limit, cursor, region_today(env.settings.timezone, now)
        )
    return json.loads(msgspec.json.encode(page))  # type: ignore[no-any-return]


async def _all_match(env: Env, step: str) -> None:
    # The five above are cleared for ДСП; the minister's assistant is not, and sees his
    # cabinet through the other key.
    minister = await env.own_position("minister.digital")
    viewers = [(login, await env.own_position(login)) for login in LOGINS]
    viewers.append((await _assistant_login(env, minister), minister))
    for login, position in viewers:
        for folder in FOLDERS:
            served = await _served(env, login, folder, position=position)
            fresh = await _fresh(env, login, folder, position=position)
            assert served == fresh, (step, login, folder)
            # The first page of one item and the one after it: keys with a cursor.
            first = await _served(env, login, folder, limit=1, position=position)
            fresh = await _fresh(env, login, folder, limit=1, position=position)
            assert first == fresh, (step, login, folder)
            if first["next_cursor"]:
                after = first["next_cursor"]
                served = await _served(env, login, folder, 1, after, position)
                fresh = await _fresh(env, login, folder, 1, after, position)
                assert served == fresh, (step, login, folder, "page 2")


async def test_cached_pages_follow_every_change(env: Env) -> None:
    await through_every_change(env, lambda step: _all_match(env, step))


async def test_a_new_version_shows_in_an_untouched_approvers_queue(env: Env) -> None:
    doc = await create_draft(env)
    await route_draft(env, doc, [["minister.digital", "minister.finance"]], ["governor"])
    assert (await visa(env, doc["id"], "minister.digital")).status_code == 201

    def pages_of(page: dict[str, Any]) -> int:
        return next(int(i["pages"]) for i in page["items"] if i["document_id"] == doc["id"])

    assert pages_of(await _served(env, "minister.finance", "visa")) == 1  # cached now
    finance = uuid.UUID(await env.own_position("minister.finance"))
    marks = select(func.coalesce(func.sum(CabinetMark.version), 0)).where(
        CabinetMark.position_id == finance
    )
    mark = await scalar(env, marks)
    version = await new_version(env, doc, pages=3)
    # The minister of finance's item was left as it was (only the visa already given is
    # asked again): his cabinet's mark did not move, the document's audit events did.
    assert version["reasked"] == [await env.own_position("minister.digital")]
    assert await scalar(env, marks) == mark
    assert pages_of(await _served(env, "minister.finance", "visa")) == 3


async def test_the_cache_is_used_until_the_stamp_moves(env: Env) -> None:
    letter = await registered_for(env)
    before = await _served(env, "governor", "resolve")
    assert letter["id"] in [i["document_id"] for i in before["items"]]
    # Behind the app's back: no audit event, no cabinet touched. The cached page stands.
    async with env.engine.begin() as conn:
        await conn.execute(
            update(Document)
            .where(Document.id == uuid.UUID(letter["id"]))
            .values(title="Переименовано в обход аудита")
        )
    assert await _served(env, "governor", "resolve") == before
    # Any audit event of that document (what every decision writes) moves the stamp.
    async with env.engine.begin() as conn:
        await conn.execute(
            insert(AuditEvent).values(
                id=uuid.uuid4(),
                at=dt.datetime.now(dt.UTC),
                action="test.touch",
                document_id=uuid.UUID(letter["id"]),
                details={},
            )
        )
    titles = {
        i["document_id"]: i["title"] for i in (await _served(env, "governor", "resolve"))["items"]
    }
    assert titles[letter["id"]] == "Переименовано в обход аудита"


async def test_a_viewer_not_cleared_for_dsp_has_pages_of_its_own(env: Env) -> None:
    minister = await env.own_position("minister.digital")
    assistant = await _assistant_login(env, minister)  # not cleared
    dsp = await _dsp_document(env, minister)

    async def resolve_count(login: str) -> int:
        r = await env.client.get(
            f"/api/v1/cabinets/{minister}/folders", headers=await env.login(login)
        )
        assert r.status_code == 200, r.text
        return next(int(f["count"]) for f in r.json() if f["folder"] == "resolve")

    # Each twice, alternating: the second time from the cache, if the key mixed them up
    # one would be served the other's page.
    counts: dict[str, set[int]] = {}
    for login in ("minister.digital", assistant, "minister.digital", assistant):
        page = await _served(env, login, "resolve", limit=100, position=minister)
        seen = dsp in [i["document_id"] for i in page["items"]]
        assert seen == (login == "minister.digital"), login
        counts.setdefault(login, set()).add(await resolve_count(login))
    dsp_items = await scalar(
        env,
        select(func.count())
        .select_from(CabinetItem)
        .join(Document, Document.id == CabinetItem.document_id)
        .where(
            CabinetItem.position_id == uuid.UUID(minister),
            CabinetItem.folder == "resolve",
            CabinetItem.state == "open",
            Document.access_level == "dsp",
        ),
    )
    assert dsp_items >= 1  # this test's letter, and other tests' on a shared database
    assert len(counts["minister.digital"]) == len(counts[assistant]) == 1
    assert counts["minister.digital"].pop() == counts[assistant].pop() + dsp_items


async def test_every_write_to_a_document_comes_with_its_audit_event(env: Env) -> None:
    """The rule the stamp (and the card cache) rests on: a transaction that writes a
    document or its files also writes an audit event of it. Watched on SQLite, where every
    statement goes through SQLAlchemy's events (on PostgreSQL fastread sends the hot ones
    straight to asyncpg), over a draft's whole life and a letter's."""
    if env.name != "sqlite":
        pytest.skip("on PostgreSQL the hot statements run past SQLAlchemy's events")
    engine = env.engine.sync_engine
    open_: dict[int, tuple[list[str], set[str]]] = {}
    unaudited: list[list[str]] = []
    audited_writes: list[list[str]] = []

    def executed(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        words = statement.split(None, 3)
        verb, table = words[0].upper(), (words[2] if words[0].upper() == "INSERT" else words[1])
        writes, audited = open_.setdefault(id(conn), ([], set()))
        if verb in ("INSERT", "UPDATE", "DELETE") and table in ("documents", "document_files"):
            writes.append(statement.split("\n")[0][:80])
        if verb == "INSERT" and table == "audit_events":
            audited.add("yes")

    def committed(conn: Any) -> None:
        writes, audited = open_.pop(id(conn), ([], set()))
        if writes:
            (audited_writes if audited else unaudited).append(writes)

    def rolled_back(conn: Any) -> None:
        open_.pop(id(conn), None)

    listeners = (
        ("before_cursor_execute", executed),
        ("commit", committed),
        ("rollback", rolled_back),
    )
    for name, fn in listeners:
        event.listen(engine, name, fn)
    try:
        doc = await create_draft(env, addressees=[("minister.finance", "resolve")])
        await route_draft(env, doc, [["minister.digital", "minister.finance"]], ["governor"])
        assert (await visa(env, doc["id"], "minister.digital")).status_code == 201
        r = await visa(env, doc["id"], "minister.finance", "rejected", comment="Переделать")
        assert r.status_code == 201, r.text
        doc["files"][0]["sha256"] = (await new_version(env, doc, pages=2))["sha256"]
        r = await env.client.post(
            f"/api/v1/documents/{doc['id']}/route/start", headers=await env.login("lawyer")
        )
        assert r.status_code == 201, r.text
        for login in ("minister.digital", "minister.finance"):
            assert (await visa(env, doc["id"], login)).status_code == 201
        await sign_step(env, doc, "governor")
        letter = await registered_for(env)
        assert (await resolve(env, letter["id"], "governor")).status_code == 201
    finally:
        for name, fn in listeners:
            event.remove(engine, name, fn)
    assert not unaudited
    # Seen at all: the creations, the route's start and return, the version, the
    # registration.
    assert len(audited_writes) >= 5, audited_writes

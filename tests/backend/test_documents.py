"""Documents: create with registration, card, files, page images, and every bad input."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
import zipfile
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import delete, text

from backend.db.ids import new_id
from backend.db.models import CabinetAccess, CabinetItem
from tests.backend import files
from tests.backend.conftest import Env


async def _journal(env: Env, kind: str = "incoming") -> str:
    clerk = await env.own_position("clerk")
    async with env.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT j.id FROM journals j JOIN positions p"
                    " ON p.organization_id = j.organization_id WHERE p.id = :p AND j.kind = :k"
                ),
                {"p": _db_id(env, clerk), "k": kind},
            )
        ).scalar_one()
    return str(uuid.UUID(str(row)))


def _db_id(env: Env, value: str) -> Any:
    return uuid.UUID(value).hex if env.name == "sqlite" else uuid.UUID(value)


async def _assistant_login(env: Env, position: str) -> str:
    """The login of the assistant in a position's cabinet (not cleared for ДСП)."""
    async with env.engine.connect() as conn:
        login: str = (
            await conn.execute(
                text(
                    "SELECT u.login FROM users u JOIN cabinet_access a ON a.user_id = u.id "
                    "WHERE a.position_id = :p AND a.role = 'assistant'"
                ),
                {"p": _db_id(env, position)},
            )
        ).scalar_one()
    return login


async def _dsp_document(env: Env, to: str) -> str:
    """A registered ДСП letter addressed to position `to`, without files; its id."""
    card = await _card(env, access_level="dsp", addressees=[{"position_id": to, "mode": "resolve"}])
    created = await create(env, card, [])
    assert created.status_code == 201, created.text
    doc_id: str = created.json()["id"]
    return doc_id


async def _card(env: Env, **extra: Any) -> dict[str, Any]:
    gov = await env.own_position("governor")
    card = {
        "position_id": await env.own_position("clerk"),
        "kind": "incoming",
        "title": "О подготовке к паводковому периоду",
        "correspondent": {"name": "Главное управление МЧС России по Озёрскому краю"},
        "addressees": [{"position_id": gov, "mode": "resolve"}],
        "journal_id": await _journal(env),
        "deadline": "2030-01-15",
    }
    card.update(extra)
    return card


async def create(
    env: Env, card: dict[str, Any], uploads: list[tuple[str, bytes, str]], login: str = "clerk"
) -> Any:
    return await env.client.post(
        "/api/v1/documents",
        data={"card": json.dumps(card)},
        files=[("files", u) for u in uploads],
        headers=await env.login(login),
    )


async def _counts(env: Env) -> tuple[int, int, int, int]:
    return (
        await env.count("documents"),
        await env.count("document_files"),
        await env.count("cabinet_items"),
        await env.count("audit_events"),
    )


async def test_clerk_registers_an_incoming_letter_for_the_governor(env: Env) -> None:
    r = await create(
        env,
        await _card(env),
        [("letter.pdf", files.pdf(3), "application/pdf"), ("scan.png", files.png(), "image/png")],
    )
    assert r.status_code == 201, r.text
    card = r.json()
    assert card["state"] == "registered"
    assert card["reg_number"].startswith("01-12/")
    assert [f["pages"] for f in card["files"]] == [3, 1]
    assert [f["role"] for f in card["files"]] == ["main", "attachment"]
    assert card["history"][0]["action"] == "document.registered"

    gov = await env.own_position("governor")
    queue = await env.client.get(
        f"/api/v1/cabinets/{gov}/queue",
        params={"folder": "resolve", "limit": 1},
        headers=await env.login("governor"),
    )
    top = queue.json()["items"][0]
    assert top["document_id"] == card["id"]
    assert top["reg_number"] == card["reg_number"]
    assert top["pages"] == 3
    assert top["correspondent"] == "Главное управление МЧС России по Озёрскому краю"


async def test_registration_numbers_follow_each_other(env: Env) -> None:
    numbers = []
    for _ in range(3):
        r = await create(env, await _card(env), [])
        assert r.status_code == 201, r.text
        numbers.append(int(r.json()["reg_number"].split("/")[1]))
    assert numbers == list(range(numbers[0], numbers[0] + 3))


async def test_pages_render_as_webp_at_the_asked_width(env: Env) -> None:
    r = await create(
        env,
        await _card(env),
        [
            ("a.pdf", files.pdf(2), "application/pdf"),
            ("b.tiff", files.tiff(3), "image/tiff"),
            ("c.jpg", files.jpeg(), "image/jpeg"),
        ],
    )
    card = r.json()
    headers = await env.login("governor")
    for f, pages in zip(card["files"], (2, 3, 1), strict=True):
        assert f["pages"] == pages
        for n in range(1, pages + 1):
            url = f"/api/v1/documents/{card['id']}/files/{f['id']}/pages/{n}"
            page = await env.client.get(url, params={"width": 480}, headers=headers)
            assert page.status_code == 200, page.text
            assert page.headers["content-type"] == "image/webp"
            assert "immutable" in page.headers["cache-control"]
            img = Image.open(io.BytesIO(page.content))
            assert img.format == "WEBP" and img.width == 480
            again = await env.client.get(
                url,
                params={"width": 480},
                headers={**headers, "If-None-Match": page.headers["etag"]},
            )
            assert again.status_code == 304
    f = card["files"][0]
    base = f"/api/v1/documents/{card['id']}/files/{f['id']}/pages"
    assert (await env.client.get(f"{base}/3", headers=headers)).status_code == 404
    assert (await env.client.get(f"{base}/0", headers=headers)).status_code == 404
    assert (
        await env.client.get(f"{base}/1", params={"width": 333}, headers=headers)
    ).status_code == 422


async def test_original_file_with_etag(env: Env) -> None:
    data = files.pdf(1)
    card = (await create(env, await _card(env), [("a.pdf", data, "application/pdf")])).json()
    f = card["files"][0]
    headers = await env.login("governor")
    url = f"/api/v1/documents/{card['id']}/files/{f['id']}"
    r = await env.client.get(url, headers=headers)
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["etag"] == f'"{f["sha256"]}"'
    again = await env.client.get(url, headers={**headers, "If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


async def test_other_people_get_404_for_card_file_and_pages(env: Env) -> None:
    card = (
        await create(env, await _card(env), [("a.pdf", files.pdf(1), "application/pdf")])
    ).json()
    f = card["files"][0]
    # The governor's look at page 1 is remembered for him (page grants): it must not
    # open the page to anyone else.
    page_1 = f"/api/v1/documents/{card['id']}/files/{f['id']}/pages/1"
    governor = await env.login("governor")
    assert (await env.client.get(page_1, headers=governor)).status_code == 200
    assert (await env.client.get(page_1, headers=governor)).status_code == 200
    executor = await env.login("executor")
    for url in (
        f"/api/v1/documents/{card['id']}",
        f"/api/v1/documents/{card['id']}/files/{f['id']}",
        f"/api/v1/documents/{card['id']}/files/{f['id']}/pages/1",
    ):
        r = await env.client.get(url, headers=executor)
        assert r.status_code == 404, url
    # The file of one document through the id of another is not found either.
    other = (await create(env, await _card(env), [])).json()
    r = await env.client.get(
        f"/api/v1/documents/{other['id']}/files/{f['id']}", headers=await env.login("governor")
    )
    assert r.status_code == 404
    assert (
        await env.client.get(f"/api/v1/documents/{uuid.uuid4()}", headers=executor)
    ).status_code == 404


async def test_dsp_documents_only_for_cleared_positions(env: Env) -> None:
    minister = await env.own_position("minister.digital")
    card = await _card(
        env, access_level="dsp", addressees=[{"position_id": minister, "mode": "resolve"}]
    )
    created = await create(env, card, [("a.pdf", files.pdf(1), "application/pdf")])
    assert created.status_code == 201, created.text
    doc_id = created.json()["id"]
    login = await _assistant_login(env, minister)
    assistant = await env.login(login)
    assert (
        await env.client.get(f"/api/v1/documents/{doc_id}", headers=assistant)
    ).status_code == 404
    assert (
        await env.client.get(
            f"/api/v1/documents/{doc_id}", headers=await env.login("minister.digital")
        )
    ).status_code == 200
    queue = await env.client.get(
        f"/api/v1/cabinets/{minister}/queue",
        params={"folder": "resolve", "limit": 100},
        headers=assistant,
    )
    assert doc_id not in [i["document_id"] for i in queue.json()["items"]]
    own = await env.client.get(
        f"/api/v1/cabinets/{minister}/queue",
        params={"folder": "resolve", "limit": 100},
        headers=await env.login("minister.digital"),
    )
    assert doc_id in [i["document_id"] for i in own.json()["items"]]
    # An uncleared addressee cannot receive a ДСП document at all.
    executor = await env.own_position("executor")
    bad = await create(
        env,
        await _card(
            env, access_level="dsp", addressees=[{"position_id": executor, "mode": "resolve"}]
        ),
        [],
    )
    assert bad.status_code == 422


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", "hello")
    return buf.getvalue()


BAD_UPLOADS = {
    "text named pdf": (
        ("a.pdf", b"just some text, not a PDF", "application/pdf"),
        422,
        "not a valid",
    ),
    "png declared pdf": (
        ("a.pdf", files.png(), "application/pdf"),
        422,
        "declared as application/pdf",
    ),
    "broken pdf": (
        ("a.pdf", b"%PDF-1.7\n1 0 obj garbage\n%%EOF", "application/pdf"),
        422,
        "broken PDF",
    ),
    "too many pages": (("a.pdf", files.pdf(21), "application/pdf"), 422, "limit is 20"),
    "decompression bomb": (("a.png", files.bomb_png(), "image/png"), 422, "pixels"),
    "too large": (
        ("a.pdf", b"%PDF-1.7\n" + b"0" * (3 * 1024 * 1024 + 10), "application/pdf"),
        413,
        "limit",
    ),
    "zip": (("a.zip", _zip(), "application/zip"), 415, "unsupported"),
    "empty": (("a.pdf", b"", "application/pdf"), 422, "empty"),
    "broken png": (("a.png", files.png()[:200], "image/png"), 422, "broken image"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
async def test_bad_files_are_refused_and_change_nothing(env: Env, case: str) -> None:
    upload, status, message = BAD_UPLOADS[case]
    card = await _card(env)
    await env.login("clerk")
    before = await _counts(env)
    # A good file first: the whole request fails together.
    r = await create(env, card, [("ok.pdf", files.pdf(1), "application/pdf"), upload])
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert message.lower() in r.json()["detail"].lower()
    assert await _counts(env) == before


async def test_dsp_counts_only_links_through_a_cleared_position(env: Env) -> None:
    # A user with two cabinets: their own position (not cleared for ДСП) and the
    # minister's, acting (which carries the minister's clearance). A ДСП document is theirs
    # through the minister's cabinet; one that only their own cabinet holds is not.
    minister = await env.own_position("minister.digital")
    governor = await env.own_position("governor")
    own = await env.own_position("executor")
    user_id = uuid.UUID((await env.cabinets("executor"))["user"]["id"])
    docs = {}
    for name, to in (("minister", minister), ("governor", governor)):
        card = await _card(
            env, access_level="dsp", addressees=[{"position_id": to, "mode": "resolve"}]
        )
        r = await create(env, card, [("a.pdf", files.pdf(1), "application/pdf")])
        assert r.status_code == 201, r.text
        docs[name] = r.json()["id"]
    grant = new_id()
    async with env.app.state.services.sessions() as s:
        s.add(
            CabinetAccess(
                id=grant,
                position_id=uuid.UUID(minister),
                user_id=user_id,
                role="acting",
                rights=[],
            )
        )
        # A link through the uncleared own position (an item from before the document
        # became ДСП, say): it must not count.
        s.add(
            CabinetItem(
                id=new_id(),
                position_id=uuid.UUID(own),
                folder="info",
                document_id=uuid.UUID(docs["governor"]),
                ref_id=None,
                state="done",
                expected_action="info",
                received_at=dt.datetime.now(dt.UTC),
            )
        )
        await s.commit()
    env.app.state.services.principals.forget(user_id)
    headers = await env.login("executor")
    cabinets = (await env.client.get("/api/v1/me", headers=headers)).json()["cabinets"]
    assert {(c["position_id"], c["role"]) for c in cabinets} >= {(own, "own"), (minister, "acting")}
    seen = await env.client.get(f"/api/v1/documents/{docs['minister']}", headers=headers)
    assert seen.status_code == 200
    hidden = await env.client.get(f"/api/v1/documents/{docs['governor']}", headers=headers)
    assert hidden.status_code == 404
    # The region is shared by this module's tests: the acting right ends here.
    async with env.app.state.services.sessions() as s:
        await s.execute(delete(CabinetAccess).where(CabinetAccess.id == grant))
        await s.commit()
    env.app.state.services.principals.forget(user_id)


async def test_bad_cards_are_refused_and_change_nothing(env: Env) -> None:
    for login in ("clerk", "lawyer", "executor"):
        await env.login(login)  # a login is audited: do it before counting
    before = await _counts(env)
    gov = await env.own_position("governor")
    clerk_card = await _card(env)
    cases: list[tuple[str, dict[str, Any] | None, str, int]] = [
        ("no card", None, "clerk", 422),
        ("unknown field", {**clerk_card, "secret": 1}, "clerk", 422),
        ("bad kind", {**clerk_card, "kind": "memo"}, "clerk", 422),
        ("empty title", {**clerk_card, "title": ""}, "clerk", 422),
        (
            "unknown addressee",
            {**clerk_card, "addressees": [{"position_id": str(uuid.uuid4())}]},
            "clerk",
            422,
        ),
        (
            "twice the same addressee",
            {**clerk_card, "addressees": [{"position_id": gov}, {"position_id": gov}]},
            "clerk",
            422,
        ),
        ("unknown journal", {**clerk_card, "journal_id": str(uuid.uuid4())}, "clerk", 422),
        ("incoming without journal", {**clerk_card, "journal_id": None}, "clerk", 422),
        (
            "not a clerk registers",
            {**clerk_card, "position_id": await env.own_position("lawyer")},
            "lawyer",
            403,
        ),
        ("someone else's position", clerk_card, "executor", 403),
    ]
    for name, card, login, status in cases:
        data = {"card": json.dumps(card)} if card is not None else {"other": "x"}
        r = await env.client.post("/api/v1/documents", data=data, headers=await env.login(login))
        assert r.status_code == status, (name, r.text)
    r = await env.client.post(
        "/api/v1/documents", data={"card": "{not json"}, headers=await env.login("clerk")
    )
    assert r.status_code == 422
    assert await _counts(env) == before


async def test_author_creates_an_internal_draft(env: Env) -> None:
    lawyer = await env.own_position("lawyer")
    card = {
        "position_id": lawyer,
        "kind": "internal",
        "title": "Служебная записка о правовой экспертизе",
    }
    r = await create(env, card, [("draft.pdf", files.pdf(2), "application/pdf")], login="lawyer")
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "draft"
    assert r.json()["reg_number"] is None
    got = await env.client.get(
        f"/api/v1/documents/{r.json()['id']}", headers=await env.login("lawyer")
    )
    assert got.status_code == 200


async def test_a_retried_registration_takes_one_number(env: Env) -> None:
    card = await _card(env)
    upload = ("a.pdf", files.pdf(1), "application/pdf")
    headers = {**await env.login("clerk"), "Idempotency-Key": uuid.uuid4().hex}

    async def post(c: dict[str, Any], u: tuple[str, bytes, str]) -> Any:
        return await env.client.post(
            "/api/v1/documents",
            data={"card": json.dumps(c)},
            files=[("files", u)],
            headers=headers,
        )

    first = await post(card, upload)
    assert first.status_code == 201, first.text
    before = await _counts(env)
    again = await post(card, upload)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert await _counts(env) == before
    other = await post(card, ("a.pdf", files.pdf(2), "application/pdf"))
    assert other.status_code == 422
    assert await _counts(env) == before


async def test_a_cached_card_shows_the_next_decision(env: Env) -> None:
    """Cards are cached per revision (audit-event count): a decision makes a new one."""
    card = (await create(env, await _card(env), [])).json()
    governor = await env.login("governor")
    url = f"/api/v1/documents/{card['id']}"
    first = (await env.client.get(url, headers=governor)).json()
    assert (await env.client.get(url, headers=governor)).json() == first
    minister = await env.own_position("minister.digital")
    r = await env.client.post(
        f"{url}/forward",
        json={"position_id": await env.own_position("governor"), "to_position_id": minister},
        headers=governor,
    )
    assert r.status_code == 201, r.text
    after = (await env.client.get(url, headers=governor)).json()
    assert len(after["history"]) == len(first["history"]) + 1
    assert after["history"][-1]["action"] != first["history"][-1]["action"]
    # The minister it was forwarded to sees the same card; the executor still does not.
    assert (await env.client.get(url, headers=await env.login("minister.digital"))).json() == after
    assert (await env.client.get(url, headers=await env.login("executor"))).status_code == 404


async def test_a_cached_card_is_built_again_on_the_next_region_day(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Overdue marks depend on the day: a card cached today is not served tomorrow."""
    from backend.domain.documents import controllers, services

    card = (await create(env, await _card(env), [])).json()
    url = f"/api/v1/documents/{card['id']}"
    governor = await env.login("governor")
    built: list[str] = []
    build = services.card_from_parts

    def counting(document_id: Any, parts: Any) -> Any:
        built.append(str(document_id))
        return build(document_id, parts)

    monkeypatch.setattr(services, "card_from_parts", counting)
    first = await env.client.get(url, headers=governor)
    assert (await env.client.get(url, headers=governor)).json() == first.json()
    assert built == [card["id"]]  # the second came from the cache
    today = controllers.region_today(env.settings.timezone)
    monkeypatch.setattr(controllers, "region_today", lambda tz: today + dt.timedelta(days=1))
    assert (await env.client.get(url, headers=governor)).status_code == 200
    assert built == [card["id"], card["id"]]


async def test_the_card_is_refused_alike_cached_or_not(env: Env) -> None:
    """A card not cached is read together with its visibility check (one round trip,
    services.visible_card); a cached one is served after the check alone. Both refuse the
    same people, ДСП included, and a refused request caches nothing."""
    from backend.domain.documents import controllers

    svc = env.app.state.services
    today = controllers.region_today(env.settings.timezone)
    minister = await env.own_position("minister.digital")
    plain = (await create(env, await _card(env), [])).json()["id"]
    dsp = await _dsp_document(env, minister)
    login = await _assistant_login(env, minister)
    cases = [
        (plain, await env.login("governor"), await env.login("executor")),
        (dsp, await env.login("minister.digital"), await env.login(login)),  # uncleared
    ]
    for doc_id, allowed, refused in cases:
        url = f"/api/v1/documents/{doc_id}"
        key = (uuid.UUID(doc_id), today)
        svc.cards.clear()
        assert (await env.client.get(url, headers=refused)).status_code == 404
        assert svc.cards.get(key) is None
        served = await env.client.get(url, headers=allowed)
        assert served.status_code == 200
        cached = svc.cards.get(key)
        async with env.engine.connect() as conn:
            events = (
                await conn.execute(
                    text("SELECT count(*) FROM audit_events WHERE document_id = :d"),
                    {"d": _db_id(env, doc_id)},
                )
            ).scalar_one()
        # Cached with the revision read together with it: the document's audit events.
        assert cached is not None and cached[1].id == uuid.UUID(doc_id)
        assert cached[0] == events > 0
        assert (await env.client.get(url, headers=refused)).status_code == 404
        assert (await env.client.get(url, headers=allowed)).json() == served.json()


async def test_a_dsp_card_is_cached_with_the_revision_read_with_it(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """For ДСП the rule reads again after the card's rows: a decision committed in
    between must not make the cached card look as new as that decision."""
    from backend.domain.audit.services import record
    from backend.domain.documents import controllers, visibility

    svc = env.app.state.services
    minister = await env.own_position("minister.digital")
    doc_id = await _dsp_document(env, minister)
    check = visibility._check

    async def a_decision_first(*args: Any, **kwargs: Any) -> int:
        async with svc.sessions() as s:
            record(s, action="test.decision", user_id=None, document_id=uuid.UUID(doc_id))
            await s.commit()
        return await check(*args, **kwargs)

    monkeypatch.setattr(visibility, "_check", a_decision_first)
    svc.cards.clear()
    served = await env.client.get(
        f"/api/v1/documents/{doc_id}", headers=await env.login("minister.digital")
    )
    assert served.status_code == 200
    key = (uuid.UUID(doc_id), controllers.region_today(env.settings.timezone))
    cached = svc.cards.get(key)
    assert cached is not None
    assert cached[0] == len(served.json()["history"])  # not one more


async def test_a_cleared_page_cache_under_a_remembered_grant_renders_again(env: Env) -> None:
    card = (
        await create(env, await _card(env), [("a.pdf", files.pdf(2), "application/pdf")])
    ).json()
    f = card["files"][0]
    url = f"/api/v1/documents/{card['id']}/files/{f['id']}/pages/1"
    governor = await env.login("governor")
    first = await env.client.get(url, params={"width": 480}, headers=governor)
    assert first.status_code == 200
    cached = env.app.state.services.pages.path(f["sha256"], 1, 480)
    cached.unlink()  # an operator clears the page cache; the grant is still remembered
    again = await env.client.get(url, params={"width": 480}, headers=governor)
    assert again.status_code == 200 and again.content[:4] == b"RIFF"
    assert cached.is_file()

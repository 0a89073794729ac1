"""Routes: parallel visas, stages, rejection and return, versions and stale visas,
idempotency and conflicts, signing and registration with delivery."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from typing import Any

from sqlalchemy import func, select, text

from backend.db.engine import make_sessionmaker
from backend.db.models import Approval, AuditEvent
from backend.domain.routes.services import complete_signatory_step
from tests.backend import workflow
from tests.backend.conftest import Env
from tests.backend.workflow import (
    card,
    create_draft,
    open_items,
    pdf,
    route_draft,
    scalar,
    visa,
)


async def test_route_runs_stages_then_signing(env: Env) -> None:
    doc = await create_draft(env)
    route = await route_draft(
        env, doc, [["minister.digital", "minister.finance"], ["first.deputy"]], ["governor"]
    )
    assert route["state"] == "active" and route["current_stage"] == 0
    digital = await env.own_position("minister.digital")
    finance = await env.own_position("minister.finance")
    assert await open_items(env, doc["id"], "visa") == sorted([digital, finance])

    r = await visa(env, doc["id"], "minister.digital")
    assert r.status_code == 201, r.text
    assert r.json()["route_state"] == "active"
    r = await visa(env, doc["id"], "minister.finance", "approved_with_remarks", comment="Уточнить")
    assert r.status_code == 201, r.text
    # Stage 0 done: stage 1 asked.
    assert await open_items(env, doc["id"], "visa") == [await env.own_position("first.deputy")]
    r = await visa(env, doc["id"], "first.deputy")
    assert r.json()["route_state"] == "signing"
    assert await open_items(env, doc["id"], "sign") == [await env.own_position("governor")]
    c = await card(env, doc["id"])
    stages = c["route"]["stages"]
    assert [s["state"] for s in stages] == ["done", "done"]
    remarks = [a for a in stages[0]["approvers"] if a["decision"] == "approved_with_remarks"]
    assert remarks[0]["comment"] == "Уточнить"
    assert remarks[0]["file_sha256"] == c["files"][0]["sha256"]
    # The remarks are visible to everyone on the route, e.g. the next approver.
    assert (await card(env, doc["id"], "first.deputy"))["route"]["stages"][0]["approvers"]
    history = [h["action"] for h in c["history"]]
    assert "visa.approved_with_remarks" in history and "route.stage_completed" in history


async def test_rejection_returns_to_author_and_restart(env: Env) -> None:
    doc = await create_draft(env)
    await route_draft(env, doc, [["minister.digital", "minister.finance"]], ["governor"])
    r = await visa(env, doc["id"], "minister.digital", "rejected")
    assert r.status_code == 422  # a rejection needs its remarks
    r = await visa(env, doc["id"], "minister.digital", "rejected", comment="Переделать")
    assert r.status_code == 201 and r.json()["route_state"] == "returned"
    assert await open_items(env, doc["id"], "visa") == []
    assert await open_items(env, doc["id"], "info") == [await env.own_position("lawyer")]
    r = await visa(env, doc["id"], "minister.finance")
    assert r.status_code == 409
    # The author uploads a new version and restarts.
    h = await env.login("lawyer")
    r = await env.client.post(
        f"/api/v1/documents/{doc['id']}/versions",
        files={"file": ("v2.pdf", pdf("v2-" + doc["id"]), "application/pdf")},
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2
    r = await env.client.post(f"/api/v1/documents/{doc['id']}/route/start", headers=h)
    assert r.status_code == 201, r.text
    assert await open_items(env, doc["id"], "info") == []
    assert len(await open_items(env, doc["id"], "visa")) == 2
    c = await card(env, doc["id"])
    approvers = c["route"]["stages"][0]["approvers"]
    assert [a["stale"] for a in approvers if a["decision"] == "rejected"] == [True]
    assert sum(1 for a in approvers if not a["stale"] and a["decision"] is None) == 2


async def test_new_version_makes_visas_stale_and_reasks(env: Env) -> None:
    doc = await create_draft(env)
    await route_draft(env, doc, [["minister.digital", "minister.finance"]], ["governor"])
    old_sha = doc["files"][0]["sha256"]
    assert (await visa(env, doc["id"], "minister.digital")).status_code == 201
    r = await env.client.post(
        f"/api/v1/documents/{doc['id']}/versions",
        files={"file": ("v2.pdf", pdf("v2-" + doc["id"]), "application/pdf")},
        headers=await env.login("lawyer"),
    )
    assert r.status_code == 201, r.text
    new_sha = r.json()["sha256"]
    assert r.json()["stale_visas"] == 1
    assert r.json()["reasked"] == [await env.own_position("minister.digital")]
    # Both are asked now: digital again, finance still.
    assert len(await open_items(env, doc["id"], "visa")) == 2
    # A visa on the old version is refused with the current sha256, and nothing recorded.
    r = await visa(env, doc["id"], "minister.finance", sha=old_sha)
    assert r.status_code == 409
    assert r.json()["current_sha256"] == new_sha
    c = await card(env, doc["id"])
    assert c["files"][0]["version"] == 2
    approvers = c["route"]["stages"][0]["approvers"]
    stale = [a for a in approvers if a["stale"]]
    assert len(stale) == 1 and stale[0]["file_sha256"] == old_sha
    assert all(a["decision"] is None for a in approvers if not a["stale"])


async def test_permissions_and_visibility(env: Env) -> None:
    doc = await create_draft(env)
    await route_draft(env, doc, [["governor"]], ["first.deputy"])
    gov = await env.own_position("governor")
    # The assistant sees the governor's cabinet but may not visa in his name.
    r = await visa(env, doc["id"], "assistant", position=gov, sha=doc["files"][0]["sha256"])
    assert r.status_code == 403
    # Someone with nothing to do with the draft does not learn it exists.
    r = await env.client.get(f"/api/v1/documents/{doc['id']}", headers=await env.login("executor"))
    assert r.status_code == 404
    r = await visa(env, doc["id"], "executor", sha=doc["files"][0]["sha256"])
    assert r.status_code == 404
    # An approver of another stage, or nobody's step: 409.
    r = await visa(env, doc["id"], "minister.finance", sha=doc["files"][0]["sha256"])
    assert r.status_code == 404  # finance cannot see it either
    r = await env.client.post(
        f"/api/v1/documents/{doc['id']}/visas",
        json={"position_id": gov, "decision": "maybe", "file_sha256": "0" * 64},
        headers=await env.login("governor"),
    )
    assert r.status_code == 422


async def test_idempotency_key_replays_and_rejects_other_body(env: Env) -> None:
    doc = await create_draft(env)
    await route_draft(env, doc, [["minister.digital", "minister.finance"]], ["governor"])
    key = uuid.uuid4().hex
    first = await visa(env, doc["id"], "minister.digital", key=key)
    assert first.status_code == 201
    again = await visa(env, doc["id"], "minister.digital", key=key)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    other = await visa(
        env, doc["id"], "minister.digital", "approved_with_remarks", comment="x", key=key
    )
    assert other.status_code == 422
    # Without the key, the same decision again is a conflict, not an overwrite.
    assert (await visa(env, doc["id"], "minister.digital")).status_code == 409
    n = await scalar(
        env,
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.document_id == uuid.UUID(doc["id"]), AuditEvent.action.like("visa.%")),
    )
    assert n == 1


async def test_two_approvers_at_once_complete_stage_once(env: Env) -> None:
    doc = await create_draft(env)
    await route_draft(
        env, doc, [["minister.digital", "minister.finance"], ["first.deputy"]], ["governor"]
    )
    sha = doc["files"][0]["sha256"]
    for login in ("minister.digital", "minister.finance"):
        await env.login(login)
    a, b = await asyncio.gather(
        visa(env, doc["id"], "minister.digital", sha=sha),
        visa(env, doc["id"], "minister.finance", sha=sha),
    )
    assert (a.status_code, b.status_code) == (201, 201), (a.text, b.text)
    doc_id = uuid.UUID(doc["id"])
    completed = await scalar(
        env,
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.document_id == doc_id, AuditEvent.action == "route.stage_completed"),
    )
    asked = await scalar(
        env, select(func.count()).select_from(Approval).where(Approval.document_id == doc_id)
    )
    assert completed == 1
    assert asked == 3  # two in stage 0, first.deputy once in stage 1


async def test_same_decision_from_two_devices(env: Env) -> None:
    doc = await create_draft(env)
    await route_draft(env, doc, [["minister.digital", "minister.finance"]], ["governor"])
    sha = doc["files"][0]["sha256"]
    a, b = await asyncio.gather(
        visa(env, doc["id"], "minister.digital", sha=sha),
        visa(env, doc["id"], "minister.digital", sha=sha),
    )
    assert sorted([a.status_code, b.status_code]) == [201, 409]
    key = uuid.uuid4().hex
    a, b = await asyncio.gather(
        visa(env, doc["id"], "minister.finance", sha=sha, key=key),
        visa(env, doc["id"], "minister.finance", sha=sha, key=key),
    )
    codes = sorted([a.status_code, b.status_code])
    assert codes in ([201, 201], [201, 409])
    n = await scalar(
        env,
        select(func.count())
        .select_from(Approval)
        .where(Approval.document_id == uuid.UUID(doc["id"]), Approval.decision.is_not(None)),
    )
    assert n == 2


async def _to_signing(env: Env, addressees: list[tuple[str, str]]) -> dict[str, object]:
    doc = await create_draft(env, addressees=addressees)
    await route_draft(env, doc, [["minister.digital"]], ["first.deputy", "governor"])
    assert (await visa(env, doc["id"], "minister.digital")).status_code == 201
    return doc


async def test_signatories_in_order_then_registration_and_delivery(env: Env) -> None:
    doc = await _to_signing(env, [("minister.finance", "resolve"), ("minister.digital", "info")])
    doc_id = uuid.UUID(str(doc["id"]))
    sha = doc["files"][0]["sha256"]  # type: ignore[index]
    me_gov = await env.cabinets("governor")
    me_first = await env.cabinets("first.deputy")
    sessions = make_sessionmaker(env.engine)
    now = dt.datetime.now(dt.UTC)
    async with sessions() as s:
        # Not the governor's turn yet.
        try:
            await complete_signatory_step(
                s,
                document_id=doc_id,
                position_id=uuid.UUID(await env.own_position("governor")),
                user_id=uuid.UUID(me_gov["user"]["id"]),
                actor_role="own",
                file_sha256=sha,
                now=now,
                tz=env.settings.timezone,
            )
            raise AssertionError("expected a conflict")
        except Exception as exc:
            assert type(exc).__name__ == "Conflict"
            await s.rollback()
    for login, me in (("first.deputy", me_first), ("governor", me_gov)):
        async with sessions() as s:
            await complete_signatory_step(
                s,
                document_id=doc_id,
                position_id=uuid.UUID(await env.own_position(login)),
                user_id=uuid.UUID(me["user"]["id"]),
                actor_role="own",
                file_sha256=sha,
                now=now,
                tz=env.settings.timezone,
            )
            await s.commit()
    c = await card(env, str(doc_id), "minister.finance")
    assert c["state"] == "registered" and c["reg_number"].startswith("01-15/")
    assert c["route"]["state"] == "completed"
    assert [s["state"] for s in c["route"]["signatories"]] == ["signed", "signed"]
    assert await open_items(env, str(doc_id), "resolve") == [
        await env.own_position("minister.finance")
    ]
    assert await open_items(env, str(doc_id), "info") == [
        await env.own_position("minister.digital")
    ]
    assert await open_items(env, str(doc_id), "sign") == []


async def _dsp_draft(env: Env) -> dict[str, Any]:
    card = {
        "position_id": await env.own_position("lawyer"),
        "kind": "internal",
        "title": "Служебная записка (ДСП)",
        "access_level": "dsp",
    }
    r = await env.client.post(
        "/api/v1/documents",
        headers=await env.login("lawyer"),
        files=[
            ("card", (None, json.dumps(card), "application/json")),
            ("files", ("draft.pdf", workflow.pdf("dsp"), "application/pdf")),
        ],
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_dsp_route_refuses_uncleared_approvers_and_signatories(env: Env) -> None:
    doc = await _dsp_draft(env)
    headers = await env.login("lawyer")
    for stages, signatories in (
        ([[await env.own_position("executor")]], [await env.own_position("governor")]),
        ([[await env.own_position("governor")]], [await env.own_position("executor")]),
    ):
        body = {
            "stages": [{"approvers": s, "deadline_days": 2} for s in stages],
            "signatories": signatories,
            "journal_id": await workflow.journal_id(env),
        }
        r = await env.client.post(
            f"/api/v1/documents/{doc['id']}/route", json=body, headers=headers
        )
        assert r.status_code == 422, r.text
        assert "ДСП" in r.json()["detail"]


async def test_route_refuses_another_organisations_journal(env: Env) -> None:
    doc = await workflow.create_draft(env)
    async with env.engine.connect() as conn:
        foreign = (
            await conn.execute(
                text(
                    "SELECT j.id FROM journals j JOIN organizations o ON o.id = j.organization_id"
                    " WHERE o.kind = 'ministry' LIMIT 1"
                )
            )
        ).scalar_one()
    body = {
        "stages": [{"approvers": [await env.own_position("governor")], "deadline_days": 2}],
        "signatories": [await env.own_position("governor")],
        "journal_id": str(uuid.UUID(str(foreign))),
    }
    r = await env.client.post(
        f"/api/v1/documents/{doc['id']}/route", json=body, headers=await env.login("lawyer")
    )
    assert r.status_code == 422, r.text


async def test_the_cached_card_is_never_older_than_the_last_decision(env: Env) -> None:
    """The card cache is keyed by the document's audit-event count (documents/card_cache.py),
    so every decision that changes the card must write an audit event. After each step of
    a route's life, the card as served (from the cache where the key still matches) must
    equal one built afresh."""
    svc = env.app.state.services
    doc = await create_draft(env)
    h = await env.login("lawyer")

    async def served_and_fresh() -> tuple[dict[str, Any], dict[str, Any]]:
        served = await card(env, doc["id"])
        svc.cards.clear()
        return served, await card(env, doc["id"])

    async def set_route() -> None:
        await route_draft(
            env, doc, [["minister.digital", "minister.finance"]], ["governor"], start=False
        )

    async def start() -> None:
        r = await env.client.post(f"/api/v1/documents/{doc['id']}/route/start", headers=h)
        assert r.status_code == 201, r.text

    async def approve(login: str) -> None:
        r = await visa(env, doc["id"], login)
        assert r.status_code == 201, r.text

    async def reject() -> None:
        r = await visa(env, doc["id"], "minister.finance", "rejected", comment="Переделать")
        assert r.status_code == 201, r.text

    async def new_version() -> None:
        r = await env.client.post(
            f"/api/v1/documents/{doc['id']}/versions",
            files={"file": ("v2.pdf", pdf("cache-" + doc["id"]), "application/pdf")},
            headers=h,
        )
        assert r.status_code == 201, r.text

    steps = [
        ("route set", set_route),
        ("started", start),
        ("first visa", lambda: approve("minister.digital")),
        ("rejected", reject),
        ("new version", new_version),
        ("restarted", start),
        ("visa", lambda: approve("minister.digital")),
        ("stage done", lambda: approve("minister.finance")),
    ]
    await card(env, doc["id"])  # cached before the first step
    for name, step in steps:
        await step()
        served, fresh = await served_and_fresh()
        assert served == fresh, name
    assert served["route"]["state"] == "signing"

"""Resolutions: issue with assignments, tree, assistants' drafts, reports, control, cancel,
templates, forwarding — and who may do what."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import select, text

from backend.db.models import AuditEvent, Journal, Position
from tests.backend.conftest import Env
from tests.backend.workflow import card, open_items, outbox, pdf, scalar


async def registered_for(env: Env, login: str = "governor") -> dict[str, Any]:
    clerk = uuid.UUID(await env.own_position("clerk"))
    org = await scalar(env, select(Position.organization_id).where(Position.id == clerk))
    journal = await scalar(
        env, select(Journal.id).where(Journal.organization_id == org, Journal.kind == "incoming")
    )
    body = {
        "position_id": str(clerk),
        "kind": "incoming",
        "title": f"Письмо {uuid.uuid4().hex[:6]}",
        "addressees": [{"position_id": await env.own_position(login), "mode": "resolve"}],
        "journal_id": str(journal),
        "deadline": "2099-01-15",
    }
    r = await env.client.post(
        "/api/v1/documents",
        data={"card": json.dumps(body)},
        files=[("files", ("l.pdf", pdf("in-" + body["title"]), "application/pdf"))],
        headers=await env.login("clerk"),
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def resolve(env: Env, doc_id: str, login: str, **extra: Any) -> Any:
    body: dict[str, Any] = {
        "position_id": await env.own_position(login),
        "text": "Прошу рассмотреть и подготовить ответ",
        "deadline": "2099-01-10",
        "on_control": True,
        "executors": [
            {"position_id": await env.own_position("minister.digital"), "responsible": True},
            {"position_id": await env.own_position("minister.finance")},
        ],
    }
    as_login = extra.pop("as_login", None)
    body.update(extra)
    headers = await env.login(as_login or login)
    return await env.client.post(
        f"/api/v1/documents/{doc_id}/resolutions", json=body, headers=headers
    )


async def test_resolution_gives_assignments_and_control(env: Env) -> None:
    doc = await registered_for(env)
    gov = await env.own_position("governor")
    r = await resolve(env, doc["id"], "governor")
    assert r.status_code == 201, r.text
    res = r.json()
    assert res["state"] == "issued" and len(res["assignments"]) == 2
    assert [a["responsible"] for a in res["assignments"]] == [True, False]
    assert await open_items(env, doc["id"], "resolve") == []
    assert len(await open_items(env, doc["id"], "execute")) == 2
    assert await open_items(env, doc["id"], "control") == [gov, gov]
    responsible = res["assignments"][0]
    # The executor reports; the governor accepts and removes it from control.
    h = await env.login("minister.digital")
    r = await env.client.post(
        f"/api/v1/assignments/{responsible['id']}/report", json={"text": "Исполнено"}, headers=h
    )
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "reported"
    again = await env.client.post(
        f"/api/v1/assignments/{responsible['id']}/report", json={"text": "Ещё"}, headers=h
    )
    assert again.status_code == 409
    # Not the controller: 403.
    r = await env.client.post(f"/api/v1/assignments/{responsible['id']}/accept-report", headers=h)
    assert r.status_code == 403
    g = await env.login("governor")
    r = await env.client.post(
        f"/api/v1/assignments/{responsible['id']}/return-report",
        json={"comment": "Дополнить"},
        headers=g,
    )
    assert r.status_code == 201 and r.json()["state"] == "open"
    assert await env.own_position("minister.digital") in await open_items(env, doc["id"], "execute")
    r = await env.client.post(
        f"/api/v1/assignments/{responsible['id']}/report", json={"text": "Дополнено"}, headers=h
    )
    assert r.status_code == 201
    r = await env.client.post(f"/api/v1/assignments/{responsible['id']}/accept-report", headers=g)
    assert r.status_code == 201 and r.json()["state"] == "executed"
    r = await env.client.post(
        f"/api/v1/assignments/{responsible['id']}/remove-from-control", headers=g
    )
    assert r.status_code == 201 and r.json()["on_control"] is False
    assert await open_items(env, doc["id"], "control") == [gov]
    c = await card(env, doc["id"], "governor")
    assert c["resolutions"][0]["assignments"][0]["report_text"] == "Дополнено"


async def test_validation_of_executors_and_rights(env: Env) -> None:
    doc = await registered_for(env)
    digital = await env.own_position("minister.digital")
    two = [{"position_id": digital, "responsible": True}] * 2
    assert (await resolve(env, doc["id"], "governor", executors=two)).status_code == 422
    none = [{"position_id": digital}]
    assert (await resolve(env, doc["id"], "governor", executors=none)).status_code == 422
    assert (await resolve(env, doc["id"], "governor", deadline="2001-01-01")).status_code == 422
    assert (await resolve(env, doc["id"], "governor", bogus=1)).status_code == 422
    # The assistant may not issue in the governor's name, only prepare a draft.
    r = await resolve(env, doc["id"], "governor", as_login="assistant")
    assert r.status_code == 403
    # The document is not addressed to the first deputy: 404 (he does not see it).
    assert (await resolve(env, doc["id"], "first.deputy")).status_code == 404


async def test_assistant_draft_issued_with_edits_by_executive(env: Env) -> None:
    doc = await registered_for(env)
    gov = await env.own_position("governor")
    r = await resolve(env, doc["id"], "governor", as_login="assistant", draft=True)
    assert r.status_code == 201, r.text
    draft = r.json()
    assert draft["state"] == "draft" and draft["assignments"] == []
    assert draft["prepared_by"] is not None
    assert await open_items(env, doc["id"], "drafts") == [gov]
    # The assistant cannot issue it.
    r = await env.client.post(
        f"/api/v1/resolutions/{draft['id']}/issue", headers=await env.login("assistant")
    )
    assert r.status_code == 403
    g = await env.login("governor")
    r = await env.client.post(
        f"/api/v1/resolutions/{draft['id']}/issue",
        json={"text": "Прошу срочно подготовить ответ"},
        headers=g,
    )
    assert r.status_code == 201, r.text
    issued = r.json()
    assert issued["state"] == "issued" and issued["text"] == "Прошу срочно подготовить ответ"
    assert issued["prepared_by"] != issued["decided_by"]
    assert await open_items(env, doc["id"], "drafts") == []
    assert len(await open_items(env, doc["id"], "execute")) == 2
    r = await env.client.post(f"/api/v1/resolutions/{draft['id']}/issue", headers=g)
    assert r.status_code == 409
    # A second draft is rejected.
    r = await resolve(env, doc["id"], "governor", as_login="assistant", draft=True)
    second = r.json()
    r = await env.client.post(
        f"/api/v1/resolutions/{second['id']}/reject", json={"comment": "Не так"}, headers=g
    )
    assert r.status_code == 201 and r.json()["state"] == "rejected"
    assert await open_items(env, doc["id"], "drafts") == []


async def test_tree_and_cancel(env: Env) -> None:
    doc = await registered_for(env)
    top = (await resolve(env, doc["id"], "governor")).json()
    digital_executor = await env.own_position("executor")
    child = await resolve(
        env,
        doc["id"],
        "minister.digital",
        parent_id=top["id"],
        on_control=False,
        executors=[{"position_id": digital_executor, "responsible": True}],
    )
    assert child.status_code == 201, child.text
    # The finance minister has no assignment under a made-up parent.
    bad = await resolve(
        env,
        doc["id"],
        "minister.finance",
        parent_id=child.json()["id"],
        executors=[{"position_id": digital_executor, "responsible": True}],
    )
    assert bad.status_code == 403
    c = await card(env, doc["id"], "governor")
    assert len(c["resolutions"]) == 1
    assert c["resolutions"][0]["children"][0]["id"] == child.json()["id"]
    r = await env.client.post(
        f"/api/v1/resolutions/{top['id']}/cancel", headers=await env.login("governor")
    )
    assert r.status_code == 201 and r.json()["state"] == "cancelled"
    assert all(a["state"] == "cancelled" for a in r.json()["assignments"])
    assert await open_items(env, doc["id"], "control") == []


async def test_idempotent_report(env: Env) -> None:
    doc = await registered_for(env)
    top = (await resolve(env, doc["id"], "governor")).json()
    aid = top["assignments"][0]["id"]
    h = {**await env.login("minister.digital"), "Idempotency-Key": uuid.uuid4().hex}
    a = await env.client.post(f"/api/v1/assignments/{aid}/report", json={"text": "X"}, headers=h)
    b = await env.client.post(f"/api/v1/assignments/{aid}/report", json={"text": "X"}, headers=h)
    c = await env.client.post(f"/api/v1/assignments/{aid}/report", json={"text": "Y"}, headers=h)
    assert (a.status_code, b.status_code, c.status_code) == (201, 201, 422)
    assert a.json() == b.json()


async def test_forward_and_templates(env: Env) -> None:
    doc = await registered_for(env)
    g = await env.login("governor")
    gov = await env.own_position("governor")
    first = await env.own_position("first.deputy")
    r = await env.client.post(
        f"/api/v1/documents/{doc['id']}/forward",
        json={"position_id": gov, "to_position_id": first, "note": "Вам"},
        headers=g,
    )
    assert r.status_code == 201, r.text
    assert await open_items(env, doc["id"], "resolve") == [first]
    r = await env.client.post(
        f"/api/v1/documents/{doc['id']}/forward",
        json={"position_id": gov, "to_position_id": first},
        headers=g,
    )
    assert r.status_code == 409
    a = await env.login("assistant")
    r = await env.client.post(
        "/api/v1/resolution-templates", json={"position_id": gov, "text": "В работу"}, headers=a
    )
    assert r.status_code == 201
    r = await env.client.get(f"/api/v1/resolution-templates?position_id={gov}", headers=g)
    assert "В работу" in [t["text"] for t in r.json()]
    r = await env.client.get(
        f"/api/v1/resolution-templates?position_id={gov}", headers=await env.login("executor")
    )
    assert r.status_code == 403


async def test_return_draft_to_assistant_and_resubmit(env: Env) -> None:
    doc = await registered_for(env)
    gov = await env.own_position("governor")
    own = await env.own_position("assistant")
    a = await env.login("assistant")
    g = await env.login("governor")
    draft = (await resolve(env, doc["id"], "governor", as_login="assistant", draft=True)).json()
    url = f"/api/v1/resolutions/{draft['id']}"
    # Only the executive returns it, and with a comment saying what to rework.
    r = await env.client.post(f"{url}/return", json={"comment": "Срок"}, headers=a)
    assert r.status_code == 403
    assert (await env.client.post(f"{url}/return", json={}, headers=g)).status_code == 422
    key = {**g, "Idempotency-Key": uuid.uuid4().hex}
    r = await env.client.post(f"{url}/return", json={"comment": "Уточните срок"}, headers=key)
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "returned" and r.json()["comment"] == "Уточните срок"
    again = await env.client.post(f"{url}/return", json={"comment": "Уточните срок"}, headers=key)
    assert again.status_code == 201 and again.json() == r.json()
    assert again.headers.get("idempotent-replayed") == "true"
    r = await env.client.post(f"{url}/return", json={"comment": "Ещё раз"}, headers=g)
    assert r.status_code == 409
    # It left the governor's `drafts` for the assistant's own, and cannot be issued now.
    assert await open_items(env, doc["id"], "drafts") == [own]
    assert (await env.client.post(f"{url}/issue", headers=g)).status_code == 409
    events = await outbox(env, "resolution.returned", doc["id"])
    assert [e["positions"] for e in events] == [[own]]
    # The assistant reworks it and puts it back; the governor issues it.
    r = await env.client.post(f"{url}/resubmit", json={"deadline": "2099-01-05"}, headers=a)
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "draft" and r.json()["deadline"] == "2099-01-05"
    assert await open_items(env, doc["id"], "drafts") == [gov]
    assert (await env.client.post(f"{url}/resubmit", headers=a)).status_code == 409
    r = await env.client.post(f"{url}/issue", headers=g)
    assert r.status_code == 201 and r.json()["state"] == "issued"
    history = [h["action"] for h in (await card(env, doc["id"], "governor"))["history"]]
    assert history.count("resolution.returned") == 1
    assert history.count("resolution.resubmitted") == 1


async def test_executive_cannot_return_own_draft(env: Env) -> None:
    doc = await registered_for(env)
    mine = (await resolve(env, doc["id"], "governor", draft=True)).json()
    r = await env.client.post(
        f"/api/v1/resolutions/{mine['id']}/return",
        json={"comment": "Себе"},
        headers=await env.login("governor"),
    )
    assert r.status_code == 409


async def test_cancel_cascades_to_child_resolutions(env: Env) -> None:
    doc = await registered_for(env)
    top = (await resolve(env, doc["id"], "governor")).json()
    executor = await env.own_position("executor")
    lawyer = await env.own_position("lawyer")
    # The digital minister resolves under his assignment, on control; the executor in turn.
    child = await resolve(
        env,
        doc["id"],
        "minister.digital",
        parent_id=top["id"],
        executors=[{"position_id": executor, "responsible": True}],
    )
    assert child.status_code == 201, child.text
    grandchild = await resolve(
        env,
        doc["id"],
        "executor",
        parent_id=child.json()["id"],
        on_control=False,
        executors=[{"position_id": lawyer, "responsible": True}],
    )
    assert grandchild.status_code == 201, grandchild.text
    assert len(await open_items(env, doc["id"], "execute")) == 4
    r = await env.client.post(
        f"/api/v1/resolutions/{top['id']}/cancel",
        json={"comment": "Отозвано"},
        headers=await env.login("governor"),
    )
    assert r.status_code == 201, r.text
    tree = r.json()
    sub = tree["children"][0]
    assert [tree["state"], sub["state"], sub["children"][0]["state"]] == ["cancelled"] * 3
    assignments = [
        *tree["assignments"],
        *sub["assignments"],
        *sub["children"][0]["assignments"],
    ]
    assert len(assignments) == 4 and {a["state"] for a in assignments} == {"cancelled"}
    assert await open_items(env, doc["id"], "execute") == []
    assert await open_items(env, doc["id"], "control") == []
    async with env.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(AuditEvent.object_id, AuditEvent.details).where(
                    AuditEvent.document_id == uuid.UUID(doc["id"]),
                    AuditEvent.action == "resolution.cancelled",
                )
            )
        ).all()
    cascaded = {str(o): d.get("cascade_from") for o, d in rows}
    assert cascaded == {
        top["id"]: None,
        child.json()["id"]: top["id"],
        grandchild.json()["id"]: top["id"],
    }
    events = await outbox(env, "resolution.cancelled", doc["id"])
    assert len(events) == 3
    # The minister hears that his resolution was cancelled from above. (The descendants
    # are cancelled by one UPDATE, whose RETURNING order PostgreSQL does not fix.)
    [about_child] = [e for e in events if e["resolution_id"] == child.json()["id"]]
    assert await env.own_position("minister.digital") in about_child["positions"]


async def test_dsp_resolution_refuses_an_uncleared_controller(env: Env) -> None:
    minister = await env.own_position("minister.digital")
    async with env.engine.connect() as conn:
        journal = (
            await conn.execute(
                text(
                    "SELECT j.id FROM journals j JOIN positions p"
                    " ON p.organization_id = j.organization_id"
                    " JOIN position_holders h ON h.position_id = p.id"
                    " JOIN users u ON u.id = h.user_id"
                    " WHERE u.login = 'clerk' AND j.kind = 'incoming'"
                )
            )
        ).scalar_one()
    card = {
        "position_id": await env.own_position("clerk"),
        "kind": "incoming",
        "title": "Письмо (ДСП)",
        "access_level": "dsp",
        "addressees": [{"position_id": minister, "mode": "resolve"}],
        "journal_id": str(uuid.UUID(str(journal))),
    }
    r = await env.client.post(
        "/api/v1/documents", data={"card": json.dumps(card)}, headers=await env.login("clerk")
    )
    assert r.status_code == 201, r.text
    body = {
        "position_id": minister,
        "text": "Подготовить ответ",
        "on_control": True,
        "controller_id": await env.own_position("executor"),
        "executors": [{"position_id": await env.own_position("lawyer"), "responsible": True}],
    }
    res = await env.client.post(
        f"/api/v1/documents/{r.json()['id']}/resolutions",
        json=body,
        headers=await env.login("minister.digital"),
    )
    assert res.status_code == 422, res.text
    assert "ДСП" in res.json()["detail"]


async def test_the_cached_card_follows_every_resolution_decision(env: Env) -> None:
    """As for routes (test_routes): after each resolution and assignment decision the card
    as served equals one built afresh, so each of them writes its audit event."""
    svc = env.app.state.services
    doc = await registered_for(env)
    g = await env.login("governor")
    h = await env.login("minister.digital")
    state: dict[str, Any] = {}

    async def post(path: str, headers: dict[str, str], body: Any = None) -> Any:
        r = await env.client.post(path, json=body, headers=headers)
        assert r.status_code == 201, (path, r.text)
        return r.json()

    async def draft() -> None:
        r = await resolve(env, doc["id"], "governor", as_login="assistant", draft=True)
        assert r.status_code == 201, r.text
        state["res"] = r.json()

    async def issue() -> None:
        out = await post(f"/api/v1/resolutions/{state['res']['id']}/issue", g)
        state["a"] = out["assignments"][0]["id"]

    steps = [
        ("drafted by the assistant", draft),
        ("issued", issue),
        ("reported", lambda: post(f"/api/v1/assignments/{state['a']}/report", h, {"text": "Да"})),
        (
            "report returned",
            lambda: post(f"/api/v1/assignments/{state['a']}/return-report", g, {"comment": "Ещё"}),
        ),
        (
            "reported again",
            lambda: post(f"/api/v1/assignments/{state['a']}/report", h, {"text": "Всё"}),
        ),
        ("accepted", lambda: post(f"/api/v1/assignments/{state['a']}/accept-report", g)),
        ("off control", lambda: post(f"/api/v1/assignments/{state['a']}/remove-from-control", g)),
        ("cancelled", lambda: post(f"/api/v1/resolutions/{state['res']['id']}/cancel", g)),
    ]
    await card(env, doc["id"], "governor")
    for name, step in steps:
        await step()
        served = await card(env, doc["id"], "governor")
        svc.cards.clear()
        assert served == await card(env, doc["id"], "governor"), name

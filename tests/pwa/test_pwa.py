"""The tablet cabinet in chromium: reading, offline reading, offline decisions synced once."""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

import pytest

from tests.pwa.conftest import PASSWORD, Server, screenshot

pytestmark = pytest.mark.browser


def sign_in(page: Any, login: str) -> None:
    page.goto("/")
    page.get_by_test_id("login").fill(login)
    page.get_by_test_id("password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.locator("[data-folder=resolve]").wait_for()


def wait_offline_ready(page: Any) -> None:
    page.locator("[data-offline-ready]").wait_for(timeout=60_000)


def page_loaded(page: Any, n: int = 1) -> bool:
    img = page.locator(f"img[data-page='{n}']")
    img.wait_for()
    page.wait_for_function(
        "n => { const i = document.querySelector(`img[data-page='${n}']`);"
        " return i && i.complete && i.naturalWidth > 0; }",
        arg=n,
    )
    return bool(img.evaluate("i => i.naturalWidth > 0"))


def test_login_folder_document_pages(page: Any) -> None:
    page.goto("/")
    page.get_by_test_id("login").wait_for()
    screenshot(page, "01-login")
    sign_in(page, "governor")
    wait_offline_ready(page)
    screenshot(page, "02-folders")
    page.emulate_media(color_scheme="dark")
    screenshot(page, "02-folders-dark")
    page.emulate_media(color_scheme="light")
    page.locator("[data-folder=resolve]").click()
    first = page.locator("[data-document-id]").first
    first.wait_for()
    screenshot(page, "03-queue")
    first.click()
    assert page_loaded(page, 1)
    screenshot(page, "04-document")
    page.locator("[data-action=resolve]").click()
    page.locator("[data-action=confirm]").wait_for()
    screenshot(page, "05-resolution-sheet")


def test_queue_load_more(page: Any) -> None:
    sign_in(page, "governor")
    # The governor's folders are small in the demo; the load-more button only shows a cursor.
    page.locator("[data-folder=control]").click()
    page.locator("[data-document-id]").first.wait_for()
    more = page.get_by_role("button", name="Показать ещё")
    before = page.locator("[data-document-id]").count()
    if more.is_visible():
        more.click()
        page.wait_for_function(f"document.querySelectorAll('[data-document-id]').length > {before}")


def test_opening_a_document_clears_its_new_mark(page: Any) -> None:
    sign_in(page, "governor")
    tile = page.locator("[data-folder=resolve]")
    tile.click()
    unread = page.locator(".qitem.unread[data-document-id]")
    unread.first.wait_for()
    doc_id = unread.first.get_attribute("data-document-id")
    with page.expect_response(lambda r: r.url.endswith("/read") and r.status == 204):
        unread.first.click()
        page.locator(f"[data-card-id='{doc_id}']").wait_for()
    page.go_back()
    item = page.locator(f"[data-document-id='{doc_id}']")
    item.wait_for()
    assert "unread" not in (item.get_attribute("class") or "")


def test_offline_reload_shows_queue_and_pages(page: Any, context: Any) -> None:
    sign_in(page, "governor")
    wait_offline_ready(page)
    page.locator("[data-folder=resolve]").click()
    items = page.locator("[data-document-id]")
    items.first.wait_for()
    ids = items.evaluate_all("els => els.map(e => e.dataset.documentId)")
    context.set_offline(True)
    page.reload()
    page.locator("[data-document-id]").first.wait_for()
    assert page.locator("[data-offline-ready]").count() == 1
    again = page.locator("[data-document-id]").evaluate_all(
        "els => els.map(e => e.dataset.documentId)"
    )
    assert again == ids
    # Answered by the service worker's copy, not by the network.
    assert page.locator(".stale-note").is_visible()
    screenshot(page, "06-offline-queue")
    # A document never opened online: its card and first pages were fetched ahead.
    page.locator(f"[data-document-id='{ids[-1]}']").click()
    assert page_loaded(page, 1)
    context.set_offline(False)


# --- decisions ---------------------------------------------------------------------------------


def _journal_id(server: Server) -> str:
    with sqlite3.connect(server.data_dir / "kabinet.db") as db:
        row = db.execute(
            "SELECT id FROM journals WHERE kind = 'outgoing' ORDER BY name LIMIT 1"
        ).fetchone()
    value = row[0]
    return str(uuid.UUID(bytes=value) if isinstance(value, bytes) else uuid.UUID(value))


def _pdf(tag: str) -> bytes:
    from backend.demo.pdfs import letter_pdf

    return letter_pdf("Тест", "проект", "01.12.2026", "Кому", f"Проект {tag}", ["Текст."], "Я", 1)


def routed_draft(
    server: Server,
    approver: str = "governor",
    author: str = "lawyer",
    signatories: tuple[str, ...] | None = None,
) -> str:
    """A draft by `author` on a started route whose only stage is `approver`'s visa, signed
    by `signatories` (the author by default)."""
    card = {
        "position_id": server.own_position(author),
        "kind": "outgoing",
        "title": f"Проект письма {uuid.uuid4().hex[:6]}",
        "addressees": [],
    }
    r = server.http.post(
        "/api/v1/documents",
        headers=server.headers(author),
        files=[
            ("card", (None, json.dumps(card), "application/json")),
            ("files", ("draft.pdf", _pdf(uuid.uuid4().hex), "application/pdf")),
        ],
    )
    assert r.status_code == 201, r.text
    doc_id = str(r.json()["id"])
    route = {
        "stages": [{"approvers": [server.own_position(approver)], "deadline_days": 3}],
        "signatories": [server.own_position(login) for login in (signatories or (author,))],
        "journal_id": _journal_id(server),
    }
    h = server.headers(author)
    r = server.http.post(f"/api/v1/documents/{doc_id}/route", json=route, headers=h)
    assert r.status_code == 201, r.text
    r = server.http.post(f"/api/v1/documents/{doc_id}/route/start", headers=h)
    assert r.status_code == 201, r.text
    return doc_id


def visas_of(server: Server, doc_id: str, login: str) -> list[dict[str, Any]]:
    card = server.get(f"/api/v1/documents/{doc_id}", "lawyer")
    pid = server.own_position(login)
    return [
        ap
        for st in (card.get("route") or {}).get("stages", [])
        for ap in st["approvers"]
        if ap["position_id"] == pid and ap["decision"]
    ]


def visa_history(server: Server, doc_id: str) -> list[dict[str, Any]]:
    card = server.get(f"/api/v1/documents/{doc_id}", "lawyer")
    decisions = {"visa.approved", "visa.approved_with_remarks", "visa.rejected"}
    return [e for e in card["history"] if e["action"] in decisions]


@pytest.fixture
def visa_api(server: Server) -> None:
    if not server.has_path("/api/v1/documents/{document_id}/visas"):
        pytest.fail("the visa endpoint is missing from the server's OpenAPI document")


def open_visa_document(page: Any, doc_id: str) -> None:
    sign_in(page, "governor")
    wait_offline_ready(page)
    page.locator("[data-folder=visa]").click()
    page.locator(f"[data-document-id='{doc_id}']").click()
    assert page_loaded(page, 1)


def test_offline_visa_syncs_exactly_once(
    page: Any, context: Any, server: Server, visa_api: None
) -> None:
    doc_id = routed_draft(server)
    open_visa_document(page, doc_id)
    context.set_offline(True)
    page.locator("[data-action=visa-remarks]").click()
    page.locator("#visa-comment").fill("Уточнить сроки в пункте 2.")
    screenshot(page, "07-visa-sheet-offline")
    page.locator("[data-action=confirm]").click()
    page.locator("[data-sync=pending]").wait_for()
    screenshot(page, "08-visa-pending")
    assert visas_of(server, doc_id, "governor") == []
    context.set_offline(False)
    page.locator("[data-sync=done]").wait_for(timeout=30_000)
    visas = visas_of(server, doc_id, "governor")
    assert [(v["decision"], v["comment"]) for v in visas] == [
        ("approved_with_remarks", "Уточнить сроки в пункте 2.")
    ]
    # A reload replays the (now empty) outbox on start: still exactly one visa.
    page.reload()
    page.locator("[data-sync=done]").wait_for()
    page.wait_for_timeout(500)
    assert len(visa_history(server, doc_id)) == 1
    assert len(visas_of(server, doc_id, "governor")) == 1


def test_offline_visa_on_a_changed_draft_shows_409(
    page: Any, context: Any, server: Server, visa_api: None
) -> None:
    doc_id = routed_draft(server)
    open_visa_document(page, doc_id)
    context.set_offline(True)
    page.locator("[data-action=visa-approve]").click()
    page.locator("[data-action=confirm]").click()
    page.locator("[data-sync=pending]").wait_for()
    # Meanwhile the author uploads a new version: the governor saw the old one.
    r = server.http.post(
        f"/api/v1/documents/{doc_id}/versions",
        headers=server.headers("lawyer"),
        files=[("file", ("draft-v2.pdf", _pdf(uuid.uuid4().hex), "application/pdf"))],
    )
    assert r.status_code == 201, r.text
    context.set_offline(False)
    problem = page.get_by_test_id("sync-problem")
    problem.wait_for(timeout=30_000)
    assert problem.get_attribute("data-status") == "409"
    assert "документ изменился" in problem.inner_text()
    page.locator("[data-sync=done]").wait_for()
    screenshot(page, "09-conflict-409")
    assert visas_of(server, doc_id, "governor") == []


@pytest.fixture
def resolution_api(server: Server) -> None:
    for path in (
        "/api/v1/documents/{document_id}/resolutions",
        "/api/v1/resolutions/{resolution_id}/issue",
    ):
        if not server.has_path(path):
            pytest.fail(f"{path} is missing from the server's OpenAPI document")


def test_assistant_drafts_a_resolution_and_the_governor_issues_it(
    browser: Any, context: Any, server: Server, resolution_api: None
) -> None:
    governor_pid = server.own_position("governor")
    page = context.new_page()
    sign_in(page, "assistant")
    page.locator("#cabinet").select_option(governor_pid)
    wait_offline_ready(page)
    page.locator("[data-folder=resolve]").click()
    item = page.locator("[data-document-id]").first
    doc_id = item.get_attribute("data-document-id")
    before = {r["id"] for r in server.get(f"/api/v1/documents/{doc_id}", "governor")["resolutions"]}
    item.click()
    assert page_loaded(page, 1)
    page.locator("[data-action=resolve]").click()
    page.get_by_role("button", name="Прошу рассмотреть и доложить.").click()
    page.locator(".pick").first.click()
    page.locator(".picker-chosen input[type=radio]:checked").wait_for()
    screenshot(page, "10-draft-resolution-sheet")
    page.locator("[data-action=confirm]").click()
    page.locator("#sheet[open]").wait_for(state="detached")
    page.locator("[data-sync=done]").wait_for()
    assert page.get_by_test_id("sync-problem").count() == 0, page.locator("#problems").inner_text()
    card = server.get(f"/api/v1/documents/{doc_id}", "governor")
    drafts = [r for r in card["resolutions"] if r["id"] not in before]
    assert [(r["state"], r["text"]) for r in drafts] == [("draft", "Прошу рассмотреть и доложить.")]
    draft_id = drafts[0]["id"]

    governor = browser.new_context(
        base_url=server.base_url, viewport={"width": 1024, "height": 768}, has_touch=True
    )
    try:
        g = governor.new_page()
        sign_in(g, "governor")
        g.locator("[data-folder=drafts]").click()
        g.locator(f"[data-document-id='{doc_id}']").click()
        issue = g.locator(f"[data-resolution-id='{draft_id}'] [data-action=issue]")
        issue.click()
        g.locator("[data-action=confirm]").click()
        g.locator("#sheet[open]").wait_for(state="detached")
        g.locator("[data-sync=done]").wait_for()
        assert g.get_by_test_id("sync-problem").count() == 0, g.locator("#problems").inner_text()
        card = server.get(f"/api/v1/documents/{doc_id}", "governor")
        states = {r["id"]: r["state"] for r in card["resolutions"]}
        assert states[draft_id] == "issued"
        g.locator(f"[data-resolution-id='{draft_id}'][data-state=issued]").wait_for()
        screenshot(g, "11-resolution-issued")
    finally:
        governor.close()

"""Signing with a WebCrypto device key and push registration, in chromium against the real server.

Signing: a draft by the lawyer, visaed through the API, waits in the governor's `sign` folder;
the governor signs it in the browser (key made on the device, non-extractable, kept in
IndexedDB), and the server's CMS passes `openssl cms -verify` with the CA root. Batch signing
signs several from the folder with one confirmation and shows each item's outcome.

Push: Playwright's contexts are incognito, where Chrome has no Push API ("does not support the
Push API in incognito mode"), and a persistent profile has no reachable push service here
(subscribe never settles). So PushManager.subscribe is replaced in the page by a stub that
records its arguments and returns a well-formed subscription; everything around it is real:
the consent button, the VAPID key from the server, POST /push/subscriptions (checked in the
database), DELETE on logout, and the service worker's notification for a push delivered
through the DevTools protocol (ServiceWorker.deliverPushMessage).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.pwa.conftest import Server, screenshot
from tests.pwa.test_pwa import page_loaded, routed_draft, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def signing_api(server: Server) -> None:
    for path in ("/api/v1/signing/keys", "/api/v1/sign-batches"):
        if not server.has_path(path):
            pytest.fail(f"{path} is missing from the server's OpenAPI document")


def ready_to_sign(server: Server) -> str:
    """A lawyer's draft, visaed by the first deputy, now at the governor's signature."""
    doc_id = routed_draft(server, approver="first.deputy", signatories=("governor",))
    card = server.get(f"/api/v1/documents/{doc_id}", "first.deputy")
    r = server.http.post(
        f"/api/v1/documents/{doc_id}/visas",
        json={
            "position_id": server.own_position("first.deputy"),
            "decision": "approved",
            "file_sha256": card["files"][0]["sha256"],
        },
        headers=server.headers("first.deputy"),
    )
    assert r.status_code == 201, r.text
    return doc_id


def sign_elsewhere(server: Server, login: str, doc_id: str) -> None:
    """Sign through the API with another device's key (DER signature, also accepted)."""
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    h = server.headers(login)
    r = server.http.post(
        "/api/v1/signing/keys",
        json={"public_key_spki": base64.b64encode(spki).decode(), "device_name": "Другой"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    card = server.get(f"/api/v1/documents/{doc_id}", login)
    body = {
        "position_id": server.own_position(login),
        "file_sha256": card["files"][0]["sha256"],
        "key_id": r.json()["key_id"],
    }
    r = server.http.post(f"/api/v1/documents/{doc_id}/sign-requests", json=body, headers=h)
    assert r.status_code == 201, r.text
    tbs = base64.b64decode(r.json()["to_be_signed"])
    signature = base64.b64encode(key.sign(tbs, ec.ECDSA(hashes.SHA256()))).decode()
    r = server.http.post(
        f"/api/v1/sign-requests/{r.json()['request_id']}/complete",
        json={"signature": signature},
        headers=h,
    )
    assert r.status_code == 201, r.text


def stored_device_key(page: Any) -> dict[str, Any]:
    """What IndexedDB holds for the signed-in user: the CryptoKey's properties, not its bytes."""
    return page.evaluate(  # type: ignore[no-any-return]
        """() => new Promise((resolve, reject) => {
          const open = indexedDB.open("kabinet");
          open.onerror = () => reject(open.error);
          open.onsuccess = () => {
            const store = open.result.transaction("kv").objectStore("kv");
            const req = store.getAll(IDBKeyRange.bound("device-key:", "device-key:\uffff"));
            req.onsuccess = () => {
              const [rec] = req.result;
              resolve(rec ? {
                key_id: rec.key_id,
                count: req.result.length,
                type: rec.privateKey.type,
                extractable: rec.privateKey.extractable,
                algorithm: rec.privateKey.algorithm,
                usages: rec.privateKey.usages,
              } : null);
            };
          };
        })"""
    )


def openssl_verify(tmp_path: Path, cms: bytes, content: bytes, ca: bytes) -> bool:
    sig, data, ca_pem = tmp_path / "sig.p7s", tmp_path / "file", tmp_path / "ca.pem"
    sig.write_bytes(cms)
    data.write_bytes(content)
    ca_pem.write_bytes(ca)
    cmd = ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(sig)]
    cmd += ["-content", str(data), "-CAfile", str(ca_pem), "-purpose", "any", "-out", "/dev/null"]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return result.returncode == 0 and "Verification successful" in result.stderr


def fetch_sha(page: Any, url: str) -> str:
    """sha256 of what the page gets for `url` (through the service worker)."""
    return page.evaluate(  # type: ignore[no-any-return]
        """async (url) => {
          const res = await fetch(url);
          const buf = await crypto.subtle.digest("SHA-256", await res.arrayBuffer());
          return [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
        }""",
        url,
    )


def test_device_key_signing_end_to_end(
    page: Any, server: Server, signing_api: None, tmp_path: Path
) -> None:
    doc_id = ready_to_sign(server)
    sign_in(page, "governor")
    page.locator("[data-folder=sign]").click()
    page.locator(f"[data-document-id='{doc_id}']").click()
    card = server.get(f"/api/v1/documents/{doc_id}", "governor")
    f = card["files"][0]
    last = f["pages"]
    assert page_loaded(page, last)
    # The last page as the worker cached it before signing (no stamp yet, served no-cache).
    last_url = f"/api/v1/documents/{doc_id}/files/{f['id']}/pages/{last}?width=1024"
    unstamped = fetch_sha(page, last_url)

    page.locator("[data-action=sign]").click()
    page.locator("[data-action=confirm]").wait_for()
    screenshot(page, "12-sign-sheet")
    page.locator("[data-action=confirm]").click()
    page.locator("#sheet[open]").wait_for(state="detached", timeout=30_000)
    page.locator("[data-signature-id]").first.wait_for()
    assert page.locator("[data-signature-id]").count() == 1
    screenshot(page, "13-signed")

    # The key: made on the device, private half non-extractable, enrolled once.
    key = stored_device_key(page)
    assert key is not None and key["count"] == 1
    assert key["type"] == "private" and key["extractable"] is False
    assert key["algorithm"] == {"name": "ECDSA", "namedCurve": "P-256"}
    keys = server.get("/api/v1/signing/keys", "governor")
    assert [k["key_id"] for k in keys if k["key_id"] == key["key_id"]] == [key["key_id"]]

    # The server's record: one signature, its CMS accepted by OpenSSL with the CA root.
    card = server.get(f"/api/v1/documents/{doc_id}", "governor")
    assert len(card["signatures"]) == 1
    sig = card["signatures"][0]
    assert page.locator(f"[data-signature-id='{sig['id']}']").count() == 1
    r = server.http.get(f"/api/v1/signatures/{sig['id']}/cms", headers=server.headers("governor"))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/pkcs7-signature")
    assert r.content[:1] == b"\x30"  # DER SEQUENCE
    content = server.http.get(
        f"/api/v1/documents/{doc_id}/files/{f['id']}", headers=server.headers("governor")
    ).content
    assert hashlib.sha256(content).hexdigest() == f["sha256"]
    ca = server.http.get("/api/v1/signing/ca").content
    if shutil.which("openssl"):
        assert openssl_verify(tmp_path, r.content, content, ca)

    # The stamp: the worker revalidates the no-cache last page, so even the old URL now
    # gives the stamped image the server serves, not the unstamped copy it had cached.
    served = server.http.get(last_url, headers=server.headers("governor"))
    assert served.status_code == 200
    stamped = hashlib.sha256(served.content).hexdigest()
    assert stamped != unstamped
    assert fetch_sha(page, last_url) == stamped
    # And the view shows the last page under its signed URL.
    assert "sig=1" in (page.locator(f"img[data-page='{last}']").get_attribute("src") or "")
    assert page_loaded(page, last)

    # Enrolled once per device: logout forgets the login, not the device key.
    page.locator("#logout").click()
    page.get_by_test_id("login").wait_for()
    again = stored_device_key(page)
    assert again is not None and again["key_id"] == key["key_id"]


def test_signing_is_online_only(page: Any, context: Any, server: Server, signing_api: None) -> None:
    doc_id = ready_to_sign(server)
    sign_in(page, "governor")
    page.locator("[data-folder=sign]").click()
    page.locator(f"[data-document-id='{doc_id}']").click()
    assert page_loaded(page, 1)
    context.set_offline(True)
    try:
        page.locator("[data-action=sign]").click()
        page.locator("[data-action=confirm]").wait_for()
        sheet = page.locator("#sheet")
        assert "только при связи" in sheet.inner_text()
        page.locator("[data-action=confirm]").click()
        alert = sheet.locator(".form-error[role=alert]")
        alert.wait_for()
        assert "только при связи с сервером" in alert.inner_text()
        # Nothing was queued: signing never goes through the outbox.
        assert page.locator("[data-sync=done]").count() == 1
    finally:
        context.set_offline(False)
    assert server.get(f"/api/v1/documents/{doc_id}", "governor")["signatures"] == []


def test_batch_signing_from_the_sign_folder(page: Any, server: Server, signing_api: None) -> None:
    ok1, ok2, elsewhere = (ready_to_sign(server) for _ in range(3))
    sign_in(page, "governor")
    page.locator("[data-folder=sign]").click()
    for doc_id in (ok1, ok2, elsewhere):
        page.locator(f"[data-select='{doc_id}']").check()
    batch = page.locator("[data-action=sign-batch]")
    assert "(3)" in batch.inner_text()
    batch.click()
    page.locator("[data-action=confirm]").wait_for()
    # Meanwhile the governor signs one of them on another device: that item is refused.
    sign_elsewhere(server, "governor", elsewhere)
    page.locator("[data-action=confirm]").click()
    page.locator("[data-batch-status]").first.wait_for(timeout=30_000)
    screenshot(page, "14-batch-signed")
    status = {
        el.get_attribute("data-batch-document-id"): el.get_attribute("data-batch-status")
        for el in page.locator("[data-batch-status]").all()
    }
    assert status == {ok1: "signed", ok2: "signed", elsewhere: "failed"}
    for doc_id in (ok1, ok2):
        assert len(server.get(f"/api/v1/documents/{doc_id}", "governor")["signatures"]) == 1
    assert len(server.get(f"/api/v1/documents/{elsewhere}", "governor")["signatures"]) == 1
    # One device key for the whole batch.
    key = stored_device_key(page)
    assert key is not None and key["count"] == 1
    page.locator("[data-action=confirm]").click()
    page.locator("#sheet[open]").wait_for(state="detached")


# --- push ----------------------------------------------------------------------------------

PUSH_STUB = """
(() => {
  const state = { calls: [], sub: null, unsubscribed: 0 };
  window.__pushStub = state;
  const cfg = %s;
  const bytes = (b64) =>
    Uint8Array.from(atob(b64.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0))
      .buffer;
  const make = (key) => ({
    endpoint: cfg.endpoint,
    expirationTime: null,
    options: { userVisibleOnly: true, applicationServerKey: key },
    getKey: (name) => bytes(cfg.keys[name]),
    toJSON: () => ({ endpoint: cfg.endpoint, expirationTime: null, keys: cfg.keys }),
    unsubscribe: async () => { state.sub = null; state.unsubscribed++; return true; },
  });
  PushManager.prototype.subscribe = async function (options) {
    const key = new Uint8Array(options.applicationServerKey).slice().buffer;
    state.calls.push({ userVisibleOnly: options.userVisibleOnly, key: [...new Uint8Array(key)] });
    state.sub = make(key);
    return state.sub;
  };
  PushManager.prototype.getSubscription = async function () { return state.sub; };
})();
"""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def push_rows(server: Server, endpoint: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(server.data_dir / "kabinet.db") as db:
        return db.execute(
            "SELECT id, device_name FROM push_subscriptions WHERE endpoint = ?", (endpoint,)
        ).fetchall()


@pytest.fixture
def push_api(server: Server) -> None:
    if not server.has_path("/api/v1/push/subscriptions"):
        pytest.fail("the push endpoints are missing from the server's OpenAPI document")


def test_push_consent_subscription_notification_and_logout(
    context: Any, page: Any, server: Server, push_api: None
) -> None:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    endpoint = f"https://fcm.googleapis.com/fcm/send/kabinet-test-{uuid.uuid4().hex}"
    keys = {"p256dh": b64url(point), "auth": b64url(secrets.token_bytes(16))}
    cfg = {"endpoint": endpoint, "keys": keys}
    page.add_init_script(PUSH_STUB % json.dumps(cfg))

    # No prompt on page load: the login screen offers nothing.
    page.goto("/")
    page.get_by_test_id("login").wait_for()
    assert page.locator("[data-action=push-enable]").count() == 0
    sign_in(page, "governor")
    enable = page.locator("[data-action=push-enable]")
    enable.wait_for()
    assert enable.inner_text() == "Включить уведомления"
    assert page.evaluate("window.__pushStub.calls.length") == 0
    screenshot(page, "15-push-offer")

    # The person taps the button and allows notifications.
    context.grant_permissions(["notifications"], origin=server.base_url)
    with page.expect_response(
        lambda r: r.url.endswith("/api/v1/push/subscriptions") and r.request.method == "POST"
    ) as posted:
        enable.click()
    assert posted.value.status == 201
    sub_id = posted.value.json()["id"]
    sent = posted.value.request.post_data_json
    assert sent["endpoint"] == endpoint and sent["keys"] == cfg["keys"]
    calls = page.evaluate("window.__pushStub.calls")
    vapid = server.http.get("/api/v1/push/vapid-public-key").json()["public_key"]
    assert len(calls) == 1 and calls[0]["userVisibleOnly"] is True
    assert bytes(calls[0]["key"]) == base64.urlsafe_b64decode(vapid + "=" * (-len(vapid) % 4))
    rows = push_rows(server, endpoint)
    assert len(rows) == 1
    page.locator("[data-action=push-enable]").wait_for(state="hidden")

    # A push arrives: the worker shows it in Russian and keeps the URL to open on a click.
    cdp = context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda e: registrations.extend(e["registrations"]),
    )
    cdp.send("ServiceWorker.enable")
    deadline = time.monotonic() + 10
    while not [r for r in registrations if not r.get("isDeleted")] and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    live = [r for r in registrations if not r.get("isDeleted")]
    assert live, "no service worker registration reported"
    doc_id = str(uuid.uuid4())
    payload = {
        "title": "Новый документ на подпись",
        "body": "Проект письма о сроках",
        "url": f"/#/d/{doc_id}?f=sign",
        "document_id": doc_id,
        "folder": "sign",
        "tag": f"doc-{doc_id}",
    }
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": server.base_url,
            "registrationId": live[-1]["registrationId"],
            "data": json.dumps(payload),
        },
    )
    shown: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while not shown and time.monotonic() < deadline:
        page.wait_for_timeout(100)
        shown = page.evaluate(
            """async () => (await (await navigator.serviceWorker.ready).getNotifications())
           .map((n) => ({title: n.title, body: n.body, lang: n.lang, tag: n.tag, data: n.data}))"""
        )
    assert shown == [
        {
            "title": payload["title"],
            "body": payload["body"],
            "lang": "ru",
            "tag": payload["tag"],
            "data": {"url": payload["url"], "document_id": doc_id},
        }
    ]

    # Logout removes the subscription on the server and in the browser.
    with page.expect_response(
        lambda r: (
            r.url.endswith(f"/api/v1/push/subscriptions/{sub_id}") and r.request.method == "DELETE"
        )
    ) as deleted:
        page.locator("#logout").click()
    assert deleted.value.status == 204
    page.get_by_test_id("login").wait_for()
    assert page.evaluate("window.__pushStub.unsubscribed") == 1
    assert push_rows(server, endpoint) == []

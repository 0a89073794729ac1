"""Signing through the HTTP API on both databases: device keys made like WebCrypto's, the CMS
checked by the real `openssl cms -verify`, revocation, every refused mismatch recording
nothing, a cloud key in a real SoftHSM2 token, a batch of 100, stale versions, the stamp."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select, text, update

from backend.db.engine import make_sessionmaker
from backend.db.ids import new_id
from backend.db.models import (
    CabinetItem,
    Document,
    DocumentFile,
    Journal,
    Position,
    Route,
    RouteSignatory,
    SignRequest,
    User,
)
from backend.domain.files.storage import BlobStore
from signing import SOFTHSM2_MODULE, der_to_raw
from tests.backend.conftest import Env
from tests.backend.workflow import (
    card,
    create_draft,
    journal_id,
    open_items,
    pdf,
    route_draft,
    scalar,
    visa,
)

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl missing")

# --- helpers ----------------------------------------------------------------------------------


class Device:
    """A tablet: a non-extractable ECDSA P-256 key as WebCrypto makes it, signing r‖s."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.key_id: str | None = None

    @property
    def spki(self) -> bytes:  # crypto.subtle.exportKey("spki", publicKey)
        return self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, data: bytes) -> str:
        """crypto.subtle.sign({name: "ECDSA", hash: "SHA-256"}, key, data) → raw r‖s, base64."""
        raw = der_to_raw(self.key.sign(data, ec.ECDSA(hashes.SHA256())))
        assert len(raw) == 64
        return b64(raw)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def enrol(env: Env, login: str, device: Device | None = None) -> Device:
    device = device or Device()
    r = await env.client.post(
        "/api/v1/signing/keys",
        json={"public_key_spki": b64(device.spki), "device_name": "iPad"},
        headers=await env.login(login),
    )
    assert r.status_code == 201, r.text
    assert r.json()["certificate_pem"].startswith("-----BEGIN CERTIFICATE-----")
    device.key_id = r.json()["key_id"]
    return device


async def to_signing(
    env: Env, signatories: list[str], addressees: list[tuple[str, str]] | None = None
) -> dict[str, Any]:
    doc = await create_draft(env, addressees=addressees or [("minister.finance", "resolve")])
    await route_draft(env, doc, [["minister.digital"]], signatories)
    assert (await visa(env, doc["id"], "minister.digital")).status_code == 201
    return doc


async def sign_request(
    env: Env, login: str, doc_id: str, sha: str, **key: Any
) -> tuple[int, dict[str, Any]]:
    body = {"position_id": await env.own_position(login), "file_sha256": sha, **key}
    r = await env.client.post(
        f"/api/v1/documents/{doc_id}/sign-requests", json=body, headers=await env.login(login)
    )
    return r.status_code, r.json()


async def complete(env: Env, login: str, request_id: str, body: dict[str, Any]) -> Any:
    return await env.client.post(
        f"/api/v1/sign-requests/{request_id}/complete", json=body, headers=await env.login(login)
    )


async def sign_as(env: Env, login: str, device: Device, doc: dict[str, Any]) -> dict[str, Any]:
    sha = doc["files"][0]["sha256"]
    status, req = await sign_request(env, login, doc["id"], sha, key_id=device.key_id)
    assert status == 201, req
    assert req["algorithm"] == "ECDSA-SHA256"
    tbs = base64.b64decode(req["to_be_signed"])
    assert tbs[0] == 0x31  # the SET OF form is what gets signed
    r = await complete(env, login, req["request_id"], {"signature": device.sign(tbs)})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def ca_file(env: Env, tmp_path: Path) -> Path:
    r = await env.client.get("/api/v1/signing/ca")
    assert r.status_code == 200 and r.text.startswith("-----BEGIN CERTIFICATE-----")
    path = tmp_path / "ca.pem"
    path.write_bytes(r.content)
    return path


async def cms_of(env: Env, signature_id: str, login: str) -> bytes:
    r = await env.client.get(
        f"/api/v1/signatures/{signature_id}/cms", headers=await env.login(login)
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/pkcs7-signature")
    return r.content


def openssl_verify(tmp_path: Path, cms: bytes, content: bytes, ca: Path) -> bool:
    sig, data = tmp_path / "sig.p7s", tmp_path / "file"
    sig.write_bytes(cms)
    data.write_bytes(content)
    cmd = ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(sig)]
    cmd += ["-content", str(data), "-CAfile", str(ca), "-purpose", "any", "-out", "/dev/null"]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return result.returncode == 0 and "Verification successful" in result.stderr


async def file_bytes(env: Env, doc: dict[str, Any], login: str) -> bytes:
    f = doc["files"][0]
    r = await env.client.get(
        f"/api/v1/documents/{doc['id']}/files/{f['id']}", headers=await env.login(login)
    )
    assert r.status_code == 200
    return r.content


RECORDING_TABLES = (
    "signatures",
    "audit_events",
    "outbox_events",
    "signing_keys",
    "idempotency_records",
    "cabinet_items",
)


async def footprint(env: Env) -> dict[str, int]:
    """Row counts of everything a signature writes, and the used sign requests."""
    counts = {t: await env.count(t) for t in RECORDING_TABLES}
    async with env.engine.connect() as conn:
        counts["used_requests"] = int(
            (
                await conn.execute(
                    text("SELECT count(*) FROM sign_requests WHERE used_at IS NOT NULL")
                )
            ).scalar_one()
        )
        counts["signed_steps"] = int(
            (
                await conn.execute(
                    text("SELECT count(*) FROM route_signatories WHERE state = 'signed'")
                )
            ).scalar_one()
        )
    return counts


# --- device key, end to end -------------------------------------------------------------------


@needs_openssl
async def test_device_key_flow_end_to_end(env: Env, tmp_path: Path) -> None:
    first, governor = await enrol(env, "first.deputy"), await enrol(env, "governor")
    doc = await to_signing(env, ["first.deputy", "governor"])
    f = doc["files"][0]
    page_url = f"/api/v1/documents/{doc['id']}/files/{f['id']}/pages/{f['pages']}?width=480"
    unstamped = await env.client.get(page_url, headers=await env.login("lawyer"))
    assert unstamped.status_code == 200
    assert "no-cache" in unstamped.headers["cache-control"]  # may still gain a stamp

    events_before = await env.count("outbox_events")
    out1 = await sign_as(env, "first.deputy", first, doc)
    assert out1["route_state"] == "signing" and out1["document_state"] == "on_route"
    assert out1["actor_role"] == "own" and out1["file_sha256"] == f["sha256"]
    # The step completed: the governor is asked now, the deputy's sign item closed.
    assert await open_items(env, doc["id"], "sign") == [await env.own_position("governor")]
    assert await env.count("outbox_events") > events_before  # sign.requested, same transaction

    out2 = await sign_as(env, "governor", governor, doc)
    assert out2["route_state"] == "completed"
    assert out2["document_state"] == "registered" and out2["reg_number"]
    c = await card(env, doc["id"], "minister.finance")
    assert c["state"] == "registered"
    assert [s["state"] for s in c["route"]["signatories"]] == ["signed", "signed"]
    assert [s["id"] for s in c["signatures"]] == [out1["signature_id"], out2["signature_id"]]
    history = [h["action"] for h in c["history"]]
    for action in ("document.signed", "signature.created", "document.registered"):
        assert action in history
    assert await open_items(env, doc["id"], "resolve") == [
        await env.own_position("minister.finance")
    ]

    # Standard CMS: the real OpenSSL accepts it with the CA root; altered content fails.
    ca = await ca_file(env, tmp_path)
    content = await file_bytes(env, doc, "governor")
    for out in (out1, out2):
        cms = await cms_of(env, out["signature_id"], "minister.finance")
        assert openssl_verify(tmp_path, cms, content, ca)
        altered = bytearray(content)
        altered[len(altered) // 2] ^= 0x01
        assert not openssl_verify(tmp_path, cms, bytes(altered), ca)

    r = await env.client.get(
        f"/api/v1/signatures/{out2['signature_id']}/verification",
        headers=await env.login("lawyer"),
    )
    assert r.status_code == 200, r.text
    v = r.json()
    assert v["valid"] and v["signature_valid"] and v["content_matches"] and v["chain_valid"]
    assert v["crl_checked"] and not v["revoked"]
    me = await env.cabinets("governor")
    assert v["signer"]["full_name"] == me["user"]["full_name"]
    assert v["signer"]["position_title"] == me["cabinets"][0]["title"]
    assert len(v["chain"]) == 3 and "Root CA" in v["chain"][-1]
    assert v["signing_time"] is not None and v["errors"] == []

    # The stamp: the last page image of the signed version differs, under another ETag,
    # and is final now; the stored file is untouched (same bytes, same sha256).
    stamped = await env.client.get(page_url, headers=await env.login("lawyer"))
    assert stamped.status_code == 200 and stamped.content != unstamped.content
    assert stamped.headers["etag"] != unstamped.headers["etag"]
    assert "immutable" in stamped.headers["cache-control"]
    again = await env.client.get(
        page_url, headers={**await env.login("lawyer"), "If-None-Match": stamped.headers["etag"]}
    )
    assert again.status_code == 304
    assert await file_bytes(env, doc, "lawyer") == content

    # Someone who may not see the document sees neither its signature nor its CMS.
    for path in ("cms", "verification"):
        r = await env.client.get(
            f"/api/v1/signatures/{out2['signature_id']}/{path}",
            headers=await env.login("clerk"),
        )
        assert r.status_code == 404


async def test_stamp_is_cheap_for_unsigned_files(env: Env) -> None:
    """An unsigned registered document's pages stay immutable and keep the plain ETag."""
    doc = await create_draft(env)
    f = doc["files"][0]
    url = f"/api/v1/documents/{doc['id']}/files/{f['id']}/pages/1?width=480"
    r = await env.client.get(url, headers=await env.login("lawyer"))
    assert r.status_code == 200
    assert r.headers["etag"] == f'"{f["sha256"]}-1-480"'


# --- revocation -------------------------------------------------------------------------------


async def test_revoked_certificate_is_reported(env: Env) -> None:
    governor = await enrol(env, "governor")
    doc = await to_signing(env, ["governor"])
    out = await sign_as(env, "governor", governor, doc)
    h = await env.login("governor")
    # Only the owner revokes.
    r = await env.client.post(
        f"/api/v1/signing/keys/{governor.key_id}/revoke", headers=await env.login("lawyer")
    )
    assert r.status_code == 404
    r = await env.client.post(
        f"/api/v1/signing/keys/{governor.key_id}/revoke",
        json={"reason": "keyCompromise"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["revoked_at"] is not None
    serial = int(r.json()["certificate_serial"], 16)

    crl = await env.client.get("/api/v1/signing/crl")
    assert crl.status_code == 200
    from cryptography import x509

    entry = x509.load_der_x509_crl(crl.content).get_revoked_certificate_by_serial_number(serial)
    assert entry is not None

    r = await env.client.get(f"/api/v1/signatures/{out['signature_id']}/verification", headers=h)
    v = r.json()
    assert v["revoked"] and not v["valid"] and v["crl_checked"]
    assert v["revocation_reason"] == "keyCompromise" and v["revoked_at"]
    assert v["signature_valid"] and v["content_matches"]  # the rest still holds
    r = await env.client.post(f"/api/v1/signatures/{out['signature_id']}/verify", headers=h)
    assert r.status_code == 200 and r.json()["revoked"]

    # A revoked key asks for nothing more.
    other = await to_signing(env, ["governor"])
    status, body = await sign_request(
        env, "governor", other["id"], other["files"][0]["sha256"], key_id=governor.key_id
    )
    assert status == 409 and "revoked" in body["detail"]


# --- every mismatch refused, nothing recorded -------------------------------------------------


async def test_mismatches_are_refused_and_record_nothing(env: Env) -> None:
    device, spare = await enrol(env, "governor"), await enrol(env, "governor")
    stranger = await enrol(env, "first.deputy")
    doc = await to_signing(env, ["governor"])
    sha = doc["files"][0]["sha256"]

    # Refused at the request: stale bytes, another's key, a position not one's own, no key.
    status, body = await sign_request(env, "governor", doc["id"], "0" * 64, key_id=device.key_id)
    assert status == 409 and body["current_sha256"] == sha
    status, _ = await sign_request(env, "governor", doc["id"], sha, key_id=stranger.key_id)
    assert status == 404
    status, _ = await sign_request(env, "governor", doc["id"], sha)
    assert status == 422
    r = await env.client.post(
        f"/api/v1/documents/{doc['id']}/sign-requests",
        json={
            "position_id": await env.own_position("governor"),
            "file_sha256": sha,
            "key_id": stranger.key_id,
        },
        headers=await env.login("first.deputy"),
    )
    assert r.status_code == 403  # the deputy may not sign for the governor
    status, _ = await sign_request(env, "first.deputy", doc["id"], sha, key_id=stranger.key_id)
    assert status in (404, 409)  # not a signatory of this document
    r = await env.client.post(
        f"/api/v1/documents/{doc['id']}/sign-requests",
        json={
            "position_id": await env.own_position("governor"),
            "file_sha256": sha,
            "key_id": device.key_id,
            "typo": 1,
        },
        headers=await env.login("governor"),
    )
    assert r.status_code == 422  # forbid_unknown_fields

    status, req = await sign_request(env, "governor", doc["id"], sha, key_id=device.key_id)
    assert status == 201
    tbs = base64.b64decode(req["to_be_signed"])
    rid = req["request_id"]
    before = await footprint(env)

    async def refused(login: str, body: dict[str, Any], code: int) -> None:
        r = await complete(env, login, rid, body)
        assert r.status_code == code, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert await footprint(env) == before, body

    await refused("governor", {"signature": device.sign(tbs + b"x")}, 422)  # other bytes
    await refused("governor", {"signature": spare.sign(tbs)}, 422)  # other key
    await refused("governor", {"signature": b64(b"\x00" * 64)}, 422)  # not a signature
    await refused("governor", {"signature": b64(b"\x01" * 70)}, 422)  # neither raw nor DER
    await refused("governor", {"pin": "1234"}, 422)  # a device key signs on the device
    await refused("governor", {"signature": device.sign(tbs), "extra": 1}, 422)
    await refused("first.deputy", {"signature": device.sign(tbs)}, 404)  # other user
    sessions = make_sessionmaker(env.engine)
    async with sessions() as s:  # expired
        real_expiry = await s.scalar(
            select(SignRequest.expires_at).where(SignRequest.id == uuid.UUID(rid))
        )
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        await s.execute(
            update(SignRequest).where(SignRequest.id == uuid.UUID(rid)).values(expires_at=past)
        )
        await s.commit()
    await refused("governor", {"signature": device.sign(tbs)}, 409)
    async with sessions() as s:
        await s.execute(
            update(SignRequest)
            .where(SignRequest.id == uuid.UUID(rid))
            .values(expires_at=real_expiry)
        )
        await s.commit()

    # The request survived every refusal: the right signature completes it, once.
    r = await complete(env, "governor", rid, {"signature": device.sign(tbs)})
    assert r.status_code == 201, r.text
    signature_id = r.json()["signature_id"]
    after = await footprint(env)
    assert after["signatures"] == before["signatures"] + 1
    assert after["used_requests"] == before["used_requests"] + 1
    r = await complete(env, "governor", rid, {"signature": device.sign(tbs)})  # replayed
    assert r.status_code == 409 and r.json()["signature_id"] == signature_id
    assert await footprint(env) == after

    # Same Idempotency-Key, same body: the first answer again; another body: 422.
    doc2 = await to_signing(env, ["governor"])
    status, req2 = await sign_request(
        env, "governor", doc2["id"], doc2["files"][0]["sha256"], key_id=spare.key_id
    )
    tbs2 = base64.b64decode(req2["to_be_signed"])
    body2 = {"signature": spare.sign(tbs2)}
    h = {**await env.login("governor"), "Idempotency-Key": uuid.uuid4().hex}
    url = f"/api/v1/sign-requests/{req2['request_id']}/complete"
    first = await env.client.post(url, json=body2, headers=h)
    replay = await env.client.post(url, json=body2, headers=h)
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json() and replay.headers.get("idempotent-replayed") == "true"
    other = await env.client.post(url, json={"signature": spare.sign(tbs2)}, headers=h)
    assert other.status_code == 422

    # A key revoked after the request was made: the request cannot complete.
    doc3 = await to_signing(env, ["governor"])
    status, req3 = await sign_request(
        env, "governor", doc3["id"], doc3["files"][0]["sha256"], key_id=spare.key_id
    )
    assert status == 201
    r = await env.client.post(
        f"/api/v1/signing/keys/{spare.key_id}/revoke", headers=await env.login("governor")
    )
    assert r.status_code == 200
    before = await footprint(env)
    r = await complete(
        env,
        "governor",
        req3["request_id"],
        {"signature": spare.sign(base64.b64decode(req3["to_be_signed"]))},
    )
    assert r.status_code == 409 and "revoked" in r.json()["detail"]
    assert await footprint(env) == before


async def test_key_enrolment_refuses_bad_keys(env: Env) -> None:
    h = await env.login("governor")
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    spki384 = p384.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    before = await env.count("signing_keys")
    for body in (
        {"public_key_spki": b64(spki384), "device_name": "x"},  # P-384: not P-256
        {"public_key_spki": b64(b"garbage"), "device_name": "x"},
        {"public_key_spki": "not base64!", "device_name": "x"},
        {"public_key_spki": b64(Device().spki)},  # device_name missing
    ):
        r = await env.client.post("/api/v1/signing/keys", json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
    r = await env.client.post(
        "/api/v1/signing/keys", json={"public_key_spki": b64(Device().spki), "device_name": "x"}
    )
    assert r.status_code == 401
    assert await env.count("signing_keys") == before
    r = await env.client.get("/api/v1/signing/keys", headers=h)
    assert r.status_code == 200 and all(k["method"] in ("device", "cloud") for k in r.json())


# --- stale version ----------------------------------------------------------------------------


async def test_signature_on_a_stale_version_is_409(env: Env) -> None:
    device = await enrol(env, "governor")
    doc = await create_draft(env, addressees=[("minister.finance", "resolve")])
    old_sha = doc["files"][0]["sha256"]
    await route_draft(env, doc, [["minister.digital"]], ["governor"])
    r = await env.client.post(
        f"/api/v1/documents/{doc['id']}/versions",
        files={"file": ("v2.pdf", pdf("v2-" + doc["id"]), "application/pdf")},
        headers=await env.login("lawyer"),
    )
    assert r.status_code == 201, r.text
    new_sha = r.json()["sha256"]
    assert (await visa(env, doc["id"], "minister.digital")).status_code == 201

    status, body = await sign_request(env, "governor", doc["id"], old_sha, key_id=device.key_id)
    assert status == 409
    assert body["current_sha256"] == new_sha and body["current_version"] == 2

    # A version that changes between the request and the completion (the workflow allows
    # none while signing; made here directly) is refused at completion as well.
    status, req = await sign_request(env, "governor", doc["id"], new_sha, key_id=device.key_id)
    assert status == 201
    sessions = make_sessionmaker(env.engine)
    doc_id = uuid.UUID(doc["id"])
    blob = BlobStore(env.settings.files_dir)
    v3_sha = blob.put_bytes(pdf("v3-" + doc["id"]))
    async with sessions() as s:
        current = await s.scalar(
            select(DocumentFile).where(
                DocumentFile.document_id == doc_id, DocumentFile.is_current.is_(True)
            )
        )
        assert current is not None
        current.is_current = False
        s.add(
            DocumentFile(
                id=new_id(),
                document_id=doc_id,
                slot_id=current.slot_id,
                role="main",
                name="v3.pdf",
                mime="application/pdf",
                size=1,
                sha256=v3_sha,
                version=3,
                pages=1,
                is_current=True,
                created_by_id=current.created_by_id,
            )
        )
        await s.commit()
    before = await footprint(env)
    r = await complete(
        env,
        "governor",
        req["request_id"],
        {"signature": device.sign(base64.b64decode(req["to_be_signed"]))},
    )
    assert r.status_code == 409 and r.json()["current_sha256"] == v3_sha
    assert await footprint(env) == before


# --- cloud key (PKCS#11, real SoftHSM2) -------------------------------------------------------


@needs_openssl
@pytest.mark.skipif(
    shutil.which("softhsm2-util") is None or not Path(SOFTHSM2_MODULE).exists(),
    reason="softhsm2 is not installed (apt-get install -y softhsm2)",
)
async def test_cloud_key_through_softhsm2(env: Env, tmp_path: Path) -> None:
    login = "executor"  # one cloud key per user: a user no other test enrols
    h = await env.login(login)
    r = await env.client.post("/api/v1/signing/cloud-keys", json={"pin": "12"}, headers=h)
    assert r.status_code == 422  # too short for a PIN
    r = await env.client.post("/api/v1/signing/cloud-keys", json={"pin": "482913"}, headers=h)
    assert r.status_code == 201, r.text
    key = r.json()
    assert key["method"] == "cloud"
    r = await env.client.post("/api/v1/signing/cloud-keys", json={"pin": "111111"}, headers=h)
    assert r.status_code == 409  # revoke the first one before another

    doc = await to_signing(env, [login])
    sha = doc["files"][0]["sha256"]
    status, req = await sign_request(env, login, doc["id"], sha, method="cloud")
    assert status == 201 and req["key_id"] == key["key_id"] and req["method"] == "cloud"
    before = await footprint(env)
    r = await complete(env, login, req["request_id"], {"pin": "000000"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "pin"
    r = await complete(env, login, req["request_id"], {"signature": b64(b"\x01" * 64)})
    assert r.status_code == 422  # the server signs with a cloud key, not the client
    after = await footprint(env)
    # Nothing of a signature is written; only the wrong PIN is audited (it counts to a lock).
    assert after == {**before, "audit_events": before["audit_events"] + 1}

    url = f"/api/v1/sign-requests/{req['request_id']}/complete"
    h_key = {**h, "Idempotency-Key": uuid.uuid4().hex}
    r = await env.client.post(url, json={"pin": "482913"}, headers=h_key)
    assert r.status_code == 201, r.text
    out = r.json()
    replay = await env.client.post(url, json={"pin": "482913"}, headers=h_key)
    assert replay.status_code == 201 and replay.json() == out
    async with env.engine.connect() as conn:  # the PIN is in no idempotency record
        stored = (
            await conn.execute(text("SELECT request_hash, response_body FROM idempotency_records"))
        ).all()
    assert all("482913" not in body for _, body in stored)

    def request_hash(pin: object) -> str:  # as backend.web.idempotency hashes a request
        body = json.dumps({"signature": None, "pin": pin}, separators=(",", ":"))
        return hashlib.sha256(f"POST {url}\n{body}".encode()).hexdigest()

    hashes_stored = {h for h, _ in stored}
    assert request_hash(True) in hashes_stored and request_hash("482913") not in hashes_stored
    assert out["document_state"] == "registered"
    ca = await ca_file(env, tmp_path)
    content = await file_bytes(env, doc, login)
    cms = await cms_of(env, out["signature_id"], login)
    assert openssl_verify(tmp_path, cms, content, ca)
    assert not openssl_verify(tmp_path, cms, content + b"\n", ca)
    c = await card(env, doc["id"], login)
    assert c["signatures"][0]["method"] == "cloud"

    # Five wrong PINs in a day lock the key: even the right PIN is then refused.
    doc2 = await to_signing(env, [login])
    status, req2 = await sign_request(
        env, login, doc2["id"], doc2["files"][0]["sha256"], method="cloud"
    )
    assert status == 201
    for _ in range(4):  # one wrong PIN was tried above
        r = await complete(env, login, req2["request_id"], {"pin": "999999"})
        assert r.status_code == 422
    r = await complete(env, login, req2["request_id"], {"pin": "482913"})
    assert r.status_code == 409 and "locked" in r.json()["detail"]


# --- batch of 100 -----------------------------------------------------------------------------


async def _documents_waiting_for(env: Env, login: str, n: int) -> list[tuple[str, str]]:
    """`n` drafts in the `sign` folder of `login`'s position, written straight to the database
    (what set_route + start_route + visas would leave), each with its own stored PDF bytes."""
    sessions = make_sessionmaker(env.engine)
    blobs = BlobStore(env.settings.files_dir)
    now = dt.datetime.now(dt.UTC)
    signer = uuid.UUID(await env.own_position(login))
    author = uuid.UUID(await env.own_position("lawyer"))
    base = pdf("batch")
    out: list[tuple[str, str]] = []
    async with sessions() as s:
        lawyer = await s.scalar(select(User).where(User.login == "lawyer"))
        org = await s.scalar(select(Position.organization_id).where(Position.id == author))
        assert lawyer is not None and org is not None
        journal = Journal(
            id=new_id(),
            organization_id=org,
            name=f"Пакет {uuid.uuid4().hex[:6]}",
            kind="outgoing",
            number_format="П-{seq}",
            year=2026,
            last_seq=0,
        )
        s.add(journal)
        # No ORM relationships: flush table by table in foreign-key order.
        docs, routes, steps, files, items = [], [], [], [], []
        for i in range(n):
            content = base + f"\n% batch document {uuid.uuid4()} {i}\n".encode()
            sha = blobs.put_bytes(content)
            doc = Document(
                id=new_id(),
                kind="outgoing",
                title=f"Пакет {i}",
                state="on_route",
                organization_id=org,
                author_position_id=author,
                created_by_id=lawyer.id,
                created_at=now,
            )
            route = Route(
                id=new_id(),
                document_id=doc.id,
                state="signing",
                version=1,
                journal_id=journal.id,
                created_at=now,
                created_by_id=lawyer.id,
                started_at=now,
            )
            step = RouteSignatory(
                id=new_id(), route_id=route.id, order=0, position_id=signer, state="waiting"
            )
            docs.append(doc)
            routes.append(route)
            steps.append(step)
            files.append(
                DocumentFile(
                    id=new_id(),
                    document_id=doc.id,
                    slot_id=new_id(),
                    role="main",
                    name=f"p{i}.pdf",
                    mime="application/pdf",
                    size=len(content),
                    sha256=sha,
                    version=1,
                    pages=1,
                    is_current=True,
                    created_at=now,
                    created_by_id=lawyer.id,
                )
            )
            items.append(
                CabinetItem(
                    id=new_id(),
                    position_id=signer,
                    folder="sign",
                    document_id=doc.id,
                    ref_id=step.id,
                    state="open",
                    expected_action="sign",
                    received_at=now,
                )
            )
            out.append((str(doc.id), sha))
        for rows in (docs, routes, steps, files, items):
            s.add_all(rows)
            await s.flush()
        await s.commit()
    return out


async def test_batch_of_100_documents(env: Env, tmp_path: Path) -> None:
    login = "minister.finance"
    device = await enrol(env, login)
    docs = await _documents_waiting_for(env, login, 100)
    position = await env.own_position(login)
    stale_doc = docs[0][0]
    # 100 good items, plus one naming stale bytes and one the signer cannot see.
    foreign = await create_draft(env, "executor")
    items = [{"document_id": d, "file_sha256": sha} for d, sha in docs]
    items.append({"document_id": foreign["id"], "file_sha256": foreign["files"][0]["sha256"]})
    h = await env.login(login)
    r = await env.client.post(
        "/api/v1/sign-batches",
        json={"position_id": position, "key_id": device.key_id, "items": items},
        headers=h,
    )
    assert r.status_code == 201, r.text
    batch = r.json()
    assert batch["requested"] == 100 and batch["failed"] == 1
    assert batch["items"][-1]["error"]["status"] == 404
    r = await env.client.post(
        "/api/v1/sign-batches",
        json={
            "position_id": position,
            "key_id": device.key_id,
            "items": [{"document_id": stale_doc, "file_sha256": "1" * 64}],
        },
        headers=h,
    )
    assert r.status_code == 409  # nothing could be requested: nothing recorded

    signatures = []
    for item in batch["items"][:100]:
        tbs = base64.b64decode(item["to_be_signed"])
        signatures.append({"request_id": item["request_id"], "signature": device.sign(tbs)})
    broken = signatures[17]["request_id"]
    signatures[17] = {"request_id": broken, "signature": device.sign(b"something else")}
    r = await env.client.post(
        f"/api/v1/sign-batches/{batch['batch_id']}/complete",
        json={"signatures": signatures},
        headers=h,
    )
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["signed"] == 99 and result["failed"] == 1
    failed = [i for i in result["items"] if i["error"]]
    assert [i["request_id"] for i in failed] == [broken] and failed[0]["status"] == 422
    registered = [i["signature"]["reg_number"] for i in result["items"] if i["signature"]]
    assert len(set(registered)) == 99 and all(n.startswith("П-") for n in registered)

    # The failed item is still open and can be signed properly; the others are done.
    retry = [
        {
            "request_id": broken,
            "signature": device.sign(base64.b64decode(batch["items"][17]["to_be_signed"])),
        },
        signatures[0],
    ]
    r = await env.client.post(
        f"/api/v1/sign-batches/{batch['batch_id']}/complete", json={"signatures": retry}, headers=h
    )
    assert r.status_code == 200
    first, second = r.json()["items"]
    assert first["status"] == 201
    assert second["status"] == 409 and second["error"]["signature_id"]
    doc_ids = [uuid.UUID(d) for d, _ in docs]
    assert (
        await scalar(
            env,
            select(func.count())
            .select_from(Document)
            .where(Document.id.in_(doc_ids), Document.state == "registered"),
        )
        == 100
    )
    assert (
        await scalar(
            env,
            select(func.count())
            .select_from(CabinetItem)
            .where(
                CabinetItem.document_id.in_(doc_ids),
                CabinetItem.folder == "sign",
                CabinetItem.state == "open",
            ),
        )
        == 0
    )
    # Every document got its own CMS; spot-check one with OpenSSL.
    if shutil.which("openssl"):
        some = result["items"][42]["signature"]
        cms = await cms_of(env, some["signature_id"], login)
        blob = BlobStore(env.settings.files_dir).path(some["file_sha256"]).read_bytes()
        assert openssl_verify(tmp_path, cms, blob, await ca_file(env, tmp_path))


# --- kabinet verify ---------------------------------------------------------------------------


def kabinet_verify(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command in its own process, with the data dir (and so the CA) of `env`."""
    import os
    import sys

    environ = {**os.environ, "KABINET_DATA_DIR": str(env.settings.data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", "verify", *args],
        capture_output=True,
        text=True,
        check=False,
        env=environ,
        timeout=60,
    )


async def test_cli_verify(env: Env, tmp_path: Path) -> None:
    device = await enrol(env, "first.deputy")
    doc = await to_signing(env, ["first.deputy"])
    out = await sign_as(env, "first.deputy", device, doc)
    content = tmp_path / "letter.pdf"
    content.write_bytes(await file_bytes(env, doc, "first.deputy"))
    sig = tmp_path / "letter.pdf.p7s"
    sig.write_bytes(await cms_of(env, out["signature_id"], "first.deputy"))

    ok = kabinet_verify(env, str(content), str(sig))
    assert ok.returncode == 0, ok.stderr
    me = await env.cabinets("first.deputy")
    assert f"Signer:        {me['user']['full_name']}" in ok.stdout
    assert "Content match: yes" in ok.stdout and "not revoked (CRL checked)" in ok.stdout
    assert "Kabinet Root CA" in ok.stdout and "Result:        VALID" in ok.stdout
    assert "Signing time:  20" in ok.stdout

    altered = tmp_path / "altered.pdf"
    altered.write_bytes(content.read_bytes() + b"%")
    bad = kabinet_verify(env, str(altered), str(sig))
    assert bad.returncode == 1 and "Content match: NO" in bad.stdout

    r = await env.client.post(
        f"/api/v1/signing/keys/{device.key_id}/revoke",
        json={"reason": "superseded"},
        headers=await env.login("first.deputy"),
    )
    assert r.status_code == 200
    revoked = kabinet_verify(env, str(content), str(sig))
    assert revoked.returncode == 1 and "REVOKED at" in revoked.stdout
    assert "superseded" in revoked.stdout

    # Without the data dir: the root from GET /signing/ca (no CRL, so revocation unchecked).
    ca = await ca_file(env, tmp_path)
    outside = kabinet_verify(env, str(content), str(sig), "--ca-file", str(ca))
    assert outside.returncode == 0 and "NOT CHECKED" in outside.stdout
    assert kabinet_verify(env, str(content), str(tmp_path / "missing.p7s")).returncode == 2


async def test_acting_deputy_signs_with_own_certificate(env: Env) -> None:
    async with env.engine.connect() as conn:
        login, minister_position = (
            await conn.execute(
                text(
                    "SELECT u.login, a.position_id FROM cabinet_access a "
                    "JOIN users u ON u.id = a.user_id WHERE a.role = 'acting' LIMIT 1"
                )
            )
        ).one()
    acting = await enrol(env, login)
    doc = await create_draft(env, addressees=[("minister.finance", "resolve")])
    h = await env.login("lawyer")
    body = {
        "stages": [{"approvers": [await env.own_position("minister.digital")]}],
        "signatories": [str(minister_position)],
        "journal_id": await journal_id(env),
    }
    r = await env.client.post(f"/api/v1/documents/{doc['id']}/route", json=body, headers=h)
    assert r.status_code == 201, r.text
    r = await env.client.post(f"/api/v1/documents/{doc['id']}/route/start", headers=h)
    assert r.status_code == 201, r.text
    assert (await visa(env, doc["id"], "minister.digital")).status_code == 201

    # An assistant without the `sign` right may not ask on the minister's behalf.
    r = await env.client.post(
        f"/api/v1/documents/{doc['id']}/sign-requests",
        json={
            "position_id": str(minister_position),
            "file_sha256": doc["files"][0]["sha256"],
            "key_id": acting.key_id,
        },
        headers=await env.login("assistant"),
    )
    assert r.status_code == 403

    r = await env.client.post(
        f"/api/v1/documents/{doc['id']}/sign-requests",
        json={
            "position_id": str(minister_position),
            "file_sha256": doc["files"][0]["sha256"],
            "key_id": acting.key_id,
        },
        headers=await env.login(login),
    )
    assert r.status_code == 201, r.text
    req = r.json()
    r = await complete(
        env,
        login,
        req["request_id"],
        {"signature": acting.sign(base64.b64decode(req["to_be_signed"]))},
    )
    assert r.status_code == 201, r.text
    assert r.json()["actor_role"] == "acting" and r.json()["document_state"] == "registered"
    v = (
        await env.client.get(
            f"/api/v1/signatures/{r.json()['signature_id']}/verification",
            headers=await env.login(login),
        )
    ).json()
    own_title = next(
        c["title"] for c in (await env.cabinets(login))["cabinets"] if c["role"] == "own"
    )
    assert v["valid"] and v["signer"]["position_title"] == own_title  # the deputy's own post
    c = await card(env, doc["id"], login)
    assert c["route"]["signatories"][0]["actor_role"] == "acting"

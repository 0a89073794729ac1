"""Signing endpoints: thin handlers over signing.services (shapes in API.md, "Signing")."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from backend.clock import utcnow
from backend.domain.accounts.access import Principal
from backend.domain.signing import schemas, services
from backend.web.deps import Services
from backend.web.idempotency import run_decision

PEM = "application/x-pem-file"
CRL = "application/pkix-crl"
PKCS7 = "application/pkcs7-signature"


def _user(principal: Principal) -> tuple[uuid.UUID, str]:
    # Read once, before anything can roll back and expire the ORM user.
    return principal.user.id, principal.user.full_name


def _without_pin(data: schemas.CompleteIn | schemas.CloudKeyIn) -> dict[str, object]:
    """The body as the Idempotency-Key record hashes it. A PIN has few digits: its SHA-256
    next to a known request would give it away to anyone who reads the database."""
    body = msgspec.structs.asdict(data)
    if body.get("pin") is not None:
        body["pin"] = True
    return body


class SigningController(Controller):
    path = "/api/v1/signing"
    tags = ["signing"]

    @get("/ca", operation_id="signingCa", media_type=PEM, security=[])
    async def ca(self, svc: Services) -> Response[bytes]:
        """The root certificate of the internal CA (PEM): `openssl cms -verify -CAfile`."""
        return Response(svc.signing.ca.root_pem(), media_type=PEM)

    @get("/crl", operation_id="signingCrl", media_type=CRL, security=[])
    async def crl(self, svc: Services) -> Response[bytes]:
        """The current CRL of the issuing CA (DER), listing every revoked certificate."""
        return Response(svc.signing.ca.crl(), media_type=CRL, headers={"Cache-Control": "no-cache"})

    @get("/keys", operation_id="signingKeys")
    async def keys(self, principal: Principal, db: AsyncSession) -> list[schemas.KeyOut]:
        """The user's signing keys (device and cloud) with their certificates."""
        return await services.list_keys(db, principal.user.id)

    @post("/keys", operation_id="enrolDeviceKey", status_code=201)
    async def enrol_device(
        self,
        request: Request[Any, Any, Any],
        data: schemas.DeviceKeyIn,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
    ) -> Response[bytes]:
        """Certify a device's ECDSA P-256 public key (SPKI DER, base64)."""
        user = _user(principal)

        async def decide() -> schemas.KeyOut:
            return await services.enrol_device_key(db, svc.signing, principal, user, data, utcnow())

        return await run_decision(request, db, principal, data, decide)

    @post("/cloud-keys", operation_id="enrolCloudKey", status_code=201)
    async def enrol_cloud(
        self,
        request: Request[Any, Any, Any],
        data: schemas.CloudKeyIn,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
    ) -> Response[bytes]:
        """Create the user's PKCS#11 token with their PIN and a certified key inside it."""
        user = _user(principal)

        async def decide() -> schemas.KeyOut:
            return await services.enrol_cloud_key(db, svc.signing, principal, user, data, utcnow())

        return await run_decision(request, db, principal, _without_pin(data), decide)

    @post("/keys/{key_id:uuid}/revoke", operation_id="revokeSigningKey", status_code=200)
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        key_id: uuid.UUID,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
        data: schemas.RevokeIn | None = None,
    ) -> Response[bytes]:
        """Revoke one's own key: its certificate goes into the CRL."""
        body = data or schemas.RevokeIn()
        user_id, _ = _user(principal)

        async def decide() -> schemas.KeyOut:
            return await services.revoke_key(
                db, svc.signing, user_id, key_id, body.reason, utcnow()
            )

        return await run_decision(request, db, principal, body, decide, status_code=200)


class SignRequestController(Controller):
    path = "/api/v1"
    tags = ["signing"]

    @post(
        "/documents/{document_id:uuid}/sign-requests",
        operation_id="createSignRequest",
        status_code=201,
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        document_id: uuid.UUID,
        data: schemas.SignRequestIn,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
    ) -> Response[bytes]:
        """Prepare the bytes to sign (CMS signed attributes) for the named file version."""
        user_id, _ = _user(principal)

        async def decide() -> schemas.SignRequestOut:
            return await services.create_sign_request(
                db, svc.signing, svc.blobs, principal, user_id, document_id, data, utcnow()
            )

        return await run_decision(request, db, principal, data, decide)

    @post(
        "/sign-requests/{request_id:uuid}/complete",
        operation_id="completeSignRequest",
        status_code=201,
    )
    async def complete(
        self,
        request: Request[Any, Any, Any],
        request_id: uuid.UUID,
        data: schemas.CompleteIn,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
    ) -> Response[bytes]:
        """Turn the device's signature (or the cloud key's, with the PIN) into a stored CMS
        and complete the signatory's step, all in one transaction."""
        user_id, _ = _user(principal)

        async def decide() -> schemas.SignatureOut:
            return await services.complete_request(
                db,
                svc.signing,
                principal,
                user_id,
                request_id,
                data,
                utcnow(),
                svc.settings.timezone,
            )

        return await run_decision(request, db, principal, _without_pin(data), decide)

    @post("/sign-batches", operation_id="createSignBatch", status_code=201)
    async def create_batch(
        self,
        request: Request[Any, Any, Any],
        data: schemas.BatchIn,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
    ) -> Response[bytes]:
        """One sign request per document of a selection; per-item errors are reported."""
        user_id, _ = _user(principal)

        async def decide() -> schemas.BatchOut:
            return await services.create_batch(
                db, svc.signing, svc.blobs, principal, user_id, data, utcnow()
            )

        return await run_decision(request, db, principal, data, decide)

    @post(
        "/sign-batches/{batch_id:uuid}/complete",
        operation_id="completeSignBatch",
        status_code=200,
    )
    async def complete_batch(
        self,
        batch_id: uuid.UUID,
        data: schemas.BatchCompleteIn,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
    ) -> schemas.BatchCompleteOut:
        """Complete a batch: each item in its own transaction, results per item."""
        user_id, _ = _user(principal)
        return await services.complete_batch(
            db, svc.signing, principal, user_id, batch_id, data, svc.settings.timezone, utcnow
        )

    @get("/signatures/{signature_id:uuid}/cms", operation_id="signatureCms", media_type=PKCS7)
    async def cms(
        self, signature_id: uuid.UUID, principal: Principal, db: AsyncSession
    ) -> Response[bytes]:
        """The detached CMS (DER, .p7s) over the file version's bytes."""
        sig = await services.visible_signature(db, principal, signature_id)
        return Response(
            sig.cms_der,
            media_type=PKCS7,
            headers={
                "Content-Disposition": f'attachment; filename="signature-{sig.id}.p7s"',
                "Cache-Control": "private, max-age=31536000, immutable",
            },
        )

    @get(
        "/signatures/{signature_id:uuid}/verification",
        operation_id="signatureVerification",
    )
    async def verification(
        self, signature_id: uuid.UUID, principal: Principal, db: AsyncSession, svc: Services
    ) -> schemas.VerificationOut:
        """Verify now: signer, time, chain, revocation (current CRL), content match."""
        return await services.verify_signature(
            db, svc.signing, svc.blobs, principal, signature_id, utcnow()
        )

    @post("/signatures/{signature_id:uuid}/verify", operation_id="verifySignature", status_code=200)
    async def verify(
        self, signature_id: uuid.UUID, principal: Principal, db: AsyncSession, svc: Services
    ) -> schemas.VerificationOut:
        """The same check as GET …/verification, for clients that verify with a POST."""
        return await services.verify_signature(
            db, svc.signing, svc.blobs, principal, signature_id, utcnow()
        )

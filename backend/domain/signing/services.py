"""Signing: keys certified by the internal CA, one-time sign requests, CMS assembly that
completes the signatory's step, batches, and verification.

The server prepares what is signed and keeps it (`SignRequest.to_be_signed`); `complete`
uses those stored bytes, never bytes sent back by the client. A request is bound to the
user, the position, the document, the exact file version and the key, lives minutes and is
taken once with `UPDATE … WHERE used_at IS NULL`; any mismatch raises before the caller
commits, so a refused completion records nothing (the request stays usable until it
expires). A completion writes the signature, the signatory's step, audit and outbox in the
caller's one transaction.

Services never touch `principal.user` (only its cabinets): a batch rolls back failed items,
and a rollback expires ORM objects, so the user id is read once by the caller.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from backend.db.ids import new_id
from backend.db.models import (
    AuditEvent,
    Document,
    Organization,
    Position,
    Route,
    RouteSignatory,
    Signature,
    SignBatch,
    SigningKey,
    SignRequest,
    User,
)
from backend.domain.accounts.access import Cabinet, Principal
from backend.domain.audit.services import record
from backend.domain.documents.visibility import visible_document
from backend.domain.files.storage import BlobStore
from backend.domain.routes.services import complete_signatory_step, current_route, main_file
from backend.domain.signing import schemas
from backend.domain.signing.context import KEY_LABEL, SigningContext
from backend.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unavailable
from signing import (
    CertificateError,
    InvalidSignatureError,
    MalformedCmsError,
    SubjectInfo,
    TokenError,
    VerificationResult,
    WrongPinError,
    assemble_cms,
    build_signed_attributes,
    load_ec_public_key,
    parse_signed_attributes,
    verify_cms,
)


def serial_hex(cert: x509.Certificate) -> str:
    """The certificate serial as upper-case hex: the form on the stamp and in the CRL tools."""
    return format(cert.serial_number, "X")


def key_out(key: SigningKey) -> schemas.KeyOut:
    cert = x509.load_der_x509_certificate(key.certificate_der)
    return schemas.KeyOut(
        key_id=key.id,
        method=key.method,
        device_name=key.device_name,
        certificate_pem=cert.public_bytes(Encoding.PEM).decode(),
        certificate_serial=key.certificate_serial,
        subject=cert.subject.rfc4514_string(),
        not_before=key.not_before,
        not_after=key.not_after,
        revoked_at=key.revoked_at,
        created_at=key.created_at,
    )


# --- keys -------------------------------------------------------------------------------------


async def _subject(
    session: AsyncSession, principal: Principal, full_name: str, position_id: uuid.UUID | None
) -> tuple[SubjectInfo, Cabinet]:
    """The certificate names the person and one of their own positions (not one they act for:
    an acting deputy signs with their own certificate, and the signature records the role)."""
    own = [c for c in principal.cabinets if c.role == "own"]
    if position_id is not None:
        cab = next((c for c in own if c.position_id == position_id), None)
        if cab is None:
            raise Forbidden("a signing certificate names one of your own positions")
    elif own:
        cab = own[0]
    else:
        raise Forbidden("only the holder of a position enrols a signing key")
    organization = await session.scalar(
        select(Organization.name)
        .join(Position, Position.organization_id == Organization.id)
        .where(Position.id == cab.position_id)
    )
    return SubjectInfo(full_name, cab.title, organization or cab.organization), cab


def _store_key(
    session: AsyncSession,
    *,
    key_id: uuid.UUID,
    user_id: uuid.UUID,
    method: str,
    cert: x509.Certificate,
    now: dt.datetime,
    cab: Cabinet,
    device_name: str | None = None,
    token_label: str | None = None,
) -> SigningKey:
    key = SigningKey(
        id=key_id,
        user_id=user_id,
        method=method,
        device_name=device_name,
        public_key_spki=cert.public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        ),
        certificate_der=cert.public_bytes(Encoding.DER),
        certificate_serial=serial_hex(cert),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        token_label=token_label,
        key_label=KEY_LABEL if token_label else None,
        created_at=now,
    )
    session.add(key)
    record(
        session,
        action="signing.key_enrolled",
        user_id=user_id,
        position_id=cab.position_id,
        actor_role=cab.role,
        object_type="signing_key",
        object_id=key_id,
        details={
            "method": method,
            "device_name": device_name,
            "certificate_serial": key.certificate_serial,
            "not_after": key.not_after.isoformat(),
        },
        at=now,
    )
    return key


async def enrol_device_key(
    session: AsyncSession,
    ctx: SigningContext,
    principal: Principal,
    user: tuple[uuid.UUID, str],
    data: schemas.DeviceKeyIn,
    now: dt.datetime,
) -> schemas.KeyOut:
    """Certify a device's public key (no CSR: the authenticated session binds it to the user;
    the first signature proves possession)."""
    user_id, full_name = user
    try:
        load_ec_public_key(data.public_key_spki)
    except CertificateError as exc:
        raise Invalid(f"public_key_spki: {exc}", field="public_key_spki") from exc
    subject, cab = await _subject(session, principal, full_name, data.position_id)
    try:
        cert = ctx.ca.certify_device_key(data.public_key_spki, subject, ctx.cert_days)
    except CertificateError as exc:
        raise Invalid(str(exc), field="public_key_spki") from exc
    key = _store_key(
        session,
        key_id=new_id(),
        user_id=user_id,
        method="device",
        cert=cert,
        now=now,
        cab=cab,
        device_name=data.device_name,
    )
    await session.flush()
    return key_out(key)


async def enrol_cloud_key(
    session: AsyncSession,
    ctx: SigningContext,
    principal: Principal,
    user: tuple[uuid.UUID, str],
    data: schemas.CloudKeyIn,
    now: dt.datetime,
) -> schemas.KeyOut:
    """Create the user's PKCS#11 token with their PIN, a key in it, and certify the key."""
    user_id, full_name = user
    existing = await session.scalar(
        select(SigningKey.id).where(
            SigningKey.user_id == user_id,
            SigningKey.method == "cloud",
            SigningKey.revoked_at.is_(None),
            SigningKey.not_after > now,
        )
    )
    if existing is not None:
        raise Conflict(
            "you already have a cloud key; revoke it before enrolling another",
            key_id=str(existing),
        )
    subject, cab = await _subject(session, principal, full_name, data.position_id)
    if not ctx.tokens.available():
        raise Unavailable("cloud keys are not available on this server (no PKCS#11 module)")
    key_id = new_id()
    token_label = key_id.hex  # 32 characters: the PKCS#11 maximum, unique per enrolment
    try:
        spki = await anyio.to_thread.run_sync(ctx.tokens.enrol, token_label, data.pin)
    except WrongPinError as exc:
        raise Invalid(f"the token refused the PIN: {exc}", field="pin") from exc
    except TokenError as exc:
        raise Unavailable(f"the key store cannot create a key now: {exc}") from exc
    cert = ctx.ca.certify_device_key(spki, subject, ctx.cert_days)
    key = _store_key(
        session,
        key_id=key_id,
        user_id=user_id,
        method="cloud",
        cert=cert,
        now=now,
        cab=cab,
        device_name="PKCS#11",
        token_label=token_label,
    )
    await session.flush()
    return key_out(key)


async def list_keys(session: AsyncSession, user_id: uuid.UUID) -> list[schemas.KeyOut]:
    keys = await session.scalars(
        select(SigningKey)
        .where(SigningKey.user_id == user_id)
        .order_by(SigningKey.created_at.desc(), SigningKey.id.desc())
    )
    return [key_out(k) for k in keys]


async def revoke_key(
    session: AsyncSession,
    ctx: SigningContext,
    user_id: uuid.UUID,
    key_id: uuid.UUID,
    reason: str,
    now: dt.datetime,
) -> schemas.KeyOut:
    """Revoke one's own key: the CA lists its certificate in the CRL from now on, and open
    sign requests of the key can no longer complete. Revoking twice changes nothing."""
    key = await session.get(SigningKey, key_id)
    if key is None or key.user_id != user_id:
        raise NotFound("signing key not found")
    took = await session.execute(
        update(SigningKey)
        .where(SigningKey.id == key_id, SigningKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if took.rowcount == 1:  # type: ignore[attr-defined]
        # The CA record is a file outside the transaction. It is written before the commit:
        # if the commit then fails, the certificate is revoked while the row says it is not,
        # which fails closed (verification reports it revoked; requests can be re-refused).
        ctx.ca.revoke(int(key.certificate_serial, 16), reason, revoked_at=now)
        record(
            session,
            action="signing.key_revoked",
            user_id=user_id,
            object_type="signing_key",
            object_id=key_id,
            details={"certificate_serial": key.certificate_serial, "reason": reason},
            at=now,
        )
        await session.flush()
        await session.refresh(key)
    return key_out(key)


# --- sign requests ----------------------------------------------------------------------------


def _check_key(key: SigningKey, now: dt.datetime) -> None:
    if key.revoked_at is not None:
        raise Conflict("the signing key is revoked", key_id=str(key.id))
    if not key.not_before <= now < key.not_after:
        raise Conflict("the signing key's certificate is not valid now", key_id=str(key.id))


async def _usable_key(
    session: AsyncSession,
    user_id: uuid.UUID,
    key_id: uuid.UUID | None,
    method: str | None,
    now: dt.datetime,
) -> tuple[SigningKey, x509.Certificate]:
    if key_id is not None:
        key = await session.get(SigningKey, key_id)
        if key is None or key.user_id != user_id:
            raise NotFound("signing key not found")
        if method is not None and method != key.method:
            raise Invalid(f"key {key_id} is a {key.method} key", field="method")
    elif method == "cloud":
        key = await session.scalar(
            select(SigningKey)
            .where(
                SigningKey.user_id == user_id,
                SigningKey.method == "cloud",
                SigningKey.revoked_at.is_(None),
            )
            .order_by(SigningKey.created_at.desc())
            .limit(1)
        )
        if key is None:
            raise Conflict("enrol a cloud key first (POST /api/v1/signing/cloud-keys)")
    else:
        raise Invalid('give key_id (a device key) or method: "cloud"', field="key_id")
    _check_key(key, now)
    return key, x509.load_der_x509_certificate(key.certificate_der)


def _file_sha256(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except FileNotFoundError:
        return None


async def _prepare(
    session: AsyncSession,
    ctx: SigningContext,
    blobs: BlobStore,
    principal: Principal,
    user_id: uuid.UUID,
    cab: Cabinet,
    key: SigningKey,
    cert: x509.Certificate,
    document_id: uuid.UUID,
    file_sha256: str,
    now: dt.datetime,
    batch_id: uuid.UUID | None = None,
) -> SignRequest:
    """Check everything a signature needs, then build and keep the bytes to be signed."""
    doc = await visible_document(session, principal, document_id)
    route = await current_route(session, doc.id)
    if route is None or route.state != "signing":
        state = route.state if route is not None else "none"
        raise Conflict(f"no signature is expected: the route is '{state}'")
    waiting = await session.scalar(
        select(RouteSignatory.id).where(
            RouteSignatory.route_id == route.id,
            RouteSignatory.position_id == cab.position_id,
            RouteSignatory.state == "waiting",
        )
    )
    if waiting is None:
        raise Conflict("no signature is expected from this position now")
    f = await main_file(session, doc.id)
    if file_sha256 != f.sha256:
        raise Conflict(
            "the draft has a newer version; read it and sign again",
            current_sha256=f.sha256,
            current_version=f.version,
        )
    # The device signs a digest it cannot check itself: make sure the stored bytes are the
    # ones the sha256 names before asking anyone to sign them.
    actual = await anyio.to_thread.run_sync(_file_sha256, blobs.path(f.sha256))
    if actual != f.sha256:
        raise Conflict("the stored file is missing or damaged; it cannot be signed")
    to_be_signed = build_signed_attributes(cert, digest=bytes.fromhex(f.sha256), signing_time=now)
    req = SignRequest(
        id=new_id(),
        user_id=user_id,
        position_id=cab.position_id,
        actor_role=cab.role,
        document_id=doc.id,
        file_id=f.id,
        file_sha256=f.sha256,
        key_id=key.id,
        batch_id=batch_id,
        to_be_signed=to_be_signed,
        expires_at=now + dt.timedelta(seconds=ctx.request_ttl_seconds),
        created_at=now,
    )
    session.add(req)
    return req


async def create_sign_request(
    session: AsyncSession,
    ctx: SigningContext,
    blobs: BlobStore,
    principal: Principal,
    user_id: uuid.UUID,
    document_id: uuid.UUID,
    data: schemas.SignRequestIn,
    now: dt.datetime,
) -> schemas.SignRequestOut:
    cab = principal.cabinet(data.position_id, "sign")
    key, cert = await _usable_key(session, user_id, data.key_id, data.method, now)
    req = await _prepare(
        session, ctx, blobs, principal, user_id, cab, key, cert, document_id, data.file_sha256, now
    )
    await session.flush()
    return schemas.SignRequestOut(
        request_id=req.id,
        document_id=req.document_id,
        file_id=req.file_id,
        file_sha256=req.file_sha256,
        key_id=key.id,
        method=key.method,
        to_be_signed=req.to_be_signed,
        algorithm=schemas.ALGORITHM,
        expires_at=req.expires_at,
    )


def item_error(exc: DomainError) -> schemas.ItemError:
    extra = exc.extra
    sig = extra.get("signature_id")
    return schemas.ItemError(
        status=exc.status_code,
        title=exc.title,
        detail=exc.detail,
        current_sha256=extra.get("current_sha256"),
        current_version=extra.get("current_version"),
        signature_id=uuid.UUID(str(sig)) if sig else None,
    )


async def create_batch(
    session: AsyncSession,
    ctx: SigningContext,
    blobs: BlobStore,
    principal: Principal,
    user_id: uuid.UUID,
    data: schemas.BatchIn,
    now: dt.datetime,
) -> schemas.BatchOut:
    """One sign request per document; a document that cannot be signed is reported and the
    others proceed. If none can, nothing is recorded and the answer is 409."""
    cab = principal.cabinet(data.position_id, "sign")
    key, cert = await _usable_key(session, user_id, data.key_id, data.method, now)
    ids = [i.document_id for i in data.items]
    if len(set(ids)) != len(ids):
        raise Invalid("a document is listed twice", field="items")
    batch = SignBatch(
        id=new_id(), user_id=user_id, position_id=cab.position_id, key_id=key.id, created_at=now
    )
    session.add(batch)
    items: list[schemas.BatchItemOut] = []
    for item in data.items:
        try:
            req = await _prepare(
                session,
                ctx,
                blobs,
                principal,
                user_id,
                cab,
                key,
                cert,
                item.document_id,
                item.file_sha256,
                now,
                batch_id=batch.id,
            )
        except DomainError as exc:
            # _prepare writes only after every check passed: a refused item left nothing.
            items.append(
                schemas.BatchItemOut(item.document_id, item.file_sha256, error=item_error(exc))
            )
            continue
        items.append(
            schemas.BatchItemOut(item.document_id, req.file_sha256, req.id, req.to_be_signed)
        )
    failed = sum(1 for i in items if i.error is not None)
    if failed == len(items):
        raise Conflict(
            "no document of the batch can be signed",
            items=[{"document_id": str(i.document_id), **_plain_error(i.error)} for i in items],
        )
    await session.flush()
    return schemas.BatchOut(
        batch_id=batch.id,
        key_id=key.id,
        method=key.method,
        algorithm=schemas.ALGORITHM,
        expires_at=now + dt.timedelta(seconds=ctx.request_ttl_seconds),
        items=items,
        requested=len(items) - failed,
        failed=failed,
    )


def _plain_error(error: schemas.ItemError | None) -> dict[str, object]:
    if error is None:
        return {}
    out: dict[str, object] = {"status": error.status, "detail": error.detail}
    if error.current_sha256:
        out["current_sha256"] = error.current_sha256
    return out


# --- completing -------------------------------------------------------------------------------


MAX_WRONG_PINS = 5
PIN_WINDOW = dt.timedelta(hours=24)


async def _wrong_pins(session: AsyncSession, key_id: uuid.UUID, now: dt.datetime) -> int:
    """Wrong PINs for a cloud key in the last 24 hours. SoftHSM2 has no lock-out of its own,
    so without this a stolen session could try every 4-digit PIN."""
    count = await session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.action == "signing.wrong_pin",
            AuditEvent.object_id == key_id,
            AuditEvent.at > now - PIN_WINDOW,
        )
    )
    return int(count or 0)


async def complete_request(
    session: AsyncSession,
    ctx: SigningContext,
    principal: Principal,
    user_id: uuid.UUID,
    request_id: uuid.UUID,
    data: schemas.CompleteIn,
    now: dt.datetime,
    tz: str,
    *,
    batch_id: uuid.UUID | None = None,
) -> schemas.SignatureOut:
    """Check the signature over the stored bytes, assemble the CMS, store it and complete the
    signatory's step (registration after the last one). The caller commits."""
    req = await session.get(SignRequest, request_id)
    if req is None or req.user_id != user_id or (batch_id is not None and req.batch_id != batch_id):
        raise NotFound("sign request not found")
    cab = principal.cabinet(req.position_id, "sign")
    key = await session.get(SigningKey, req.key_id)
    assert key is not None  # foreign key
    if key.method == "device" and (data.signature is None or data.pin is not None):
        raise Invalid("a device key's request completes with {signature}", field="signature")
    if key.method == "cloud" and (data.pin is None or data.signature is not None):
        raise Invalid("a cloud key's request completes with {pin}", field="pin")
    if req.used_at is not None:
        done = await session.scalar(select(Signature.id).where(Signature.request_id == req.id))
        raise Conflict(
            "this sign request was already used",
            signature_id=str(done) if done else None,
        )
    if req.expires_at <= now:
        raise Conflict("the sign request expired; ask for a new one")
    _check_key(key, now)
    f = await main_file(session, req.document_id)
    if f.id != req.file_id or f.sha256 != req.file_sha256:
        raise Conflict(
            "the draft has a newer version; read it and sign again",
            current_sha256=f.sha256,
            current_version=f.version,
        )
    cloud_signature = None
    if key.method == "cloud":
        # The PIN is tried before anything is written: a wrong one is recorded (and counts
        # towards the lock) in a transaction of its own, since the decision rolls back.
        assert data.pin is not None and key.token_label and key.key_label
        key_id = key.id  # read now: the rollback below expires the ORM objects
        if await _wrong_pins(session, key_id, now) >= MAX_WRONG_PINS:
            raise Conflict(
                f"the cloud key is locked after {MAX_WRONG_PINS} wrong PINs; try again in "
                "24 hours or enrol a new key"
            )
        try:
            cloud_signature = await anyio.to_thread.run_sync(
                ctx.tokens.sign, key.token_label, key.key_label, req.to_be_signed, data.pin
            )
        except WrongPinError as exc:
            await session.rollback()
            record(
                session,
                action="signing.wrong_pin",
                user_id=user_id,
                object_type="signing_key",
                object_id=key_id,
                at=now,
            )
            await session.commit()
            raise Invalid("the PIN is wrong", field="pin") from exc
        except TokenError as exc:
            raise Unavailable(f"the cloud key cannot sign now: {exc}") from exc
    # Take the request. On PostgreSQL a concurrent completion waits on this row and then
    # finds it used; a failure below rolls the take back with everything else.
    took = await session.execute(
        update(SignRequest)
        .where(
            SignRequest.id == req.id,
            SignRequest.used_at.is_(None),
            SignRequest.expires_at > now,
        )
        .values(used_at=now)
    )
    if took.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("this sign request was already used")
    cert = x509.load_der_x509_certificate(key.certificate_der)
    if cloud_signature is not None:
        signature = cloud_signature
    else:
        assert data.signature is not None
        signature = data.signature
    try:
        cms_der = assemble_cms(req.to_be_signed, signature, cert, ctx.ca.chain)
    except (InvalidSignatureError, MalformedCmsError) as exc:
        raise Invalid(f"the signature does not verify: {exc}", field="signature") from exc
    signing_time = parse_signed_attributes(req.to_be_signed).signing_time or req.created_at
    sig = Signature(
        id=new_id(),
        document_id=req.document_id,
        file_id=req.file_id,
        file_sha256=req.file_sha256,
        position_id=req.position_id,
        user_id=user_id,
        actor_role=cab.role,
        key_id=key.id,
        request_id=req.id,
        cms_der=cms_der,
        certificate_serial=key.certificate_serial,
        signing_time=signing_time,
        created_at=now,
    )
    session.add(sig)
    await session.flush()
    step = await complete_signatory_step(
        session,
        document_id=req.document_id,
        position_id=req.position_id,
        user_id=user_id,
        actor_role=cab.role,
        file_sha256=req.file_sha256,
        now=now,
        tz=tz,
        signature_id=sig.id,
    )
    record(
        session,
        action="signature.created",
        user_id=user_id,
        position_id=req.position_id,
        actor_role=cab.role,
        document_id=req.document_id,
        object_type="signature",
        object_id=sig.id,
        details={
            "method": key.method,
            "certificate_serial": key.certificate_serial,
            "file_sha256": req.file_sha256,
            "batch_id": str(req.batch_id) if req.batch_id else None,
        },
        at=now,
    )
    doc = await session.get(Document, req.document_id)
    route = await session.get(Route, step.route_id)
    assert doc is not None and route is not None
    await session.flush()
    return schemas.SignatureOut(
        signature_id=sig.id,
        request_id=req.id,
        document_id=req.document_id,
        file_id=req.file_id,
        file_sha256=req.file_sha256,
        position_id=req.position_id,
        actor_role=cab.role,
        key_id=key.id,
        certificate_serial=key.certificate_serial,
        signing_time=signing_time,
        route_state=route.state,
        document_state=doc.state,
        reg_number=doc.reg_number,
    )


async def complete_batch(
    session: AsyncSession,
    ctx: SigningContext,
    principal: Principal,
    user_id: uuid.UUID,
    batch_id: uuid.UUID,
    data: schemas.BatchCompleteIn,
    tz: str,
    clock: Callable[[], dt.datetime],
) -> schemas.BatchCompleteOut:
    """Complete every item in its own transaction: one failure does not sink the others.

    A retry of a batch after a lost answer is safe: items already signed answer 409 with
    their `signature_id`, the rest are signed now.
    """
    batch = await session.get(SignBatch, batch_id)
    if batch is None or batch.user_id != user_id:
        raise NotFound("sign batch not found")
    principal.cabinet(batch.position_id, "sign")
    key = await session.get(SigningKey, batch.key_id)
    assert key is not None
    requests = dict(
        (
            await session.execute(
                select(SignRequest.id, SignRequest.document_id)
                .where(SignRequest.batch_id == batch.id)
                .order_by(SignRequest.id)
            )
        ).all()
    )
    work: list[tuple[uuid.UUID, schemas.CompleteIn]]
    if key.method == "device":
        if data.signatures is None or data.pin is not None:
            raise Invalid("a device key's batch completes with {signatures}", field="signatures")
        wanted = [s.request_id for s in data.signatures]
        if len(set(wanted)) != len(wanted):
            raise Invalid("a request is listed twice", field="signatures")
        work = [(s.request_id, schemas.CompleteIn(signature=s.signature)) for s in data.signatures]
    else:
        if data.pin is None or data.signatures is not None:
            raise Invalid("a cloud key's batch completes with {pin}", field="pin")
        open_ids = await session.scalars(
            select(SignRequest.id)
            .where(SignRequest.batch_id == batch.id, SignRequest.used_at.is_(None))
            .order_by(SignRequest.id)
        )
        work = [(rid, schemas.CompleteIn(pin=data.pin)) for rid in open_ids]
    await session.commit()  # end the reading transaction; each item writes its own

    results: list[schemas.BatchResultOut] = []
    stop: schemas.ItemError | None = None
    for request_id, body in work:
        document_id = requests.get(request_id)
        if stop is not None:
            results.append(schemas.BatchResultOut(request_id, document_id, stop.status, error=stop))
            continue
        try:
            out = await complete_request(
                session,
                ctx,
                principal,
                user_id,
                request_id,
                body,
                clock(),
                tz,
                batch_id=batch_id,
            )
            await session.commit()
        except DomainError as exc:
            await session.rollback()
            error = item_error(exc)
            if exc.extra.get("field") == "pin":
                stop = error  # a wrong PIN is wrong for every item: do not try it 100 times
            results.append(
                schemas.BatchResultOut(request_id, document_id, error.status, error=error)
            )
            continue
        except IntegrityError:
            await session.rollback()
            error = schemas.ItemError(409, "Conflict", "a concurrent change won; sign again")
            results.append(schemas.BatchResultOut(request_id, document_id, 409, error=error))
            continue
        results.append(schemas.BatchResultOut(request_id, document_id, 201, signature=out))
    signed = sum(1 for r in results if r.signature is not None)
    return schemas.BatchCompleteOut(batch_id, results, signed, len(results) - signed)


# --- signatures -------------------------------------------------------------------------------


async def visible_signature(
    session: AsyncSession, principal: Principal, signature_id: uuid.UUID
) -> Signature:
    sig = await session.get(Signature, signature_id)
    if sig is None:
        raise NotFound("signature not found")
    await visible_document(session, principal, sig.document_id)
    return sig


async def verify_signature(
    session: AsyncSession,
    ctx: SigningContext,
    blobs: BlobStore,
    principal: Principal,
    signature_id: uuid.UUID,
    now: dt.datetime,
) -> schemas.VerificationOut:
    """Verify the stored CMS against the stored file bytes, the CA root and its current CRL,
    as an outside verifier would."""
    sig = await visible_signature(session, principal, signature_id)
    path = blobs.path(sig.file_sha256)
    cms_der = sig.cms_der

    def run() -> tuple[VerificationResult, bool]:
        digest = _file_digest(path)
        result = verify_cms(
            cms_der,
            None,
            [ctx.ca.root_certificate],
            ctx.ca.crl(),
            digest=digest if digest is not None else b"",
            at=now,
        )
        return result, digest is not None

    result, found = await anyio.to_thread.run_sync(run)
    return verification_out(sig, result, now, stored_file_found=found)


def _file_digest(path: Path) -> bytes | None:
    try:
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").digest()
    except FileNotFoundError:
        return None


def verification_out(
    sig: Signature, result: VerificationResult, now: dt.datetime, *, stored_file_found: bool = True
) -> schemas.VerificationOut:
    errors = list(result.errors)
    if not stored_file_found:
        errors.append("the stored file is missing")
    return schemas.VerificationOut(
        signature_id=sig.id,
        document_id=sig.document_id,
        file_id=sig.file_id,
        file_sha256=sig.file_sha256,
        valid=result.valid,
        signature_valid=result.signature_valid,
        content_matches=result.content_matches,
        chain_valid=result.chain_valid,
        chain=result.chain,
        revoked=result.revoked,
        revoked_at=result.revoked_at,
        revocation_reason=result.revocation_reason,
        crl_checked=result.crl_checked,
        signer=schemas.SignerOut(
            full_name=result.signer.full_name,
            position_title=result.signer.position_title,
            organization=result.signer.organization,
            subject=result.signer_subject,
        ),
        certificate_serial=result.serial_hex,
        not_before=result.not_before,
        not_after=result.not_after,
        signing_time=result.signing_time,
        verified_at=now,
        errors=errors,
    )


CARD_SIGNATURES = (
    select(
        Signature.id,
        Signature.file_id,
        Signature.file_sha256,
        Signature.position_id,
        User.full_name,
        Signature.actor_role,
        SigningKey.method,
        Signature.certificate_serial,
        Signature.signing_time,
    )
    .join(SigningKey, SigningKey.id == Signature.key_id)
    .join(User, User.id == Signature.user_id)
    .where(Signature.document_id == bindparam("document_id", type_=Uuid()))
    .order_by(Signature.created_at, Signature.id)
)


def signatures_from_rows(rows: Sequence[Sequence[Any]]) -> list[schemas.CardSignatureOut]:
    return [schemas.CardSignatureOut(*row) for row in rows]


async def file_certificates(
    session: AsyncSession, document_id: uuid.UUID, file_id: uuid.UUID
) -> Sequence[tuple[uuid.UUID, bytes]]:
    """(signature id, signer certificate DER) of every signature on one file version, in
    signing order. Uses the signatures' document index: cheap when there are none."""
    rows = await session.execute(
        select(Signature.id, SigningKey.certificate_der)
        .join(SigningKey, SigningKey.id == Signature.key_id)
        .where(Signature.document_id == document_id, Signature.file_id == file_id)
        .order_by(Signature.created_at, Signature.id)
    )
    return [(sid, der) for sid, der in rows]

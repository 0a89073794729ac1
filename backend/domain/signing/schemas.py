"""msgspec structs at the HTTP edge for signing. Binary values travel as standard base64
(msgspec's JSON form of `bytes`)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec

Sha256 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
# A P-256 SubjectPublicKeyInfo is 91 bytes; leave room, refuse anything silly.
Spki = Annotated[bytes, msgspec.Meta(min_length=1, max_length=1024)]
# Raw r‖s is 64 bytes, DER at most 72.
RawOrDerSignature = Annotated[bytes, msgspec.Meta(min_length=1, max_length=256)]
# SoftHSM2 takes PINs of 4..255 bytes.
Pin = Annotated[str, msgspec.Meta(min_length=4, max_length=64)]
DeviceName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Method = Literal["device", "cloud"]
RevocationReason = Literal[
    "unspecified", "keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation"
]

ALGORITHM = "ECDSA-SHA256"


# --- keys -------------------------------------------------------------------------------------


class DeviceKeyIn(msgspec.Struct, forbid_unknown_fields=True):
    """`crypto.subtle.exportKey("spki", publicKey)` of a non-extractable ECDSA P-256 key."""

    public_key_spki: Spki
    device_name: DeviceName
    # The own position to name in the certificate; default: the user's first own position.
    position_id: uuid.UUID | None = None


class CloudKeyIn(msgspec.Struct, forbid_unknown_fields=True):
    pin: Pin
    position_id: uuid.UUID | None = None


class RevokeIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: RevocationReason = "unspecified"


class KeyOut(msgspec.Struct):
    key_id: uuid.UUID
    method: str
    device_name: str | None
    certificate_pem: str
    certificate_serial: str
    subject: str
    not_before: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None
    created_at: dt.datetime


# --- sign requests ----------------------------------------------------------------------------


class SignRequestIn(msgspec.Struct, forbid_unknown_fields=True):
    """`{position_id, file_sha256, key_id}` for a device key or `{…, method: "cloud"}`."""

    position_id: uuid.UUID
    file_sha256: Sha256
    key_id: uuid.UUID | None = None
    method: Method | None = None


class SignRequestOut(msgspec.Struct):
    request_id: uuid.UUID
    document_id: uuid.UUID
    file_id: uuid.UUID
    file_sha256: str
    key_id: uuid.UUID
    method: str
    # DER of the CMS signed attributes (SET OF, tag 0x31): the exact bytes to sign.
    to_be_signed: bytes
    algorithm: str
    expires_at: dt.datetime


class CompleteIn(msgspec.Struct, forbid_unknown_fields=True):
    """`{signature}` (raw r‖s as WebCrypto gives it, or DER) or `{pin}` for a cloud key."""

    signature: RawOrDerSignature | None = None
    pin: Pin | None = None


class SignatureOut(msgspec.Struct):
    signature_id: uuid.UUID
    request_id: uuid.UUID
    document_id: uuid.UUID
    file_id: uuid.UUID
    file_sha256: str
    position_id: uuid.UUID
    actor_role: str
    key_id: uuid.UUID
    certificate_serial: str
    signing_time: dt.datetime
    # Where the route went: `signing` (next signatory asked) or `completed` (registered).
    route_state: str
    document_state: str
    reg_number: str | None


# --- batches ----------------------------------------------------------------------------------


class BatchItemIn(msgspec.Struct, forbid_unknown_fields=True):
    document_id: uuid.UUID
    file_sha256: Sha256


class BatchIn(msgspec.Struct, forbid_unknown_fields=True):
    position_id: uuid.UUID
    items: Annotated[list[BatchItemIn], msgspec.Meta(min_length=1, max_length=200)]
    key_id: uuid.UUID | None = None
    method: Method | None = None


class ItemError(msgspec.Struct, omit_defaults=True):
    status: int
    title: str
    detail: str
    current_sha256: str | None = None
    current_version: int | None = None
    signature_id: uuid.UUID | None = None


class BatchItemOut(msgspec.Struct):
    document_id: uuid.UUID
    file_sha256: str
    request_id: uuid.UUID | None = None
    to_be_signed: bytes | None = None
    error: ItemError | None = None


class BatchOut(msgspec.Struct):
    batch_id: uuid.UUID
    key_id: uuid.UUID
    method: str
    algorithm: str
    expires_at: dt.datetime
    items: list[BatchItemOut]
    requested: int
    failed: int


class BatchSignatureIn(msgspec.Struct, forbid_unknown_fields=True):
    request_id: uuid.UUID
    signature: RawOrDerSignature


class BatchCompleteIn(msgspec.Struct, forbid_unknown_fields=True):
    """Device key: one signature per request. Cloud key: `{pin}` signs every open request."""

    signatures: Annotated[list[BatchSignatureIn], msgspec.Meta(max_length=200)] | None = None
    pin: Pin | None = None


class BatchResultOut(msgspec.Struct):
    request_id: uuid.UUID
    document_id: uuid.UUID | None
    status: int
    signature: SignatureOut | None = None
    error: ItemError | None = None


class BatchCompleteOut(msgspec.Struct):
    batch_id: uuid.UUID
    items: list[BatchResultOut]
    signed: int
    failed: int


# --- signatures -------------------------------------------------------------------------------


class SignerOut(msgspec.Struct):
    full_name: str
    position_title: str
    organization: str
    subject: str


class VerificationOut(msgspec.Struct):
    signature_id: uuid.UUID
    document_id: uuid.UUID
    file_id: uuid.UUID
    file_sha256: str
    valid: bool
    signature_valid: bool
    content_matches: bool
    chain_valid: bool
    chain: list[str]
    revoked: bool
    revoked_at: dt.datetime | None
    revocation_reason: str | None
    crl_checked: bool
    signer: SignerOut
    certificate_serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    # The signer's claim (CAdES-BES has no trusted time stamp).
    signing_time: dt.datetime | None
    verified_at: dt.datetime
    errors: list[str]


class CardSignatureOut(msgspec.Struct):
    """A signature as the document card lists it."""

    id: uuid.UUID
    file_id: uuid.UUID
    file_sha256: str
    position_id: uuid.UUID
    signer: str
    actor_role: str
    method: str
    certificate_serial: str
    signing_time: dt.datetime

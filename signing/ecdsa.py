"""ECDSA signature encodings and verification over signed-attributes DER.

WebCrypto returns ECDSA signatures as raw ``r‖s`` (IEEE P1363), while CMS and X.509 carry the
DER ``ECDSA-Sig-Value`` SEQUENCE. The server accepts both from devices, so it normalises
everything to DER here, in one place.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from signing.errors import CertificateError, InvalidSignatureError

#: Size in bytes of one coordinate (and of ``r`` and ``s``) on P-256.
P256_COORDINATE_SIZE = 32


def raw_to_der(raw: bytes, size: int = P256_COORDINATE_SIZE) -> bytes:
    """Convert a raw ``r‖s`` signature (``2*size`` bytes, as WebCrypto gives) to DER."""
    if len(raw) != 2 * size:
        raise InvalidSignatureError(f"raw ECDSA signature must be {2 * size} bytes, got {len(raw)}")
    r = int.from_bytes(raw[:size], "big")
    s = int.from_bytes(raw[size:], "big")
    if r == 0 or s == 0:
        # Zero is never a valid r or s; rejecting early avoids a confusing verify failure later.
        raise InvalidSignatureError("raw ECDSA signature has a zero component")
    return encode_dss_signature(r, s)


def der_to_raw(der: bytes, size: int = P256_COORDINATE_SIZE) -> bytes:
    """Convert a DER ``ECDSA-Sig-Value`` to raw ``r‖s`` of ``2*size`` bytes."""
    r, s = _decode_strict(der)
    limit = 1 << (8 * size)
    if not (0 < r < limit and 0 < s < limit):
        raise InvalidSignatureError("ECDSA signature component out of range for the curve")
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def to_der_signature(signature: bytes, size: int = P256_COORDINATE_SIZE) -> bytes:
    """Return the DER form of ``signature``, which may be raw ``r‖s`` or already DER.

    A ``2*size``-byte value is read as raw unless it is a strict, canonical DER encoding:
    a random ``r‖s`` parses as canonical DER with negligible probability, and a DER
    signature is exactly 64 bytes long only when ``r`` and ``s`` have leading zero bytes.
    """
    if len(signature) == 2 * size:
        try:
            _decode_strict(signature)
        except InvalidSignatureError:
            return raw_to_der(signature, size)
        return signature
    _decode_strict(signature)
    return signature


def load_ec_public_key(public_key: ec.EllipticCurvePublicKey | bytes) -> ec.EllipticCurvePublicKey:
    """Return a P-256 public key from a key object or SubjectPublicKeyInfo DER.

    Only P-256 is accepted because it is the one curve every WebCrypto implementation has and
    the one the internal CA certifies; another curve here means a client bug.
    """
    if isinstance(public_key, bytes):
        try:
            loaded = serialization.load_der_public_key(public_key)
        except ValueError as exc:
            raise CertificateError("public key is not valid SubjectPublicKeyInfo DER") from exc
    else:
        loaded = public_key
    if not isinstance(loaded, ec.EllipticCurvePublicKey):
        raise CertificateError("public key is not an elliptic-curve key")
    if not isinstance(loaded.curve, ec.SECP256R1):
        raise CertificateError(f"public key curve {loaded.curve.name} is not P-256 (secp256r1)")
    return loaded


def verify_signature(
    public_key: ec.EllipticCurvePublicKey | bytes,
    signed_attrs_der: bytes,
    signature: bytes,
) -> bool:
    """Check an ECDSA-SHA256 ``signature`` (raw or DER) over ``signed_attrs_der``.

    ``signed_attrs_der`` must be the SET OF attributes (tag 0x31) exactly as it was signed.
    Returns ``False`` for a wrong or malformed signature; raises :class:`CertificateError`
    only when the key itself is unusable.
    """
    key = load_ec_public_key(public_key)
    try:
        der = to_der_signature(signature)
    except InvalidSignatureError:
        return False
    try:
        key.verify(der, signed_attrs_der, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def _decode_strict(der: bytes) -> tuple[int, int]:
    """Decode DER and insist it re-encodes to the same bytes (no BER, no trailing data)."""
    try:
        r, s = decode_dss_signature(der)
    except ValueError as exc:
        raise InvalidSignatureError("signature is not DER ECDSA-Sig-Value") from exc
    if r <= 0 or s <= 0 or encode_dss_signature(r, s) != der:
        raise InvalidSignatureError("signature is not canonical DER ECDSA-Sig-Value")
    return r, s

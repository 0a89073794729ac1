"""Signature algorithms known to the library, kept in one place.

Every OID that reaches a CMS structure comes from a :class:`SignatureAlgorithm`, so adding a
GOST R 34.10-2012 provider means registering one more value here (with its Streebog digest
and its verifier) rather than touching attribute building or CMS assembly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from asn1crypto import algos

from signing import ecdsa
from signing.errors import SigningError


@dataclass(frozen=True)
class SignatureAlgorithm:
    """A digest + signature algorithm pair as it appears in CMS.

    ``digest_oid`` and ``signature_oid`` are asn1crypto names (``"sha256"``) or dotted OIDs
    (``"1.2.643.7.1.1.2.2"``); asn1crypto accepts either. ``verify`` takes the signer's
    SubjectPublicKeyInfo DER, the signed bytes and a signature in the CMS encoding.
    """

    name: str
    digest_oid: str
    signature_oid: str
    digest: Callable[[bytes], bytes]
    verify: Callable[[bytes, bytes, bytes], bool]
    #: Turn whatever a client sent (e.g. WebCrypto raw r‖s) into the CMS encoding.
    normalize_signature: Callable[[bytes], bytes]


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


ECDSA_SHA256 = SignatureAlgorithm(
    name="ECDSA-SHA256",
    digest_oid="sha256",
    # asn1crypto's name for ecdsa-with-SHA256, 1.2.840.10045.4.3.2 (RFC 5758).
    signature_oid="sha256_ecdsa",
    digest=_sha256,
    verify=ecdsa.verify_signature,
    normalize_signature=ecdsa.to_der_signature,
)

_BY_SIGNATURE_OID: dict[str, SignatureAlgorithm] = {}


def _dotted(oid: str) -> str:
    """Dotted form of an asn1crypto algorithm name or an already dotted OID."""
    try:
        return str(algos.SignedDigestAlgorithmId(oid).dotted)
    except ValueError:
        raise SigningError(f"unknown signature algorithm {oid}") from None


def register_algorithm(algorithm: SignatureAlgorithm) -> None:
    """Make ``algorithm`` known to verification (e.g. from a GOST provider package)."""
    _BY_SIGNATURE_OID[_dotted(algorithm.signature_oid)] = algorithm


def algorithm_for_signature_oid(oid: str) -> SignatureAlgorithm:
    """Return the registered algorithm for a CMS ``signatureAlgorithm`` (name or dotted OID)."""
    try:
        return _BY_SIGNATURE_OID[_dotted(oid)]
    except KeyError:
        raise SigningError(f"unsupported signature algorithm {oid}") from None


register_algorithm(ECDSA_SHA256)

"""The seam between "who holds the key" and "what gets signed".

A device key (WebCrypto), a PKCS#11 cloud key, a GOST CSP or an external signing service all
do the same thing for CMS: sign the DER of the signed attributes. Code that assembles
signatures depends only on :class:`Signer`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from signing.algorithms import ECDSA_SHA256, SignatureAlgorithm


@runtime_checkable
class Signer(Protocol):
    """Something that signs CMS signed-attributes DER with one private key."""

    @property
    def algorithm(self) -> SignatureAlgorithm:
        """The algorithm whose OIDs go into the CMS SignerInfo."""
        ...

    def sign(self, signed_attrs_der: bytes) -> bytes:
        """Sign ``signed_attrs_der`` (SET OF, tag 0x31); return the CMS-encoded signature."""
        ...


class PrivateKeySigner:
    """A :class:`Signer` over an in-process P-256 key (tests, server-held keys)."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        """Wrap ``private_key``; it must be on P-256."""
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError("PrivateKeySigner needs a P-256 key")
        self._key = private_key

    @property
    def algorithm(self) -> SignatureAlgorithm:
        """Always ECDSA-SHA256."""
        return ECDSA_SHA256

    def sign(self, signed_attrs_der: bytes) -> bytes:
        """Return a DER ECDSA-SHA256 signature over ``signed_attrs_der``."""
        return self._key.sign(signed_attrs_der, ec.ECDSA(hashes.SHA256()))

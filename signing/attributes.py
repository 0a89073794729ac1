"""CAdES-BES signed attributes for a detached signature.

The device signs exactly the bytes returned by :func:`build_signed_attributes`; the server
later embeds the same attributes in the CMS SignerInfo under the ``[0] IMPLICIT`` tag. RFC 5652
§5.4 says the signature covers the DER of the SET OF (tag 0x31), which is what is returned here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from signing.algorithms import ECDSA_SHA256, SignatureAlgorithm
from signing.errors import MalformedCmsError

#: RFC 5652 §11.3: signing times from 1950 through 2049 must be UTCTime, later GeneralizedTime.
_UTCTIME_LIMIT_YEAR = 2050


@dataclass(frozen=True)
class SignedAttributes:
    """The values read back from signed-attributes DER."""

    content_type: str
    message_digest: bytes
    signing_time: datetime | None
    #: Hash of the signer certificate from ESS signing-certificate-v2, if present.
    signing_certificate_hash: bytes | None
    signing_certificate_hash_algorithm: str | None


def build_signed_attributes(
    signer_certificate: x509.Certificate,
    *,
    content: bytes | None = None,
    digest: bytes | None = None,
    signing_time: datetime | None = None,
    algorithm: SignatureAlgorithm = ECDSA_SHA256,
) -> bytes:
    """Return the DER SET OF signed attributes (tag 0x31) to be signed.

    Give either ``content`` (the exact file bytes) or its ``digest`` (for SHA-256, 32 bytes),
    not both. The attributes are content-type ``data``, message-digest, signing-time (now if
    not given) and ESS signing-certificate-v2 binding the signature to ``signer_certificate``
    so that a certificate re-issued for the same key cannot be substituted.
    """
    if (content is None) == (digest is None):
        raise ValueError("give exactly one of content or digest")
    if content is not None:
        digest = algorithm.digest(content)
    assert digest is not None  # narrowed above; keeps mypy aware
    expected_len = len(algorithm.digest(b""))
    if len(digest) != expected_len:
        raise ValueError(f"{algorithm.name} digest must be {expected_len} bytes, got {len(digest)}")

    when = (signing_time or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    time_value = (
        cms.Time({"utc_time": when})
        if when.year < _UTCTIME_LIMIT_YEAR
        else cms.Time({"generalized_time": when})
    )

    ess = _signing_certificate_attribute(
        signer_certificate.public_bytes(Encoding.DER), algorithm.digest_oid, algorithm.digest
    )
    attrs = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
            cms.CMSAttribute({"type": "message_digest", "values": [digest]}),
            cms.CMSAttribute({"type": "signing_time", "values": [time_value]}),
            cms.CMSAttribute.load(ess),
        ]
    )
    # asn1crypto sorts SET OF members by their encodings on dump, as DER requires; OpenSSL
    # re-encodes signed attributes before verifying, so an unsorted SET would not verify.
    return bytes(attrs.dump())


@lru_cache(maxsize=256)
def _signing_certificate_attribute(
    cert_der: bytes, digest_oid: str, digest: Callable[[bytes], bytes]
) -> bytes:
    """DER of the ESS signing-certificate-v2 attribute for one certificate.

    It is the same for every signature made with a certificate, and encoding the issuer name
    with asn1crypto is the slowest step of a batch, so it is computed once per certificate.
    """
    asn1_cert = asn1_x509.Certificate.load(cert_der)
    ess_cert_id: dict[str, object] = {
        "cert_hash": digest(cert_der),
        "issuer_serial": {
            "issuer": [asn1_x509.GeneralName({"directory_name": asn1_cert.issuer})],
            "serial_number": asn1_cert.serial_number,
        },
    }
    if digest_oid != "sha256":
        # SHA-256 is the DEFAULT of ESSCertIDv2.hashAlgorithm and DER forbids encoding it.
        ess_cert_id["hash_algorithm"] = {"algorithm": digest_oid}
    attribute = cms.CMSAttribute(
        {
            "type": "signing_certificate_v2",
            "values": [tsp.SigningCertificateV2({"certs": [ess_cert_id]})],
        }
    )
    return bytes(attribute.dump())


def parse_signed_attributes(signed_attrs_der: bytes) -> SignedAttributes:
    """Parse signed-attributes DER (tag 0x31 or the ``[0]`` form found inside a SignerInfo)."""
    if not signed_attrs_der:
        raise MalformedCmsError("empty signed attributes")
    data = signed_attrs_der
    if data[0] == 0xA0:
        data = b"\x31" + data[1:]
    try:
        attrs = cms.CMSAttributes.load(data, strict=True)
        values: dict[str, object] = {}
        for attr in attrs:
            name = attr["type"].native
            if name in values:
                raise MalformedCmsError(f"signed attribute {name} appears twice")
            if len(attr["values"]) != 1:
                raise MalformedCmsError(f"signed attribute {name} must have exactly one value")
            values[name] = attr["values"][0]
        content_type = values.get("content_type")
        message_digest = values.get("message_digest")
        if not isinstance(content_type, cms.ContentType) or not isinstance(
            message_digest, cms.OctetString
        ):
            raise MalformedCmsError("content-type and message-digest attributes are required")
        signing_time_value = values.get("signing_time")
        signing_time = (
            signing_time_value.native if isinstance(signing_time_value, cms.Time) else None
        )
        cert_hash: bytes | None = None
        cert_hash_alg: str | None = None
        sc = values.get("signing_certificate_v2")
        if isinstance(sc, tsp.SigningCertificateV2) and len(sc["certs"]) > 0:
            first = sc["certs"][0]
            cert_hash = bytes(first["cert_hash"].native)
            cert_hash_alg = str(first["hash_algorithm"]["algorithm"].native)
        return SignedAttributes(
            content_type=str(content_type.native),
            message_digest=bytes(message_digest.native),
            signing_time=signing_time,
            signing_certificate_hash=cert_hash,
            signing_certificate_hash_algorithm=cert_hash_alg,
        )
    except MalformedCmsError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedCmsError(f"signed attributes are not valid DER: {exc}") from exc

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from signing import MalformedCmsError, build_signed_attributes, parse_signed_attributes


def test_attributes_are_a_der_set(device_cert: x509.Certificate) -> None:
    content = b"%PDF-1.7 document bytes"
    when = datetime(2026, 3, 1, 10, 30, 15, 123456, tzinfo=UTC)
    der = build_signed_attributes(device_cert, content=content, signing_time=when)
    assert der[0] == 0x31  # SET OF, not the [0] IMPLICIT tag of SignerInfo
    # Re-encoding as DER must not change a byte: OpenSSL re-encodes before verifying.
    assert cms.CMSAttributes.load(der).dump(force=True) == der

    attrs = parse_signed_attributes(der)
    assert attrs.content_type == "data"
    assert attrs.message_digest == hashlib.sha256(content).digest()
    assert attrs.signing_time == when.replace(microsecond=0)
    assert (
        attrs.signing_certificate_hash
        == hashlib.sha256(device_cert.public_bytes(Encoding.DER)).digest()
    )
    assert attrs.signing_certificate_hash_algorithm == "sha256"


def test_digest_instead_of_content(device_cert: x509.Certificate) -> None:
    digest = hashlib.sha256(b"file").digest()
    when = datetime(2026, 1, 1, tzinfo=UTC)
    a = build_signed_attributes(device_cert, digest=digest, signing_time=when)
    b = build_signed_attributes(device_cert, content=b"file", signing_time=when)
    assert a == b
    # The [0]-tagged form found inside a SignerInfo parses too.
    assert parse_signed_attributes(b"\xa0" + a[1:]).message_digest == digest


def test_argument_errors(device_cert: x509.Certificate) -> None:
    with pytest.raises(ValueError):
        build_signed_attributes(device_cert)
    with pytest.raises(ValueError):
        build_signed_attributes(device_cert, content=b"a", digest=b"\x00" * 32)
    with pytest.raises(ValueError):
        build_signed_attributes(device_cert, digest=b"short")


def test_garbage_refused() -> None:
    with pytest.raises(MalformedCmsError):
        parse_signed_attributes(b"\x31\x05garbage")
    with pytest.raises(MalformedCmsError):
        parse_signed_attributes(b"")

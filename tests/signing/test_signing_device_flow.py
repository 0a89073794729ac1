"""The token-based flow end to end: enrol a WebCrypto key, sign, assemble CMS, verify."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from signing import (
    ECDSA_SHA256,
    CertificateAuthority,
    InvalidSignatureError,
    MalformedCmsError,
    PrivateKeySigner,
    SigningError,
    SubjectInfo,
    algorithm_for_signature_oid,
    assemble_cms,
    build_signed_attributes,
    sign_detached,
    verify_cms,
    verify_signature,
)

SignRaw = Callable[[ec.EllipticCurvePrivateKey, bytes], bytes]
OpensslVerify = Callable[[bytes, bytes], bool]

CONTENT = "Постановление № 12-п от 01.03.2026\n".encode() * 500


def _device_sign(
    ca: CertificateAuthority,
    key: ec.EllipticCurvePrivateKey,
    cert: x509.Certificate,
    sign_raw: SignRaw,
    content: bytes = CONTENT,
) -> bytes:
    # Server: to_be_signed from the file digest the client reported.
    to_be_signed = build_signed_attributes(cert, digest=hashlib.sha256(content).digest())
    # Device: WebCrypto signs to_be_signed and returns raw r‖s.
    raw = sign_raw(key, to_be_signed)
    assert len(raw) == 64
    # Server: check the raw signature, then assemble the CMS.
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert verify_signature(spki, to_be_signed, raw)
    return assemble_cms(to_be_signed, raw, cert, ca.chain)


def test_device_flow_verified_by_openssl_and_library(
    ca: CertificateAuthority,
    device_key: ec.EllipticCurvePrivateKey,
    device_cert: x509.Certificate,
    sign_raw: SignRaw,
    openssl_verify: OpensslVerify,
) -> None:
    cms_der = _device_sign(ca, device_key, device_cert, sign_raw)
    assert openssl_verify(cms_der, CONTENT)

    result = verify_cms(cms_der, CONTENT, [ca.root_certificate], ca.crl())
    assert result.valid, result.errors
    assert result.signature_valid and result.content_matches and result.chain_valid
    assert not result.revoked and result.crl_checked
    assert result.signer == SubjectInfo(
        "Иванов Иван Иванович", "Министр финансов", "Министерство финансов Сахалинской области"
    )
    assert result.serial == device_cert.serial_number
    assert result.serial_hex == format(device_cert.serial_number, "X")
    assert result.signing_time is not None
    assert abs(result.signing_time - datetime.now(UTC)) < timedelta(minutes=1)
    assert result.chain == [
        device_cert.subject.rfc4514_string(),
        ca.issuing_certificate.subject.rfc4514_string(),
        ca.root_certificate.subject.rfc4514_string(),
    ]
    # Verification by digest only (large files are hashed while streaming).
    by_digest = verify_cms(
        cms_der, None, [ca.root_certificate], digest=hashlib.sha256(CONTENT).digest()
    )
    assert by_digest.valid


def test_cms_structure_is_detached_cades_bes(
    ca: CertificateAuthority,
    device_key: ec.EllipticCurvePrivateKey,
    device_cert: x509.Certificate,
    sign_raw: SignRaw,
) -> None:
    info = cms.ContentInfo.load(_device_sign(ca, device_key, device_cert, sign_raw))
    signed_data = info["content"]
    assert info["content_type"].native == "signed_data"
    assert signed_data["encap_content_info"]["content"].native is None
    signer_info = signed_data["signer_infos"][0]
    assert signer_info["signature_algorithm"]["algorithm"].dotted == "1.2.840.10045.4.3.2"
    assert signer_info["digest_algorithm"]["algorithm"].native == "sha256"
    types = {a["type"].native for a in signer_info["signed_attrs"]}
    assert types == {"content_type", "message_digest", "signing_time", "signing_certificate_v2"}
    subjects = {c.chosen.subject.native["common_name"] for c in signed_data["certificates"]}
    assert "Kabinet Issuing CA" in subjects and "Иванов Иван Иванович" in subjects


def test_altered_content_fails(
    ca: CertificateAuthority,
    device_key: ec.EllipticCurvePrivateKey,
    device_cert: x509.Certificate,
    sign_raw: SignRaw,
    openssl_verify: OpensslVerify,
) -> None:
    cms_der = _device_sign(ca, device_key, device_cert, sign_raw)
    altered = CONTENT.replace(b"12-", b"13-", 1)
    assert not openssl_verify(cms_der, altered)
    result = verify_cms(cms_der, altered, [ca.root_certificate])
    assert not result.content_matches and not result.valid
    assert result.signature_valid  # the attributes are intact; only the file changed


def test_tampered_signature_fails(
    ca: CertificateAuthority,
    device_key: ec.EllipticCurvePrivateKey,
    device_cert: x509.Certificate,
    sign_raw: SignRaw,
    openssl_verify: OpensslVerify,
) -> None:
    cms_der = bytearray(_device_sign(ca, device_key, device_cert, sign_raw))
    # Flip the low bit of the last seconds digit of the signing time (still a valid time).
    info = cms.ContentInfo.load(bytes(cms_der))
    attrs = info["content"]["signer_infos"][0]["signed_attrs"].dump()
    pos = bytes(cms_der).index(attrs) + attrs.index(b"\x17\x0d") + 2 + 11
    cms_der[pos] ^= 0x01
    assert not openssl_verify(bytes(cms_der), CONTENT)
    result = verify_cms(bytes(cms_der), CONTENT, [ca.root_certificate])
    assert not result.signature_valid and not result.valid


def test_revoked_certificate_reported(
    ca: CertificateAuthority,
    device_key: ec.EllipticCurvePrivateKey,
    device_cert: x509.Certificate,
    sign_raw: SignRaw,
) -> None:
    cms_der = _device_sign(ca, device_key, device_cert, sign_raw)
    entry = ca.revoke(device_cert.serial_number, x509.ReasonFlags.key_compromise)
    result = verify_cms(cms_der, CONTENT, [ca.root_certificate], ca.crl())
    assert result.revoked and result.crl_checked and not result.valid
    assert result.revoked_at == entry.revoked_at
    assert result.revocation_reason == "keyCompromise"
    assert result.signature_valid and result.content_matches and result.chain_valid
    # Without a CRL the library cannot know.
    assert not verify_cms(cms_der, CONTENT, [ca.root_certificate]).revoked


def test_crl_from_another_ca_is_not_trusted(
    ca: CertificateAuthority,
    device_key: ec.EllipticCurvePrivateKey,
    device_cert: x509.Certificate,
    sign_raw: SignRaw,
    tmp_path: Path,
) -> None:
    cms_der = _device_sign(ca, device_key, device_cert, sign_raw)
    other = CertificateAuthority.load_or_create(tmp_path)
    result = verify_cms(cms_der, CONTENT, [ca.root_certificate], other.crl())
    assert not result.crl_checked and not result.revoked


def test_untrusted_root(
    ca: CertificateAuthority,
    device_key: ec.EllipticCurvePrivateKey,
    device_cert: x509.Certificate,
    sign_raw: SignRaw,
    tmp_path: Path,
) -> None:
    cms_der = _device_sign(ca, device_key, device_cert, sign_raw)
    other = CertificateAuthority.load_or_create(tmp_path)
    result = verify_cms(cms_der, CONTENT, [other.root_certificate])
    assert not result.chain_valid and not result.valid
    assert result.signature_valid and result.content_matches


def test_wrong_key_signature_refused(
    ca: CertificateAuthority, device_cert: x509.Certificate, sign_raw: SignRaw
) -> None:
    to_be_signed = build_signed_attributes(device_cert, content=CONTENT)
    stranger = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidSignatureError):
        assemble_cms(to_be_signed, sign_raw(stranger, to_be_signed), device_cert, ca.chain)


def test_signature_over_other_bytes_refused(
    ca: CertificateAuthority,
    device_key: ec.EllipticCurvePrivateKey,
    device_cert: x509.Certificate,
    sign_raw: SignRaw,
) -> None:
    to_be_signed = build_signed_attributes(device_cert, content=CONTENT)
    other = build_signed_attributes(device_cert, content=b"another document")
    with pytest.raises(InvalidSignatureError):
        assemble_cms(to_be_signed, sign_raw(device_key, other), device_cert, ca.chain)
    # Signing the [0]-tagged form instead of the SET is a classic client bug; refused too.
    wrong_tag = b"\xa0" + to_be_signed[1:]
    with pytest.raises(InvalidSignatureError):
        assemble_cms(to_be_signed, sign_raw(device_key, wrong_tag), device_cert, ca.chain)
    with pytest.raises(InvalidSignatureError):
        assemble_cms(to_be_signed, b"\x00" * 10, device_cert, ca.chain)


def test_attributes_for_another_certificate_refused(
    ca: CertificateAuthority,
    device_key: ec.EllipticCurvePrivateKey,
    device_cert: x509.Certificate,
    device_spki: bytes,
    subject: SubjectInfo,
    sign_raw: SignRaw,
) -> None:
    # Same key re-certified: ESS signing-certificate-v2 must bind to the right certificate.
    other_cert = ca.certify_device_key(device_spki, subject)
    to_be_signed = build_signed_attributes(other_cert, content=CONTENT)
    with pytest.raises(InvalidSignatureError):
        assemble_cms(to_be_signed, sign_raw(device_key, to_be_signed), device_cert, ca.chain)


def test_malformed_cms(ca: CertificateAuthority) -> None:
    for junk in (b"", b"\x30\x03\x02\x01\x01", b"not der at all"):
        with pytest.raises(MalformedCmsError):
            verify_cms(junk, CONTENT, [ca.root_certificate])


def test_batch_of_100(
    ca: CertificateAuthority,
    device_key: ec.EllipticCurvePrivateKey,
    device_cert: x509.Certificate,
    sign_raw: SignRaw,
    openssl_verify: OpensslVerify,
) -> None:
    documents = [f"Документ {i}\n".encode() * (i + 1) for i in range(100)]
    to_be_signed = [
        build_signed_attributes(device_cert, digest=hashlib.sha256(doc).digest())
        for doc in documents
    ]
    signatures = [sign_raw(device_key, tbs) for tbs in to_be_signed]
    cms_list = [
        assemble_cms(tbs, sig, device_cert, ca.chain)
        for tbs, sig in zip(to_be_signed, signatures, strict=True)
    ]
    crl = ca.crl()
    for doc, cms_der in zip(documents, cms_list, strict=True):
        assert verify_cms(cms_der, doc, [ca.root_certificate], crl).valid
    assert openssl_verify(cms_list[0], documents[0])
    assert openssl_verify(cms_list[-1], documents[-1])
    # Swapped documents must not verify.
    assert not verify_cms(cms_list[0], documents[1], [ca.root_certificate]).content_matches


def test_server_side_signer_seam(
    ca: CertificateAuthority,
    device_key: ec.EllipticCurvePrivateKey,
    device_cert: x509.Certificate,
    openssl_verify: OpensslVerify,
) -> None:
    cms_der = sign_detached(
        PrivateKeySigner(device_key), device_cert, content=CONTENT, chain=ca.chain
    )
    assert openssl_verify(cms_der, CONTENT)
    assert verify_cms(cms_der, CONTENT, [ca.root_certificate]).valid


def test_stored_bad_signature_detected(
    ca: CertificateAuthority,
    device_cert: x509.Certificate,
    sign_raw: SignRaw,
    openssl_verify: OpensslVerify,
) -> None:
    to_be_signed = build_signed_attributes(device_cert, content=CONTENT)
    stranger = ec.generate_private_key(ec.SECP256R1())
    cms_der = assemble_cms(
        to_be_signed, sign_raw(stranger, to_be_signed), device_cert, ca.chain, verify=False
    )
    assert not openssl_verify(cms_der, CONTENT)
    result = verify_cms(cms_der, CONTENT, [ca.root_certificate])
    assert not result.signature_valid and result.content_matches and not result.valid


def test_algorithm_registry() -> None:
    assert algorithm_for_signature_oid("1.2.840.10045.4.3.2") is ECDSA_SHA256
    assert algorithm_for_signature_oid("sha256_ecdsa") is ECDSA_SHA256
    with pytest.raises(SigningError):
        algorithm_for_signature_oid("1.2.643.7.1.1.3.2")  # GOST: no provider registered

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from signing import CertificateAuthority, CertificateError, SubjectInfo
from signing.ca import ISSUING_KEY, ROOT_KEY


def test_created_once_and_reloaded(tmp_path: Path) -> None:
    directory = tmp_path / "nested" / "ca"
    first = CertificateAuthority.load_or_create(directory)
    for name in (ROOT_KEY, ISSUING_KEY):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    second = CertificateAuthority.load_or_create(directory)
    assert second.root_certificate == first.root_certificate
    assert second.issuing_certificate == first.issuing_certificate
    assert b"BEGIN CERTIFICATE" in second.root_pem()
    assert second.chain_pem().count(b"BEGIN CERTIFICATE") == 2


def test_encrypted_keys(tmp_path: Path) -> None:
    CertificateAuthority.load_or_create(tmp_path, passphrase=b"secret")
    assert b"ENCRYPTED" in (tmp_path / ROOT_KEY).read_bytes()
    with pytest.raises((TypeError, ValueError)):
        CertificateAuthority.load_or_create(tmp_path)
    CertificateAuthority.load_or_create(tmp_path, passphrase=b"secret")


def test_ca_hierarchy(ca: CertificateAuthority) -> None:
    root, issuing = ca.root_certificate, ca.issuing_certificate
    issuing.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(issuing.public_key(), ec.EllipticCurvePublicKey)
    bc = issuing.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca and bc.path_length == 0


def test_device_certificate_fields(
    ca: CertificateAuthority, device_cert: x509.Certificate, device_spki: bytes
) -> None:
    subject = device_cert.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Иванов Иван Иванович"
    assert subject.get_attributes_for_oid(NameOID.TITLE)[0].value == "Министр финансов"
    assert SubjectInfo.from_name(subject).organization.startswith("Министерство")
    assert subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "RU"
    assert SubjectInfo.from_name(subject).position_title == "Министр финансов"
    device_cert.verify_directly_issued_by(ca.issuing_certificate)
    ku = device_cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.content_commitment and not ku.key_cert_sign
    with pytest.raises(x509.ExtensionNotFound):
        device_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert not device_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    pub = device_cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert pub == device_spki
    days = (device_cert.not_valid_after_utc - device_cert.not_valid_before_utc).days
    assert 365 <= days <= 366


def test_refuses_other_keys_and_validity(ca: CertificateAuthority, subject: SubjectInfo) -> None:
    rsa_spki = (
        rsa.generate_private_key(65537, 2048)
        .public_key()
        .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    p384 = (
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    for spki in (rsa_spki, p384, b"\x30\x00"):
        with pytest.raises(CertificateError):
            ca.certify_device_key(spki, subject)
    p256 = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(CertificateError):
        ca.certify_device_key(p256, subject, validity_days=365 * 50)


def test_revoke_and_crl(tmp_path: Path, device_spki: bytes, subject: SubjectInfo) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path, crl_url="https://kabinet.example/crl")
    cert = ca.certify_device_key(device_spki, subject)
    dp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert dp[0].full_name is not None

    empty = x509.load_der_x509_crl(ca.crl())
    assert len(empty) == 0
    assert empty.is_signature_valid(ca.issuing_certificate.public_key())  # type: ignore[arg-type]

    entry = ca.revoke(cert.serial_number, "keyCompromise")
    assert ca.revoke(cert.serial_number).revoked_at == entry.revoked_at  # idempotent
    ca.revoke(12345)
    # A fresh instance reads the same revocation list (another worker process).
    crl = x509.load_der_x509_crl(CertificateAuthority.load_or_create(tmp_path).crl())
    assert crl.issuer == ca.issuing_certificate.subject
    revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    assert revoked is not None
    reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.key_compromise
    assert crl.get_revoked_certificate_by_serial_number(12345) is not None
    assert len(crl) == 2

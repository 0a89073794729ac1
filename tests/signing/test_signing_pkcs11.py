"""Cloud keys through a real SoftHSM2 token."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from signing import (
    CertificateAuthority,
    CloudKey,
    Signer,
    SubjectInfo,
    TokenError,
    WrongPinError,
    assemble_cms,
    build_signed_attributes,
    sign_detached,
    verify_cms,
    verify_signature,
)

NewCloudKey = Callable[[str], CloudKey]
CONTENT = "Распоряжение о проведении совещания".encode() * 200


def test_cloud_key_signs_verifiable_cms(
    ca: CertificateAuthority,
    new_cloud_key: NewCloudKey,
    subject: SubjectInfo,
    openssl_verify: Callable[[bytes, bytes], bool],
) -> None:
    key = new_cloud_key("4321")
    cert = ca.certify_device_key(key.public_key_spki("4321"), subject)

    # Request/complete split as in the API: to_be_signed first, then {pin}.
    to_be_signed = build_signed_attributes(cert, content=CONTENT)
    signature = key.sign(to_be_signed, "4321")
    assert signature[0] == 0x30  # DER
    assert verify_signature(key.public_key_spki("4321"), to_be_signed, signature)
    cms_der = assemble_cms(to_be_signed, signature, cert, ca.chain)
    assert openssl_verify(cms_der, CONTENT)
    assert verify_cms(cms_der, CONTENT, [ca.root_certificate], ca.crl()).valid

    # The same key through the Signer seam.
    signer = key.signer("4321")
    assert isinstance(signer, Signer)
    cms2 = sign_detached(signer, cert, content=CONTENT, chain=ca.chain)
    assert openssl_verify(cms2, CONTENT)


def test_wrong_pin_refused(new_cloud_key: NewCloudKey) -> None:
    key = new_cloud_key("1111")
    with pytest.raises(WrongPinError):
        key.sign(b"\x31\x00", "2222")
    # Per-user tokens: one user's PIN does not open another user's key.
    other = new_cloud_key("3333")
    with pytest.raises(WrongPinError):
        other.sign(b"\x31\x00", "1111")


def test_missing_token_and_key(softhsm: str, new_cloud_key: NewCloudKey) -> None:
    with pytest.raises(TokenError):
        CloudKey(softhsm, "no-such-token", "k").sign(b"x", "1234")
    key = new_cloud_key("5555")
    with pytest.raises(TokenError):
        CloudKey(softhsm, key.token_label, "other-label").sign(b"x", "5555")
    with pytest.raises(TokenError):
        CloudKey.generate(softhsm, key.token_label, key.key_label, "5555")


def test_private_key_not_extractable(softhsm: str, new_cloud_key: NewCloudKey) -> None:
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    key = new_cloud_key("7777")
    token = pkcs11.lib(softhsm).get_token(token_label=key.token_label)
    with token.open(user_pin="7777") as session:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=key.key_label)
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.EXTRACTABLE] is False

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from signing import (
    CertificateError,
    InvalidSignatureError,
    der_to_raw,
    load_ec_public_key,
    raw_to_der,
    to_der_signature,
    verify_signature,
)

SignRaw = Callable[[ec.EllipticCurvePrivateKey, bytes], bytes]


def test_raw_der_round_trip(device_key: ec.EllipticCurvePrivateKey, sign_raw: SignRaw) -> None:
    raw = sign_raw(device_key, b"data")
    assert len(raw) == 64
    der = raw_to_der(raw)
    r, s = decode_dss_signature(der)
    assert raw == r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert der_to_raw(der) == raw


def test_small_components_keep_fixed_width() -> None:
    raw = (1).to_bytes(32, "big") + (2).to_bytes(32, "big")
    assert der_to_raw(raw_to_der(raw)) == raw


def test_to_der_accepts_both_forms(
    device_key: ec.EllipticCurvePrivateKey, sign_raw: SignRaw
) -> None:
    raw = sign_raw(device_key, b"x")
    der = raw_to_der(raw)
    assert to_der_signature(raw) == der
    assert to_der_signature(der) == der


@pytest.mark.parametrize("bad", [b"", b"\x00" * 63, b"\x00" * 64, b"\x30\x03\x02\x01\x01"])
def test_malformed_signatures_rejected(bad: bytes) -> None:
    with pytest.raises(InvalidSignatureError):
        to_der_signature(bad)


def test_verify_signature(
    device_key: ec.EllipticCurvePrivateKey, device_spki: bytes, sign_raw: SignRaw
) -> None:
    data = b"\x31\x00signed attributes"
    raw = sign_raw(device_key, data)
    assert verify_signature(device_spki, data, raw)
    assert verify_signature(device_key.public_key(), data, raw_to_der(raw))
    assert not verify_signature(device_spki, data + b"!", raw)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert not verify_signature(other, data, raw)
    assert not verify_signature(device_spki, data, b"garbage")


def test_other_curves_refused() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    sig = key.sign(b"x", ec.ECDSA(hashes.SHA256()))
    with pytest.raises(CertificateError):
        verify_signature(key.public_key(), b"x", sig)
    with pytest.raises(CertificateError):
        load_ec_public_key(b"not a key")

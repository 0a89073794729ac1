"""VAPID keys on disk and the RFC 8292 Authorization header."""

from __future__ import annotations

import stat
import threading
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from push import (
    VapidError,
    VapidKeys,
    VapidSigner,
    b64url_decode,
    endpoint_origin,
    vapid_authorization,
)
from push.vapid import VAPID_KEY_FILENAME


def _parse(header: str) -> tuple[dict[str, object], str]:
    scheme, _, params = header.partition(" ")
    assert scheme == "vapid"
    fields = dict(p.strip().split("=", 1) for p in params.split(","))
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(fields["k"]))
    claims = jwt.decode(fields["t"], key, algorithms=["ES256"], options={"verify_aud": False})
    return claims, fields["k"]


@pytest.mark.parametrize(
    ("endpoint", "origin"),
    [
        ("https://fcm.googleapis.com/fcm/send/abc", "https://fcm.googleapis.com"),
        ("https://fcm.googleapis.com:443/fcm/send/abc", "https://fcm.googleapis.com"),
        ("https://push.example:8443/p/1?x=y", "https://push.example:8443"),
        ("HTTP://127.0.0.1:8080/push/x", "http://127.0.0.1:8080"),
        ("http://localhost:80/x", "http://localhost"),
        ("https://[::1]:9443/x", "https://[::1]:9443"),
    ],
)
def test_endpoint_origin_keeps_non_default_port(endpoint: str, origin: str) -> None:
    assert endpoint_origin(endpoint) == origin


def test_authorization_header_claims(vapid_keys: VapidKeys) -> None:
    now = time.time()
    header = vapid_authorization(
        vapid_keys, "https://push.example:8443/p/1", "https://kabinet.example/contact", now=now
    )
    claims, k = _parse(header)
    assert k == vapid_keys.public_key_b64
    assert claims["aud"] == "https://push.example:8443"
    assert claims["sub"] == "https://kabinet.example/contact"
    assert now < float(claims["exp"]) <= now + 24 * 3600  # type: ignore[arg-type]


def test_public_key_is_uncompressed_point(vapid_keys: VapidKeys) -> None:
    raw = b64url_decode(vapid_keys.public_key_b64)
    assert len(raw) == 65 and raw[0] == 4
    assert "=" not in vapid_keys.public_key_b64


@pytest.mark.parametrize("subject", ["admin@kabinet.example", "http://x.example", "mailto:"])
def test_subject_must_be_mailto_or_https(vapid_keys: VapidKeys, subject: str) -> None:
    with pytest.raises(VapidError):
        vapid_authorization(vapid_keys, "https://fcm.googleapis.com/x", subject)


def test_expiry_capped_at_24h(vapid_keys: VapidKeys) -> None:
    with pytest.raises(VapidError):
        vapid_authorization(vapid_keys, "https://a.example/x", "mailto:a@b", expires_in=86401)
    with pytest.raises(VapidError):
        VapidSigner(vapid_keys, "mailto:a@b", expires_in=0)


def test_load_or_create_persists_with_0600(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    first = VapidKeys.load_or_create(folder)
    path = folder / VAPID_KEY_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert VapidKeys.load_or_create(folder).public_key_b64 == first.public_key_b64
    assert list(folder.iterdir()) == [path]  # no temporary files left behind


def test_load_or_create_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    results: list[str] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        results.append(VapidKeys.load_or_create(tmp_path).public_key_b64)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1
    assert VapidKeys.load_or_create(tmp_path).public_key_b64 == results[0]


def test_from_pem_rejects_garbage_and_other_curves() -> None:
    with pytest.raises(VapidError):
        VapidKeys.from_pem(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(VapidError):
        VapidKeys(ec.generate_private_key(ec.SECP384R1()))


def test_signer_caches_per_origin_until_half_life(vapid_keys: VapidKeys) -> None:
    signer = VapidSigner(vapid_keys, "mailto:a@b.example", expires_in=3600)
    a1 = signer.authorization("https://fcm.googleapis.com/fcm/send/1", now=1000.0)
    a2 = signer.authorization("https://fcm.googleapis.com/fcm/send/2", now=2000.0)
    other = signer.authorization("https://web.push.apple.com/x", now=2000.0)
    later = signer.authorization("https://fcm.googleapis.com/fcm/send/3", now=1000.0 + 1801)
    assert a1 == a2 != later
    assert _parse_unverified(other)["aud"] == "https://web.push.apple.com"


def _parse_unverified(header: str) -> dict[str, object]:
    token = header.split("t=", 1)[1].split(",", 1)[0]
    return jwt.decode(token, options={"verify_signature": False})

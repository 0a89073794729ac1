"""Fixtures for the signing tests: a CA in a temp dir, a WebCrypto-like device key, SoftHSM2.

Nothing here imports ``backend``: the signing library is tested on its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from signing import CertificateAuthority, CloudKey, SubjectInfo, der_to_raw, init_softhsm_token
from signing.pkcs11_key import SOFTHSM2_MODULE

SUBJECT = SubjectInfo(
    full_name="Иванов Иван Иванович",
    position_title="Министр финансов",
    organization="Министерство финансов Сахалинской области",
)


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(tmp_path_factory.mktemp("ca") / "ca")


@pytest.fixture(scope="session")
def ca_file(ca: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root certificate only, as ``openssl cms -verify -CAfile`` is given in the API docs."""
    path = tmp_path_factory.mktemp("cafile") / "ca.pem"
    path.write_bytes(ca.root_pem())
    return path


def spki_of(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def webcrypto_sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """What ``crypto.subtle.sign({name: "ECDSA", hash: "SHA-256"}, key, data)`` returns: r‖s."""
    return der_to_raw(key.sign(data, ec.ECDSA(hashes.SHA256())))


@pytest.fixture
def subject() -> SubjectInfo:
    return SUBJECT


@pytest.fixture
def device_key() -> ec.EllipticCurvePrivateKey:
    """A P-256 key generated as WebCrypto does (generateKey ECDSA P-256)."""
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def device_spki(device_key: ec.EllipticCurvePrivateKey) -> bytes:
    """``crypto.subtle.exportKey("spki", publicKey)``."""
    return spki_of(device_key)


@pytest.fixture
def sign_raw() -> Callable[[ec.EllipticCurvePrivateKey, bytes], bytes]:
    return webcrypto_sign


@pytest.fixture
def device_cert(ca: CertificateAuthority, device_spki: bytes) -> x509.Certificate:
    return ca.certify_device_key(device_spki, SUBJECT, validity_days=365)


@pytest.fixture
def openssl_verify(ca_file: Path, tmp_path: Path) -> Callable[[bytes, bytes], bool]:
    """Run the exact command from API.md; the callable returns True when OpenSSL accepts."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl binary not installed")

    def run(cms_der: bytes, content: bytes) -> bool:
        sig = tmp_path / "sig.p7s"
        data = tmp_path / "file"
        sig.write_bytes(cms_der)
        data.write_bytes(content)
        cmd = ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any"]
        cmd += ["-in", str(sig), "-content", str(data), "-CAfile", str(ca_file)]
        cmd += ["-out", os.devnull]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return result.returncode == 0 and "Verification successful" in result.stderr

    return run


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private SoftHSM2 token directory; SOFTHSM2_CONF is set for the whole session.

    SoftHSM reads its configuration when the module is first initialised and python-pkcs11
    keeps the module loaded per process, so one directory serves every PKCS#11 test.
    """
    if shutil.which("softhsm2-util") is None or not Path(SOFTHSM2_MODULE).exists():
        pytest.skip("softhsm2 is not installed (apt-get install -y softhsm2)")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\n"
        "objectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        yield SOFTHSM2_MODULE
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous


@pytest.fixture
def new_cloud_key(softhsm: str) -> Callable[[str], CloudKey]:
    """Make a fresh per-user token (as ops would) and generate a key in it with ``pin``."""

    def make(pin: str) -> CloudKey:
        token = f"user-{uuid.uuid4().hex[:12]}"
        init_softhsm_token(token, so_pin="so-pin-123456", user_pin=pin)
        return CloudKey.generate(softhsm, token, "signing-key", pin)

    return make

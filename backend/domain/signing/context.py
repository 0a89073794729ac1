"""What signing needs per process: the internal CA and the PKCS#11 token store of cloud keys.

Built once in `build_services` (the CA is generated into `$KABINET_DATA_DIR/keys/ca/` on the
first start; its own file lock keeps two workers from making two CAs).

SoftHSM2 reads its configuration from `SOFTHSM2_CONF` when the PKCS#11 module is initialised,
and a process loads the module once, so the token directory is a per-process choice, not a
per-app one. Kabinet writes `$KABINET_DATA_DIR/keys/softhsm/softhsm2.conf` and points
`SOFTHSM2_CONF` at it on the first use of a cloud key, unless the variable is already set:
then the operator's configuration (a production HSM, a shared token directory) wins and
tokens are created wherever it points. Every token operation of the process goes through the
same variable, so `softhsm2-util` (token creation) and the loaded module always agree.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from signing import (
    CertificateAuthority,
    CloudKey,
    SigningError,
    TokenError,
    init_softhsm_token,
)

SOFTHSM_CONF_ENV = "SOFTHSM2_CONF"
#: One key per token; the token label (PKCS#11 allows 32 characters) names the user's key.
KEY_LABEL = "signing-key"


class CloudTokens:
    """Per-user PKCS#11 tokens holding cloud keys; every method blocks (run in a thread)."""

    def __init__(self, directory: Path, module: str) -> None:
        self.directory = directory
        self.module = module
        self._lock = threading.Lock()
        self._configured = False

    @property
    def conf_path(self) -> Path:
        return self.directory / "softhsm2.conf"

    def available(self) -> bool:
        return Path(self.module).exists() and shutil.which("softhsm2-util") is not None

    def _configure(self) -> None:
        with self._lock:
            if self._configured:
                return
            if SOFTHSM_CONF_ENV not in os.environ:
                tokens = self.directory / "tokens"
                tokens.mkdir(mode=0o700, parents=True, exist_ok=True)
                if not self.conf_path.exists():
                    self.conf_path.write_text(
                        f"directories.tokendir = {tokens}\n"
                        "objectstore.backend = file\n"
                        "log.level = ERROR\n"
                        "slots.removable = false\n"
                    )
                    self.conf_path.chmod(0o600)
                os.environ[SOFTHSM_CONF_ENV] = str(self.conf_path)
            self._configured = True

    def enrol(self, token_label: str, pin: str) -> bytes:
        """Create the user's token with `pin`, generate a P-256 key in it, return its SPKI.

        The security officer PIN is random and not kept: nobody, the server included, can
        reset the user's PIN, so a forgotten PIN means revoking the key and enrolling anew.
        """
        if not self.available():
            raise TokenError(f"PKCS#11 module {self.module} or softhsm2-util is not installed")
        self._configure()
        init_softhsm_token(
            token_label, so_pin=secrets.token_hex(16), user_pin=pin, env=dict(os.environ)
        )
        key = CloudKey.generate(self.module, token_label, KEY_LABEL, pin)
        return key.public_key_spki(pin)

    def sign(self, token_label: str, key_label: str, to_be_signed: bytes, pin: str) -> bytes:
        """Sign with the user's cloud key unlocked by `pin`; DER ECDSA signature."""
        self._configure()
        return CloudKey(self.module, token_label, key_label).sign(to_be_signed, pin)


@dataclass
class SigningContext:
    ca: CertificateAuthority
    tokens: CloudTokens
    request_ttl_seconds: int
    cert_days: int


def build_signing_context(
    ca_dir: Path,
    softhsm_dir: Path,
    *,
    organization: str,
    pkcs11_module: str,
    request_ttl_seconds: int,
    cert_days: int,
    ca_passphrase: bytes | None = None,
) -> SigningContext:
    try:
        ca = CertificateAuthority.load_or_create(
            ca_dir, organization=organization, passphrase=ca_passphrase
        )
    except (OSError, ValueError, SigningError) as exc:
        raise RuntimeError(f"cannot load or create the signing CA in {ca_dir}: {exc}") from exc
    return SigningContext(
        ca=ca,
        tokens=CloudTokens(softhsm_dir, pkcs11_module),
        request_ttl_seconds=request_ttl_seconds,
        cert_days=cert_days,
    )

"""The internal certification authority: a root, an issuing CA, device certificates, a CRL.

Both CA keys are ECDSA P-256 and live as PEM files in one directory (keys 0600). The root only
signs the issuing CA; the issuing CA signs device certificates and the CRL, so the root key
can later be moved offline without changing anything that verifiers see.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from signing.ecdsa import load_ec_public_key
from signing.errors import CertificateError, SigningError
from signing.subject import SubjectInfo

ROOT_KEY = "root.key.pem"
ROOT_CERT = "root.cert.pem"
ISSUING_KEY = "issuing.key.pem"
ISSUING_CERT = "issuing.cert.pem"
REVOKED = "revoked.json"
_LOCK = ".lock"

ROOT_VALIDITY_DAYS = 20 * 365
ISSUING_VALIDITY_DAYS = 10 * 365
#: How long a CRL is fresh; verifiers refetch after this.
CRL_VALIDITY = timedelta(days=7)
#: Certificates start slightly in the past so a device with a lagging clock accepts them.
_BACKDATE = timedelta(minutes=5)


@dataclass(frozen=True)
class RevokedEntry:
    """One revoked certificate as recorded by the CA."""

    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags


class CertificateAuthority:
    """Root + issuing CA persisted in ``directory``; see :meth:`load_or_create`."""

    def __init__(
        self,
        directory: Path,
        root_key: ec.EllipticCurvePrivateKey,
        root_certificate: x509.Certificate,
        issuing_key: ec.EllipticCurvePrivateKey,
        issuing_certificate: x509.Certificate,
        crl_url: str | None = None,
    ) -> None:
        """Use :meth:`load_or_create`; this constructor takes already loaded material."""
        self.directory = directory
        self._root_key = root_key
        self.root_certificate = root_certificate
        self._issuing_key = issuing_key
        self.issuing_certificate = issuing_certificate
        self.crl_url = crl_url

    @classmethod
    def load_or_create(
        cls,
        directory: Path | str,
        *,
        organization: str = "Kabinet",
        country: str = "RU",
        passphrase: bytes | None = None,
        crl_url: str | None = None,
    ) -> CertificateAuthority:
        """Load the CA from ``directory``, generating root and issuing CA on first use.

        The directory is created with mode 0700 and keys are written 0600. With
        ``passphrase`` the keys are stored encrypted. Generation takes a file lock so two
        workers starting at once do not create two different CAs.
        """
        path = Path(directory)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _locked(path):
            if not (path / ISSUING_CERT).exists():
                _generate(path, organization, country, passphrase)
            root_key = _load_key(path / ROOT_KEY, passphrase)
            issuing_key = _load_key(path / ISSUING_KEY, passphrase)
            root_cert = x509.load_pem_x509_certificate((path / ROOT_CERT).read_bytes())
            issuing_cert = x509.load_pem_x509_certificate((path / ISSUING_CERT).read_bytes())
        return cls(path, root_key, root_cert, issuing_key, issuing_cert, crl_url)

    @property
    def chain(self) -> list[x509.Certificate]:
        """CA certificates to carry in a CMS: issuing CA, then root."""
        return [self.issuing_certificate, self.root_certificate]

    def root_pem(self) -> bytes:
        """The root certificate in PEM, for ``GET /signing/ca`` and ``openssl -CAfile``."""
        return self.root_certificate.public_bytes(serialization.Encoding.PEM)

    def chain_pem(self) -> bytes:
        """Issuing CA and root certificates concatenated in PEM."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    def certify_device_key(
        self,
        spki_der: bytes,
        subject: SubjectInfo,
        validity_days: int = 365,
    ) -> x509.Certificate:
        """Issue a signing certificate for a P-256 public key (SubjectPublicKeyInfo DER).

        There is no CSR: a WebCrypto key cannot sign a PKCS#10 request without extra code on
        the tablet, and the server authenticates the user who enrols the key instead. Key
        usage is digitalSignature + nonRepudiation; there is no extended key usage, so
        ``openssl cms -verify -purpose any`` and other purposes do not reject it.
        """
        if validity_days <= 0:
            raise ValueError("validity_days must be positive")
        public_key = load_ec_public_key(spki_der)
        now = datetime.now(UTC)
        not_after = now + timedelta(days=validity_days)
        if not_after > self.issuing_certificate.not_valid_after_utc:
            # A certificate outliving its issuer fails path validation later; refuse now.
            raise CertificateError("requested validity exceeds the issuing CA certificate")
        issuer_ski = self.issuing_certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject.to_name())
            .issuer_name(self.issuing_certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
                critical=False,
            )
        )
        if self.crl_url:
            builder = builder.add_extension(
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            full_name=[x509.UniformResourceIdentifier(self.crl_url)],
                            relative_name=None,
                            reasons=None,
                            crl_issuer=None,
                        )
                    ]
                ),
                critical=False,
            )
        return builder.sign(self._issuing_key, hashes.SHA256())

    def revoke(
        self,
        serial: int,
        reason: x509.ReasonFlags | str = x509.ReasonFlags.unspecified,
        *,
        revoked_at: datetime | None = None,
    ) -> RevokedEntry:
        """Record ``serial`` as revoked (idempotent: the first revocation time is kept).

        ``reason`` is a :class:`x509.ReasonFlags` or its value, e.g. ``"keyCompromise"``.
        The record is a JSON file next to the keys, updated under a file lock, so every
        worker's :meth:`crl` sees it.
        """
        flag = x509.ReasonFlags(reason) if isinstance(reason, str) else reason
        when = (revoked_at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        with _locked(self.directory):
            entries = self._read_revoked()
            existing = entries.get(serial)
            if existing is not None:
                return existing
            entry = RevokedEntry(serial=serial, revoked_at=when, reason=flag)
            entries[serial] = entry
            self._write_revoked(entries)
        return entry

    def revoked(self) -> list[RevokedEntry]:
        """All revoked certificates, oldest first."""
        with _locked(self.directory):
            entries = self._read_revoked()
        return sorted(entries.values(), key=lambda e: (e.revoked_at, e.serial))

    def crl(self, *, next_update: timedelta = CRL_VALIDITY) -> bytes:
        """Return a fresh CRL (DER) signed by the issuing CA listing every revoked serial."""
        now = datetime.now(UTC)
        entries = self.revoked()
        issuer_ski = self.issuing_certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.issuing_certificate.subject)
            .last_update(now)
            .next_update(now + next_update)
            # Monotonic CRL number without extra state: seconds since the epoch.
            .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
                critical=False,
            )
        )
        for entry in entries:
            revoked = x509.RevokedCertificateBuilder().serial_number(entry.serial)
            revoked = revoked.revocation_date(entry.revoked_at)
            if entry.reason != x509.ReasonFlags.unspecified:
                # RFC 5280 §5.3.1: the reason code should be absent rather than unspecified.
                revoked = revoked.add_extension(x509.CRLReason(entry.reason), critical=False)
            builder = builder.add_revoked_certificate(revoked.build())
        crl = builder.sign(self._issuing_key, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.DER)

    def _read_revoked(self) -> dict[int, RevokedEntry]:
        path = self.directory / REVOKED
        if not path.exists():
            return {}
        raw = json.loads(path.read_text("utf-8"))
        return {
            int(item["serial"]): RevokedEntry(
                serial=int(item["serial"]),
                revoked_at=datetime.fromisoformat(item["revoked_at"]),
                reason=x509.ReasonFlags(item["reason"]),
            )
            for item in raw
        }

    def _write_revoked(self, entries: dict[int, RevokedEntry]) -> None:
        data = [
            {
                # Serials are up to 159 bits; a JSON number would lose precision in other
                # readers, so it is stored as a decimal string.
                "serial": str(e.serial),
                "revoked_at": e.revoked_at.isoformat(),
                "reason": e.reason.value,
            }
            for e in entries.values()
        ]
        _write_atomic(self.directory / REVOKED, json.dumps(data, indent=1).encode(), 0o600)


def _ca_name(common_name: str, organization: str, country: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _generate(path: Path, organization: str, country: str, passphrase: bytes | None) -> None:
    now = datetime.now(UTC) - _BACKDATE
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _ca_name(f"{organization} Root CA", organization, country)
    root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=ROOT_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(root_ski, critical=False)
        .sign(root_key, hashes.SHA256())
    )
    issuing_key = ec.generate_private_key(ec.SECP256R1())
    issuing = (
        x509.CertificateBuilder()
        .subject_name(_ca_name(f"{organization} Issuing CA", organization, country))
        .issuer_name(root_name)
        .public_key(issuing_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=ISSUING_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(issuing_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski),
            critical=False,
        )
        .sign(root_key, hashes.SHA256())
    )
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    for name, key in ((ROOT_KEY, root_key), (ISSUING_KEY, issuing_key)):
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        _write_atomic(path / name, pem, 0o600)
    pem_enc = serialization.Encoding.PEM
    _write_atomic(path / ROOT_CERT, root.public_bytes(pem_enc), 0o644)
    # The issuing certificate is written last: its presence marks a complete CA.
    _write_atomic(path / ISSUING_CERT, issuing.public_bytes(pem_enc), 0o644)


def _load_key(path: Path, passphrase: bytes | None) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SigningError(f"{path} does not hold an EC private key")
    return key


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write via a temp file created with ``mode`` so a key is never briefly world-readable."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, mode)  # os.open's mode is filtered by umask; be explicit.
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    fd = os.open(directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

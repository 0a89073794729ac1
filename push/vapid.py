"""VAPID (RFC 8292): the application server's P-256 key pair and its signed JWT.

The JWT is built here with pyjwt rather than taken from ``webpush.vapid.VAPID``: webpush 1.0.6
sets ``aud`` to ``scheme://host`` (dropping a non-default port, so a push service on
``:8443`` rejects the token) and always prefixes ``sub`` with ``mailto:`` (so an ``https:``
contact is impossible). Both are cheap to do correctly ourselves.
"""

from __future__ import annotations

import base64
import contextlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "MAX_VAPID_EXPIRY_SECONDS",
    "VAPID_KEY_FILENAME",
    "VapidError",
    "VapidKeys",
    "VapidSigner",
    "b64url_decode",
    "b64url_encode",
    "endpoint_origin",
    "vapid_authorization",
]

VAPID_KEY_FILENAME = "vapid_private_key.pem"
# RFC 8292 §2: "exp" MUST NOT be more than 24 hours from the time of the request.
MAX_VAPID_EXPIRY_SECONDS = 24 * 60 * 60
# 12 h leaves room for our clock running ahead of the push service's clock.
DEFAULT_VAPID_EXPIRY_SECONDS = 12 * 60 * 60

_DEFAULT_PORTS = {"https": 443, "http": 80}


class VapidError(ValueError):
    """A VAPID key, contact or endpoint cannot be used."""


def b64url_encode(data: bytes) -> str:
    """Encode bytes as unpadded base64url, the form Web Push uses for keys and secrets."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding (browsers send it unpadded).

    Raises ``ValueError`` (``binascii.Error``) on characters outside the alphabet.
    """
    # Some clients send standard base64; accept both alphabets since the bytes are the same.
    text = text.strip().replace("+", "-").replace("/", "_").rstrip("=")
    # validate=True: the default silently skips stray characters, accepting garbage keys.
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def endpoint_origin(endpoint: str) -> str:
    """Return the ASCII origin (RFC 6454) of a push endpoint: ``scheme://host[:port]``.

    The port is kept unless it is the scheme's default, which is what the push service
    compares the VAPID ``aud`` claim against.
    """
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError as exc:
        raise VapidError(f"invalid endpoint URL: {exc}") from None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        raise VapidError("endpoint must be an absolute http(s) URL")
    if ":" in host:  # IPv6 literal: urlsplit strips the brackets, the origin needs them
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


def _check_subject(subject: str) -> str:
    # RFC 8292 §2.1: the contact SHOULD be a mailto: or https: URI; push services (Mozilla)
    # reject anything else, so fail at configuration time rather than on every send.
    if subject.startswith("mailto:") and "@" in subject:
        return subject
    if subject.startswith("https://") and len(subject) > len("https://"):
        return subject
    raise VapidError("VAPID subject must be a mailto: address or an https: URL")


@dataclass(frozen=True, slots=True)
class VapidKeys:
    """The application server's ECDSA P-256 key pair."""

    private_key: ec.EllipticCurvePrivateKey

    def __post_init__(self) -> None:
        if not isinstance(self.private_key.curve, ec.SECP256R1):
            raise VapidError("VAPID key must be on the P-256 curve")

    @classmethod
    def generate(cls) -> VapidKeys:
        """Generate a fresh key pair."""
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, pem: bytes) -> VapidKeys:
        """Load an unencrypted PEM private key (PKCS#8 or SEC1)."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise VapidError(f"cannot read VAPID private key: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise VapidError("VAPID private key is not an EC key")
        return cls(key)

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public_key_bytes(self) -> bytes:
        """The public key as a 65-byte uncompressed point."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    @property
    def public_key_b64(self) -> str:
        """The public key as base64url: the browser's ``applicationServerKey`` and ``k=``."""
        return b64url_encode(self.public_key_bytes)

    @classmethod
    def load_or_create(cls, directory: str | os.PathLike[str]) -> VapidKeys:
        """Load ``<directory>/vapid_private_key.pem``, creating it (mode 0600) on first use.

        Creation is atomic: the key is written to a temporary file and hard-linked into
        place, so several processes starting at once agree on one key (a second key would
        silently break every subscription made against the first).
        """
        folder = Path(directory)
        path = folder / VAPID_KEY_FILENAME
        if path.exists():
            return cls.from_pem(path.read_bytes())
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        keys = cls.generate()
        tmp = folder / f".{VAPID_KEY_FILENAME}.{os.getpid()}.{threading.get_ident()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)  # the umask must not widen or narrow it
            os.write(fd, keys.private_pem())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return cls.from_pem(path.read_bytes())  # another process won the race
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return keys


def vapid_authorization(
    keys: VapidKeys,
    endpoint: str,
    subject: str,
    *,
    expires_in: int = DEFAULT_VAPID_EXPIRY_SECONDS,
    now: float | None = None,
) -> str:
    """Build ``Authorization: vapid t=<jwt>, k=<public key>`` for a push endpoint.

    ``aud`` is the endpoint's origin including a non-default port, ``exp`` is ``now +
    expires_in`` (at most 24 h), ``sub`` is the ``mailto:``/``https:`` contact.
    """
    if not 0 < expires_in <= MAX_VAPID_EXPIRY_SECONDS:
        raise VapidError("VAPID expiry must be within (0, 24h]")
    issued = time.time() if now is None else now
    claims = {
        "aud": endpoint_origin(endpoint),
        "exp": int(issued) + expires_in,
        "sub": _check_subject(subject),
    }
    token = jwt.encode(claims, keys.private_key, algorithm="ES256", headers={"typ": "JWT"})
    return f"vapid t={token}, k={keys.public_key_b64}"


class VapidSigner:
    """Signs VAPID headers and reuses each one per push-service origin until half-expired.

    Almost all endpoints share a handful of origins (FCM, Mozilla, Apple, WNS), so caching
    saves an ECDSA signature per message during bursts. Safe to share between tasks.
    """

    def __init__(
        self,
        keys: VapidKeys,
        subject: str,
        *,
        expires_in: int = DEFAULT_VAPID_EXPIRY_SECONDS,
    ) -> None:
        if not 0 < expires_in <= MAX_VAPID_EXPIRY_SECONDS:
            raise VapidError("VAPID expiry must be within (0, 24h]")
        self.keys = keys
        self.subject = _check_subject(subject)
        self.expires_in = expires_in
        self._cache: dict[str, tuple[float, str]] = {}

    def authorization(self, endpoint: str, *, now: float | None = None) -> str:
        """Return the ``Authorization`` header value for ``endpoint``."""
        current = time.time() if now is None else now
        origin = endpoint_origin(endpoint)
        cached = self._cache.get(origin)
        if cached is not None and cached[0] > current:
            return cached[1]
        header = vapid_authorization(
            self.keys, origin, self.subject, expires_in=self.expires_in, now=current
        )
        if len(self._cache) >= 1024:  # WNS has many hosts; keep the cache bounded
            self._cache.clear()
        # Refresh at half-life so a token never reaches a service close to its expiry.
        self._cache[origin] = (current + self.expires_in / 2, header)
        return header

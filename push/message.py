"""Push messages: the notification payload, its RFC 8291 encryption and RFC 8030 headers.

Encryption is done with ``cryptography`` rather than ``webpush``: webpush 1.0.6 only exposes
encryption through ``WebPush.get()``, which also signs a VAPID token we cannot use (its
``aud`` drops the port), keeps ``ttl`` as mutable instance state (``ttl=0`` silently reuses
the previous value), does not bound the payload size and offers no decryption for tests.
The code below is the RFC's own recipe and is checked against its Appendix A vector and
against webpush's output in the tests.
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
import struct
from typing import Final

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from push.vapid import b64url_decode, b64url_encode

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "MAX_PLAINTEXT_BYTES",
    "MAX_TTL_SECONDS",
    "InvalidSubscriptionKeysError",
    "Notification",
    "PayloadTooLargeError",
    "PushMessageError",
    "Subscription",
    "Urgency",
    "decode_notification",
    "decrypt",
    "encode_notification",
    "encrypt",
    "make_topic",
    "push_headers",
    "validate_subscription_keys",
    "validate_topic",
    "validate_ttl",
]

# RFC 8291 §4: push services need only accept 4096 bytes of encrypted body. The body is a
# 86-byte header (salt 16, rs 4, idlen 1, key 65), the ciphertext, a 16-byte tag and our
# one padding delimiter byte, which leaves 3993 bytes of plaintext.
MAX_BODY_BYTES: Final = 4096
_HEADER_BYTES: Final = 16 + 4 + 1 + 65
MAX_PLAINTEXT_BYTES: Final = MAX_BODY_BYTES - _HEADER_BYTES - 16 - 1
# One record holds the whole message (RFC 8291 §4), so rs just has to exceed it.
_RECORD_SIZE: Final = 4096

DEFAULT_TTL_SECONDS: Final = 24 * 60 * 60
# FCM, the strictest of the services we target, caps TTL at four weeks.
MAX_TTL_SECONDS: Final = 28 * 24 * 60 * 60

_TOPIC_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")


class PushMessageError(ValueError):
    """A push message cannot be built."""


class PayloadTooLargeError(PushMessageError):
    """The payload exceeds what one Web Push message may carry."""


class InvalidSubscriptionKeysError(PushMessageError):
    """The subscription's p256dh/auth keys are malformed."""


class Urgency(enum.StrEnum):
    """RFC 8030 §5.3 ``Urgency``: lets a device on battery defer low-value messages."""

    VERY_LOW = "very-low"
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class Notification(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """The JSON the service worker receives: ``{title, body, url, document_id?, folder?, tag}``.

    ``tag`` lets the browser replace an older notification about the same thing;
    ``url`` is what the service worker opens on click.
    """

    title: str
    body: str
    url: str
    document_id: str | None = None
    folder: str | None = None
    tag: str


class Subscription(msgspec.Struct, frozen=True):
    """A browser's ``PushSubscription``: endpoint plus its base64url ``p256dh`` and ``auth``."""

    endpoint: str
    p256dh: str
    auth: str


_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(Notification)


def encode_notification(notification: Notification) -> bytes:
    """Serialise a notification to JSON, refusing one too large for a push message."""
    data = _encoder.encode(notification)
    if len(data) > MAX_PLAINTEXT_BYTES:
        raise PayloadTooLargeError(
            f"notification is {len(data)} bytes of JSON; at most {MAX_PLAINTEXT_BYTES} fit"
        )
    return data


def decode_notification(data: bytes) -> Notification:
    """Parse notification JSON (used by tests and the loopback push service)."""
    return _decoder.decode(data)


def validate_ttl(ttl: int) -> int:
    """Return ``ttl`` if it is a valid RFC 8030 TTL in seconds for our push services."""
    if not 0 <= ttl <= MAX_TTL_SECONDS:
        raise PushMessageError(f"TTL must be within [0, {MAX_TTL_SECONDS}] seconds")
    return ttl


def validate_topic(topic: str) -> str:
    """Return ``topic`` if it is a valid RFC 8030 §5.4 ``Topic`` (≤ 32 base64url chars)."""
    if not _TOPIC_RE.fullmatch(topic):
        raise PushMessageError("topic must be 1-32 characters of the base64url alphabet")
    return topic


def make_topic(key: str) -> str:
    """Derive a valid ``Topic`` from any key (e.g. a document id or a notification tag).

    A newer message with the same topic replaces an undelivered older one at the push
    service; hashing lets callers use ids that are too long or use other characters.
    """
    return b64url_encode(hashlib.sha256(key.encode()).digest())[:32]


def push_headers(
    *, ttl: int, urgency: Urgency = Urgency.NORMAL, topic: str | None = None
) -> dict[str, str]:
    """RFC 8030/8291 request headers for an encrypted body, without ``Authorization``."""
    headers = {
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "TTL": str(validate_ttl(ttl)),
        "Urgency": Urgency(urgency).value,
    }
    if topic is not None:
        headers["Topic"] = validate_topic(topic)
    return headers


def _ua_public_key(p256dh: str | bytes) -> tuple[bytes, ec.EllipticCurvePublicKey]:
    try:
        raw = b64url_decode(p256dh) if isinstance(p256dh, str) else p256dh
        if len(raw) != 65 or raw[0] != 0x04:
            raise ValueError("not an uncompressed point")
        return raw, ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError as exc:
        raise InvalidSubscriptionKeysError(f"p256dh is not a P-256 public key: {exc}") from None


def _auth_secret(auth: str | bytes) -> bytes:
    try:
        raw = b64url_decode(auth) if isinstance(auth, str) else auth
    except ValueError:
        raise InvalidSubscriptionKeysError("auth is not base64url") from None
    if len(raw) != 16:
        raise InvalidSubscriptionKeysError("auth secret must be 16 bytes")
    return raw


def validate_subscription_keys(p256dh: str, auth: str) -> None:
    """Raise :class:`InvalidSubscriptionKeysError` unless the keys are usable (on subscribe)."""
    _ua_public_key(p256dh)
    _auth_secret(auth)


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def _content_keys(
    ecdh_secret: bytes, auth: bytes, ua_public: bytes, as_public: bytes, salt: bytes
) -> tuple[bytes, bytes]:
    # RFC 8291 §3.4: mix in the auth secret and both public keys, then RFC 8188 §2.2-2.3.
    ikm = _hkdf(auth, ecdh_secret, b"WebPush: info\x00" + ua_public + as_public, 32)
    cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    return cek, nonce


def _public_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def encrypt(
    plaintext: bytes,
    p256dh: str | bytes,
    auth: str | bytes,
    *,
    salt: bytes | None = None,
    sender_key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """Encrypt ``plaintext`` for a subscription (RFC 8291, ``aes128gcm`` content coding).

    Returns the request body: the RFC 8188 header (carrying the ephemeral public key as
    ``keyid``) followed by one record. ``salt`` and ``sender_key`` exist only for test
    vectors; in production both must be fresh for every message, which is the default.
    """
    if len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise PayloadTooLargeError(
            f"payload is {len(plaintext)} bytes; at most {MAX_PLAINTEXT_BYTES} fit"
        )
    ua_public, ua_key = _ua_public_key(p256dh)
    auth_secret = _auth_secret(auth)
    salt = os.urandom(16) if salt is None else salt
    if len(salt) != 16:
        raise PushMessageError("salt must be 16 bytes")
    ephemeral = ec.generate_private_key(ec.SECP256R1()) if sender_key is None else sender_key
    as_public = _public_bytes(ephemeral)
    ecdh_secret = ephemeral.exchange(ec.ECDH(), ua_key)
    cek, nonce = _content_keys(ecdh_secret, auth_secret, ua_public, as_public, salt)
    # 0x02 marks the last (only) record; no further padding.
    ciphertext = AESGCM(cek).encrypt(nonce, plaintext + b"\x02", None)
    header = salt + struct.pack("!IB", _RECORD_SIZE, len(as_public)) + as_public
    return header + ciphertext


def decrypt(body: bytes, ua_private_key: ec.EllipticCurvePrivateKey, auth: str | bytes) -> bytes:
    """Decrypt an ``aes128gcm`` Web Push body as the browser would (single record).

    Raises :class:`PushMessageError` if the body is malformed or does not authenticate.
    """
    if len(body) < 21:
        raise PushMessageError("body shorter than the aes128gcm header")
    salt = body[:16]
    record_size, id_len = struct.unpack("!IB", body[16:21])
    as_public = body[21 : 21 + id_len]
    record = body[21 + id_len :]
    if id_len != 65 or len(as_public) != 65:
        raise PushMessageError("keyid is not an uncompressed P-256 point")
    if record_size < 18 or len(record) > record_size or len(record) < 17:
        raise PushMessageError("body is not exactly one aes128gcm record")
    try:
        as_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), as_public)
    except ValueError:
        raise PushMessageError("keyid is not a valid P-256 point") from None
    ecdh_secret = ua_private_key.exchange(ec.ECDH(), as_key)
    cek, nonce = _content_keys(
        ecdh_secret, _auth_secret(auth), _public_bytes(ua_private_key), as_public, salt
    )
    try:
        padded = AESGCM(cek).decrypt(nonce, record, None)
    except InvalidTag:
        raise PushMessageError("record does not authenticate (wrong keys?)") from None
    unpadded = padded.rstrip(b"\x00")
    if not unpadded.endswith(b"\x02"):
        raise PushMessageError("missing last-record padding delimiter")
    return unpadded[:-1]

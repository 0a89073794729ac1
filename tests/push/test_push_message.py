"""RFC 8291 encryption, the notification payload and RFC 8030 headers."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from push import (
    MAX_PLAINTEXT_BYTES,
    InvalidSubscriptionKeysError,
    Notification,
    PayloadTooLargeError,
    PushMessageError,
    Urgency,
    b64url_decode,
    b64url_encode,
    decode_notification,
    decrypt,
    encode_notification,
    encrypt,
    make_topic,
    push_headers,
    validate_subscription_keys,
    validate_topic,
    validate_ttl,
)

# RFC 8291 Appendix A.
RFC_PLAINTEXT = b"When I grow up, I want to be a watermelon"
RFC_AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
RFC_UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
RFC_UA_PUBLIC = (
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
)
RFC_AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
RFC_SALT = "DGv6ra1nlYgDCS1FRnbzlw"
RFC_BODY = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS"
    "6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qu"
    "lcy4a-fN"
)


def _private(b64: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(b64url_decode(b64), "big"), ec.SECP256R1())


def _browser() -> tuple[ec.EllipticCurvePrivateKey, str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return key, b64url_encode(raw), b64url_encode(b"0123456789abcdef")


def test_encrypt_reproduces_rfc8291_appendix_a() -> None:
    body = encrypt(
        RFC_PLAINTEXT,
        RFC_UA_PUBLIC,
        RFC_AUTH,
        salt=b64url_decode(RFC_SALT),
        sender_key=_private(RFC_AS_PRIVATE),
    )
    assert body == b64url_decode(RFC_BODY)


def test_decrypt_rfc8291_appendix_a() -> None:
    assert decrypt(b64url_decode(RFC_BODY), _private(RFC_UA_PRIVATE), RFC_AUTH) == RFC_PLAINTEXT


def test_round_trip_and_fresh_salt_and_key_per_message() -> None:
    key, p256dh, auth = _browser()
    first, second = encrypt(b"hello", p256dh, auth), encrypt(b"hello", p256dh, auth)
    assert first != second
    assert first[:16] != second[:16]  # salt
    assert decrypt(first, key, auth) == decrypt(second, key, auth) == b"hello"


def test_tampered_or_misaddressed_body_is_refused() -> None:
    key, p256dh, auth = _browser()
    body = bytearray(encrypt(b"secret", p256dh, auth))
    body[-1] ^= 1
    with pytest.raises(PushMessageError, match="authenticate"):
        decrypt(bytes(body), key, auth)
    other, _, _ = _browser()
    with pytest.raises(PushMessageError):
        decrypt(encrypt(b"secret", p256dh, auth), other, auth)


def test_webpush_package_output_decrypts_with_ours() -> None:
    """Cross-check with the webpush package (interop with the library the field uses)."""
    from webpush import WebPush, WebPushSubscription
    from webpush.vapid import VAPID

    private_pem, public_pem, _ = VAPID.generate_keys()
    key, p256dh, auth = _browser()
    subscription = WebPushSubscription.model_validate(
        {
            "endpoint": "https://fcm.googleapis.com/fcm/send/x",
            "keys": {"p256dh": p256dh, "auth": auth},
        }
    )
    message = WebPush(private_pem, public_pem, subscriber="a@b.example").get(b"hi", subscription)
    assert decrypt(message.encrypted, key, auth) == b"hi"


def test_payload_limit() -> None:
    _, p256dh, auth = _browser()
    assert len(encrypt(b"x" * MAX_PLAINTEXT_BYTES, p256dh, auth)) == 4096
    with pytest.raises(PayloadTooLargeError):
        encrypt(b"x" * (MAX_PLAINTEXT_BYTES + 1), p256dh, auth)
    with pytest.raises(PayloadTooLargeError):
        encode_notification(Notification(title="t", body="б" * 2000, url="/", tag="t"))


@pytest.mark.parametrize(
    ("p256dh", "auth"),
    [
        ("not-base64!", "MDEyMzQ1Njc4OWFiY2RlZg"),
        (b64url_encode(b"\x04" + b"\x01" * 64), "MDEyMzQ1Njc4OWFiY2RlZg"),  # not on the curve
        (RFC_UA_PUBLIC, "c2hvcnQ"),  # 5-byte auth
    ],
)
def test_invalid_subscription_keys(p256dh: str, auth: str) -> None:
    with pytest.raises(InvalidSubscriptionKeysError):
        validate_subscription_keys(p256dh, auth)
    with pytest.raises(InvalidSubscriptionKeysError):
        encrypt(b"x", p256dh, auth)


def test_notification_json_matches_api_shape() -> None:
    full = Notification(
        title="На подпись",
        body="Письмо № 12",
        url="/documents/42",
        document_id="42",
        folder="sign",
        tag="doc-42",
    )
    assert decode_notification(encode_notification(full)) == full
    minimal = Notification(title="t", body="b", url="/", tag="x")
    # Optional fields are omitted, matching `{title, body, url, document_id?, folder?, tag}`.
    assert encode_notification(minimal) == b'{"title":"t","body":"b","url":"/","tag":"x"}'


def test_headers_ttl_urgency_topic() -> None:
    topic = make_topic("document:0b9f6f0e-6c1b-4d4e-9c55-4c1f0d1e2a3b")
    assert topic == make_topic("document:0b9f6f0e-6c1b-4d4e-9c55-4c1f0d1e2a3b")
    assert validate_topic(topic) == topic and len(topic) == 32
    headers = push_headers(ttl=60, urgency=Urgency.HIGH, topic=topic)
    assert headers == {
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "TTL": "60",
        "Urgency": "high",
        "Topic": topic,
    }
    assert push_headers(ttl=0)["Urgency"] == "normal"
    assert push_headers(ttl=0, urgency=Urgency("very-low"))["Urgency"] == "very-low"
    for bad_topic in ("", "a" * 33, "has space", "slash/"):
        with pytest.raises(PushMessageError):
            validate_topic(bad_topic)
    for bad_ttl in (-1, 28 * 24 * 3600 + 1):
        with pytest.raises(PushMessageError):
            validate_ttl(bad_ttl)

"""Web Push for Kabinet: VAPID (RFC 8292), encryption (RFC 8291) and delivery (RFC 8030).

A standalone library: it never imports ``backend``. The loopback push service for tests
lives in :mod:`push.testing_service` and is not imported here (it needs uvicorn).
"""

from push.endpoints import DEFAULT_PUSH_ORIGINS, EndpointNotAllowedError, EndpointPolicy
from push.message import (
    DEFAULT_TTL_SECONDS,
    MAX_PLAINTEXT_BYTES,
    MAX_TTL_SECONDS,
    InvalidSubscriptionKeysError,
    Notification,
    PayloadTooLargeError,
    PushMessageError,
    Subscription,
    Urgency,
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
from push.sender import DeliveryResult, DeliveryStatus, PushSender, backoff, parse_retry_after
from push.vapid import (
    VapidError,
    VapidKeys,
    VapidSigner,
    b64url_decode,
    b64url_encode,
    endpoint_origin,
    vapid_authorization,
)

__all__ = [
    "DEFAULT_PUSH_ORIGINS",
    "DEFAULT_TTL_SECONDS",
    "MAX_PLAINTEXT_BYTES",
    "MAX_TTL_SECONDS",
    "DeliveryResult",
    "DeliveryStatus",
    "EndpointNotAllowedError",
    "EndpointPolicy",
    "InvalidSubscriptionKeysError",
    "Notification",
    "PayloadTooLargeError",
    "PushMessageError",
    "PushSender",
    "Subscription",
    "Urgency",
    "VapidError",
    "VapidKeys",
    "VapidSigner",
    "b64url_decode",
    "b64url_encode",
    "backoff",
    "decode_notification",
    "decrypt",
    "encode_notification",
    "encrypt",
    "endpoint_origin",
    "make_topic",
    "parse_retry_after",
    "push_headers",
    "validate_subscription_keys",
    "validate_topic",
    "validate_ttl",
    "vapid_authorization",
]

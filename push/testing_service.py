"""A real push service on loopback, for tests and benchmarks.

It plays both the push service and the browser: :meth:`LoopbackPushService.new_subscription`
creates a subscription whose private key and auth secret stay here, and every
``POST /push/<id>`` is checked like a strict push service would (VAPID JWT signature,
``aud`` = this origin with its port, ``exp`` within 24 h, ``sub``; RFC 8030 headers; size)
and then decrypted as the browser would, so a test sees exactly what a device would show.
It can also be told to answer 503/429 with ``Retry-After`` or 410 for a subscription.

Runs uvicorn in a daemon thread on ``127.0.0.1`` with a free port. uvicorn is imported
lazily so that ``import push`` does not need it.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from push.message import (
    MAX_BODY_BYTES,
    Notification,
    PushMessageError,
    Subscription,
    Urgency,
    decode_notification,
    decrypt,
    validate_topic,
)
from push.vapid import MAX_VAPID_EXPIRY_SECONDS, b64url_decode, b64url_encode

if TYPE_CHECKING:
    import uvicorn

__all__ = ["LoopbackPushService", "ReceivedMessage"]

_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A message the service accepted and the "browser" decrypted."""

    subscription_id: str
    payload: bytes
    ttl: int
    urgency: str
    topic: str | None
    vapid_claims: dict[str, Any]
    vapid_key: str
    # Wall-clock time of receipt (time.time()), for latency measurements in benchmarks.
    received_at: float = 0.0

    def notification(self) -> Notification:
        """The payload parsed as a :class:`~push.message.Notification`."""
        return decode_notification(self.payload)


@dataclass(slots=True)
class _Browser:
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    application_server_key: str | None
    gone: bool = False


@dataclass(slots=True)
class _Rule:
    remaining: int
    status: int
    retry_after: str | None
    subscription_id: str | None


@dataclass(slots=True)
class _State:
    browsers: dict[str, _Browser] = field(default_factory=dict)
    rules: list[_Rule] = field(default_factory=list)
    messages: list[ReceivedMessage] = field(default_factory=list)
    rejections: list[tuple[int, str]] = field(default_factory=list)
    requests: int = 0


class _Reject(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class LoopbackPushService:
    """A push service + browser on ``127.0.0.1``; use as a (sync) context manager."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        if not ipaddress.IPv4Address(host).is_loopback:
            # It accepts pushes from anyone who can reach it; never expose it.
            raise ValueError("the test push service listens on loopback only")
        self._host = host
        self._lock = threading.Lock()
        self._state = _State()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``: put it in the endpoint policy's extra origins."""
        return f"http://{self._host}:{self.port}"

    def start(self) -> LoopbackPushService:
        """Bind a free port and serve in a background thread; returns self."""
        import uvicorn  # lazily: only tests and benchmarks need it

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, 0))  # port 0: the OS picks a free one, no races
        self.port = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(
            self._app, interface="asgi3", lifespan="off", log_level="warning", access_log=False
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="push-test-service", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("loopback push service did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> LoopbackPushService:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the browser side and programming ----------------------------------------------

    def new_subscription(self, application_server_key: str | None = None) -> Subscription:
        """Subscribe like a browser: fresh P-256 key and auth secret, kept by the service.

        With ``application_server_key`` (base64url), pushes signed with another VAPID key
        are refused with 403, as FCM and Mozilla do.
        """
        sub_id = secrets.token_urlsafe(16)
        key = ec.generate_private_key(ec.SECP256R1())
        auth = secrets.token_bytes(16)
        with self._lock:
            self._state.browsers[sub_id] = _Browser(key, auth, application_server_key)
        p256dh = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return Subscription(
            endpoint=f"{self.origin}/push/{sub_id}",
            p256dh=b64url_encode(p256dh),
            auth=b64url_encode(auth),
        )

    @staticmethod
    def subscription_id(subscription: Subscription) -> str:
        """The id in the subscription's endpoint path."""
        return subscription.endpoint.rsplit("/", 1)[-1]

    def expire(self, subscription: Subscription) -> None:
        """From now on answer 410 Gone for this subscription (the user unsubscribed)."""
        with self._lock:
            self._state.browsers[self.subscription_id(subscription)].gone = True

    def fail_next(
        self,
        count: int,
        status: int = 503,
        *,
        retry_after: str | int | None = None,
        subscription: Subscription | None = None,
    ) -> None:
        """Answer the next ``count`` pushes (to ``subscription``, or to any) with ``status``."""
        sub_id = None if subscription is None else self.subscription_id(subscription)
        header = None if retry_after is None else str(retry_after)
        with self._lock:
            self._state.rules.append(_Rule(count, status, header, sub_id))

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Accepted and decrypted messages, oldest first (a copy)."""
        with self._lock:
            return list(self._state.messages)

    def messages_for(self, subscription: Subscription) -> list[ReceivedMessage]:
        """Accepted messages for one subscription."""
        sub_id = self.subscription_id(subscription)
        return [m for m in self.messages if m.subscription_id == sub_id]

    @property
    def rejections(self) -> list[tuple[int, str]]:
        """``(status, reason)`` for every push refused by validation (not by programming)."""
        with self._lock:
            return list(self._state.rejections)

    @property
    def requests(self) -> int:
        """Number of POSTs received, whatever the answer."""
        with self._lock:
            return self._state.requests

    # -- the push service --------------------------------------------------------------

    async def _app(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            return
        body = bytearray()
        more = True
        while more:
            event = await receive()
            body += event.get("body", b"")
            more = bool(event.get("more_body"))
            if len(body) > MAX_BODY_BYTES * 4:
                break  # no need to read a huge body just to refuse it
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        status, extra = self._handle(scope["method"], scope["path"], headers, bytes(body))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in extra.items()],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    def _handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str]]:
        with self._lock:
            self._state.requests += 1
        prefix, _, sub_id = path.rpartition("/")
        if method != "POST" or prefix != "/push":
            return 404, {}
        with self._lock:
            browser = self._state.browsers.get(sub_id)
            if browser is None:
                return 404, {}
            for rule in self._state.rules:
                if rule.remaining > 0 and rule.subscription_id in (None, sub_id):
                    rule.remaining -= 1
                    extra = {} if rule.retry_after is None else {"retry-after": rule.retry_after}
                    return rule.status, extra
            if browser.gone:
                return 410, {}
        try:
            message = self._accept(sub_id, browser, headers, body)
        except _Reject as exc:
            with self._lock:
                self._state.rejections.append((exc.status, exc.reason))
            return exc.status, {}
        with self._lock:
            self._state.messages.append(message)
        return 201, {"location": f"{self.origin}/message/{secrets.token_urlsafe(8)}"}

    def _accept(
        self, sub_id: str, browser: _Browser, headers: dict[str, str], body: bytes
    ) -> ReceivedMessage:
        claims, vapid_key = self._verify_vapid(headers.get("authorization", ""))
        if browser.application_server_key and vapid_key != browser.application_server_key:
            raise _Reject(403, "VAPID key differs from the subscription's applicationServerKey")
        ttl_text = headers.get("ttl", "")
        if not ttl_text.isdigit():
            raise _Reject(400, "missing or invalid TTL header")
        urgency = headers.get("urgency", "normal")
        if urgency not in {u.value for u in Urgency}:
            raise _Reject(400, "invalid Urgency header")
        topic = headers.get("topic")
        if topic is not None:
            try:
                validate_topic(topic)
            except PushMessageError:
                raise _Reject(400, "invalid Topic header") from None
        if headers.get("content-encoding") != "aes128gcm":
            raise _Reject(415, "Content-Encoding must be aes128gcm")
        if len(body) > MAX_BODY_BYTES:
            raise _Reject(413, "payload too large")
        try:
            payload = decrypt(body, browser.private_key, browser.auth)
        except PushMessageError as exc:
            raise _Reject(400, f"cannot decrypt: {exc}") from None
        return ReceivedMessage(
            sub_id, payload, int(ttl_text), urgency, topic, claims, vapid_key, time.time()
        )

    def _verify_vapid(self, authorization: str) -> tuple[dict[str, Any], str]:
        scheme, _, params = authorization.partition(" ")
        if scheme.lower() != "vapid":
            raise _Reject(401, "Authorization is not 'vapid t=..., k=...'")
        fields: dict[str, str] = {}
        for item in params.split(","):
            name, _, value = item.strip().partition("=")
            fields[name.strip()] = value.strip()
        token, key_text = fields.get("t", ""), fields.get("k", "")
        try:
            raw_key = b64url_decode(key_text)
            public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw_key)
        except ValueError:
            raise _Reject(401, "k= is not a P-256 public key") from None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=public_key,
                algorithms=["ES256"],
                audience=self.origin,
                options={"require": ["aud", "exp", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise _Reject(401, f"VAPID JWT refused: {type(exc).__name__}: {exc}") from None
        if claims["exp"] > time.time() + MAX_VAPID_EXPIRY_SECONDS:
            raise _Reject(401, "VAPID exp is more than 24 hours ahead")
        sub = str(claims["sub"])
        if not (sub.startswith("mailto:") or sub.startswith("https:")):
            raise _Reject(401, "VAPID sub must be mailto: or https:")
        return claims, b64url_encode(raw_key)

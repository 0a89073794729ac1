"""Delivering encrypted push messages over one pooled HTTP/2 client.

The sender never retries by itself: it classifies each attempt into a
:class:`DeliveryResult` and the caller (the backend's outbox worker) persists the next
attempt time from :func:`backoff`, so retries survive restarts and are spread across
workers instead of sleeping inside a request.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Final

import httpx
import msgspec

from push.endpoints import EndpointNotAllowedError, EndpointPolicy
from push.message import (
    DEFAULT_TTL_SECONDS,
    Notification,
    PushMessageError,
    Subscription,
    Urgency,
    encode_notification,
    encrypt,
    push_headers,
)
from push.vapid import VapidSigner

__all__ = [
    "DeliveryResult",
    "DeliveryStatus",
    "PushSender",
    "backoff",
    "parse_retry_after",
]

# Never wait longer than a day on a service's say-so: a TTL-bound notification is useless
# by then, and a bogus header must not park a message forever.
MAX_RETRY_AFTER_SECONDS: Final = 24 * 60 * 60
_DETAIL_CHARS: Final = 200


class DeliveryStatus(enum.StrEnum):
    """What the caller should do with the message and the subscription."""

    DELIVERED = "delivered"  # accepted by the push service
    RETRY = "retry"  # transient: try again after backoff()
    GONE = "gone"  # the subscription is dead: delete it
    FAILED = "failed"  # permanent for this message: do not retry it


class DeliveryResult(msgspec.Struct, frozen=True):
    """Outcome of one delivery attempt."""

    status: DeliveryStatus
    http_status: int | None = None
    retry_after_seconds: float | None = None
    detail: str = ""


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Parse ``Retry-After`` (delta-seconds or an HTTP-date) into seconds from ``now``.

    Returns ``None`` when absent or unparseable; past dates give 0; values are capped at
    one day.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        seconds = float(int(text))
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive result means "-0000"
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), float(MAX_RETRY_AFTER_SECONDS))


def backoff(
    attempt: int,
    retry_after: float | None = None,
    *,
    base: float = 10.0,
    cap: float = 3600.0,
    rand: float | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1 = first retry).

    Exponential (``base * 2**(attempt-1)``, capped at ``cap``) with "equal jitter" — at
    least half the step, so retries never collapse to zero, and a random other half, so a
    burst of failures after a push-service outage does not come back in lock-step. The
    service's ``Retry-After`` is a floor (it is honoured even above ``cap``). ``rand`` in
    [0, 1) makes the function pure for tests; by default it is drawn from ``random``.
    """
    if attempt < 1:
        raise ValueError("attempt starts at 1")
    step = min(cap, base * 2.0 ** min(attempt - 1, 62))
    jitter = random.random() if rand is None else rand
    delay = step / 2 + step / 2 * jitter
    if retry_after is not None:
        delay = max(delay, min(retry_after, float(MAX_RETRY_AFTER_SECONDS)))
    return delay


def _classify(response: httpx.Response) -> DeliveryResult:
    code = response.status_code
    if 200 <= code < 300:
        return DeliveryResult(DeliveryStatus.DELIVERED, code)
    if code in (404, 410):
        return DeliveryResult(DeliveryStatus.GONE, code, detail=_detail(response))
    if code in (408, 425, 429) or code >= 500:
        return DeliveryResult(
            DeliveryStatus.RETRY,
            code,
            parse_retry_after(response.headers.get("retry-after")),
            _detail(response),
        )
    # 400 (bad headers), 401/403 (VAPID key or token refused), 413 (too large) and any
    # redirect (we never follow one: it could point anywhere) will fail again the same way.
    return DeliveryResult(DeliveryStatus.FAILED, code, detail=_detail(response))


def _detail(response: httpx.Response) -> str:
    # Push services explain refusals in the body ("VAPID credentials mismatch", ...).
    # It holds no payload (that is encrypted) and is kept short for logs.
    return response.text[:_DETAIL_CHARS].strip()


class PushSender:
    """Sends Web Push messages through one shared, pooled ``httpx.AsyncClient`` (HTTP/2).

    Create one per process and share it between tasks; ``send`` is safe to call
    concurrently. Use ``async with`` or :meth:`aclose` to release the connections.
    """

    def __init__(
        self,
        signer: VapidSigner,
        policy: EndpointPolicy | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        max_connections: int = 32,
        max_in_flight: int = 100,
        trust_env: bool = True,
    ) -> None:
        """Use ``client`` if given (the caller closes it), else create a pooled one.

        At most ``max_in_flight`` requests are on the wire at once; further ``send`` calls
        wait their turn without the wait counting against ``timeout`` (otherwise a burst of
        outbox events would turn into spurious pool timeouts and retries). HTTP/2 push
        services multiplex them over one connection per origin, so ``max_connections``
        stays small; httpx's pool also slows down markedly with hundreds of connections.
        ``trust_env`` lets an egress proxy from ``HTTPS_PROXY`` apply, which closed
        government networks often require; tests pass ``False`` to stay on loopback.
        """
        self.signer = signer
        self.policy = policy if policy is not None else EndpointPolicy()
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            http2=True,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            # A redirect could lead anywhere, bypassing the endpoint allowlist.
            follow_redirects=False,
            trust_env=trust_env,
        )

    @property
    def client(self) -> httpx.AsyncClient:
        """The underlying HTTP client."""
        return self._client

    async def aclose(self) -> None:
        """Close the client if this sender created it."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> PushSender:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _checked_url(self, endpoint: str) -> httpx.URL:
        self.policy.check(endpoint)
        url = httpx.URL(endpoint)
        # Re-read the URL the way httpx will connect to it; a parser disagreement with
        # urllib (our check) must not let a request reach a different host.
        host = f"[{url.host}]" if ":" in url.host else url.host
        port = f":{url.port}" if url.port is not None else ""
        self.policy.check(f"{url.scheme}://{host}{port}/")
        return url

    async def send(
        self,
        subscription: Subscription,
        notification: Notification | bytes,
        *,
        ttl: int = DEFAULT_TTL_SECONDS,
        urgency: Urgency = Urgency.NORMAL,
        topic: str | None = None,
    ) -> DeliveryResult:
        """Encrypt ``notification`` for ``subscription`` and POST it to the push service.

        2xx → delivered; 404/410 → gone (delete the subscription); 408/425/429/5xx and
        network errors → retry (``retry_after_seconds`` from ``Retry-After``); anything
        else, a refused endpoint or an unencodable message → failed. Never raises for
        delivery problems.
        """
        try:
            url = self._checked_url(subscription.endpoint)
        except (EndpointNotAllowedError, httpx.InvalidURL) as exc:
            return DeliveryResult(DeliveryStatus.FAILED, detail=f"endpoint refused: {exc}")
        try:
            plaintext = (
                notification
                if isinstance(notification, bytes)
                else encode_notification(notification)
            )
            body = encrypt(plaintext, subscription.p256dh, subscription.auth)
            headers = push_headers(ttl=ttl, urgency=urgency, topic=topic)
            headers["Authorization"] = self.signer.authorization(subscription.endpoint)
        except (PushMessageError, ValueError) as exc:
            return DeliveryResult(DeliveryStatus.FAILED, detail=str(exc))
        try:
            async with self._in_flight:
                response = await self._client.post(url, content=body, headers=headers)
        except httpx.TransportError as exc:
            # Connect/read timeouts, resets, DNS and protocol errors are all transient.
            return DeliveryResult(DeliveryStatus.RETRY, detail=f"{type(exc).__name__}: {exc}")
        return _classify(response)

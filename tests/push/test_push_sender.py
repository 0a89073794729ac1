"""Delivery through a real HTTP push service on 127.0.0.1 that decrypts and verifies VAPID."""

from __future__ import annotations

import asyncio
import socket
from email.utils import formatdate

import httpx
import pytest

from push import (
    DeliveryStatus,
    EndpointPolicy,
    Notification,
    PushSender,
    Subscription,
    Urgency,
    VapidKeys,
    VapidSigner,
    backoff,
    make_topic,
    parse_retry_after,
)
from push.testing_service import LoopbackPushService

NOTE = Notification(
    title="Документ на подпись",
    body="Постановление № 17 ожидает вашей подписи",
    url="/documents/0b9f6f0e",
    document_id="0b9f6f0e",
    folder="sign",
    tag="doc-0b9f6f0e",
)


async def test_notification_round_trip_decrypted_by_service(
    sender: PushSender, push_service: LoopbackPushService
) -> None:
    sub = push_service.new_subscription()
    topic = make_topic("doc-0b9f6f0e")
    result = await sender.send(sub, NOTE, ttl=3600, urgency=Urgency.HIGH, topic=topic)
    assert result.status is DeliveryStatus.DELIVERED and result.http_status == 201
    [received] = push_service.messages_for(sub)
    assert received.notification() == NOTE
    assert (received.ttl, received.urgency, received.topic) == (3600, "high", topic)


async def test_vapid_aud_includes_port_and_is_verified(
    sender: PushSender, push_service: LoopbackPushService, vapid_keys: VapidKeys
) -> None:
    # Binding the subscription to our key also makes the service compare k= with it.
    sub = push_service.new_subscription(application_server_key=vapid_keys.public_key_b64)
    assert (await sender.send(sub, b"{}")).status is DeliveryStatus.DELIVERED
    [received] = push_service.messages_for(sub)
    assert received.vapid_claims["aud"] == push_service.origin
    assert received.vapid_claims["aud"].endswith(f":{push_service.port}")
    assert received.vapid_claims["sub"] == sender.signer.subject
    assert received.vapid_key == vapid_keys.public_key_b64


async def test_service_refuses_port_less_aud_as_webpush_1_0_6_builds_it(
    push_service: LoopbackPushService,
) -> None:
    """Why we sign ourselves: webpush's token (aud without the port) is refused."""
    from webpush import WebPush, WebPushSubscription
    from webpush.vapid import VAPID

    private_pem, public_pem, _ = VAPID.generate_keys()
    sub = push_service.new_subscription()
    message = WebPush(private_pem, public_pem, subscriber="a@b.example", ttl=60).get(
        b"{}",
        WebPushSubscription.model_validate(
            {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}
        ),
    )
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(
            sub.endpoint, content=message.encrypted, headers=dict(message.headers)
        )
    assert response.status_code == 401
    assert "InvalidAudienceError" in push_service.rejections[-1][1]
    assert push_service.messages_for(sub) == []


async def test_wrong_vapid_key_for_subscription_fails(
    sender: PushSender, push_service: LoopbackPushService
) -> None:
    sub = push_service.new_subscription(application_server_key=VapidKeys.generate().public_key_b64)
    result = await sender.send(sub, NOTE)
    assert (result.status, result.http_status) == (DeliveryStatus.FAILED, 403)


async def test_503_then_retry_after_honoured_then_delivered(
    sender: PushSender, push_service: LoopbackPushService
) -> None:
    sub = push_service.new_subscription()
    push_service.fail_next(1, 503, retry_after=1, subscription=sub)
    first = await sender.send(sub, NOTE)
    assert (first.status, first.http_status) == (DeliveryStatus.RETRY, 503)
    assert first.retry_after_seconds == 1.0
    delay = backoff(1, first.retry_after_seconds, base=0.01)
    assert delay == 1.0  # the service's Retry-After wins over a shorter backoff step
    await asyncio.sleep(delay)
    second = await sender.send(sub, NOTE)
    assert second.status is DeliveryStatus.DELIVERED
    assert len(push_service.messages_for(sub)) == 1


async def test_410_is_gone(sender: PushSender, push_service: LoopbackPushService) -> None:
    sub = push_service.new_subscription()
    push_service.expire(sub)
    result = await sender.send(sub, NOTE)
    assert (result.status, result.http_status) == (DeliveryStatus.GONE, 410)


async def test_unknown_subscription_404_is_gone(
    sender: PushSender, push_service: LoopbackPushService
) -> None:
    real = push_service.new_subscription()
    ghost = Subscription(f"{push_service.origin}/push/unknown", real.p256dh, real.auth)
    assert (await sender.send(ghost, NOTE)).status is DeliveryStatus.GONE


async def test_429_is_retry_with_retry_after_date(
    sender: PushSender, push_service: LoopbackPushService
) -> None:
    sub = push_service.new_subscription()
    push_service.fail_next(1, 429, retry_after=formatdate(usegmt=True), subscription=sub)
    result = await sender.send(sub, NOTE)
    assert (result.status, result.http_status) == (DeliveryStatus.RETRY, 429)
    assert result.retry_after_seconds is not None and 0 <= result.retry_after_seconds <= 1


async def test_413_and_400_fail(sender: PushSender, push_service: LoopbackPushService) -> None:
    sub = push_service.new_subscription()
    push_service.fail_next(1, 413, subscription=sub)
    push_service.fail_next(1, 400, subscription=sub)
    assert (await sender.send(sub, NOTE)).http_status == 413
    result = await sender.send(sub, NOTE)
    assert (result.status, result.http_status) == (DeliveryStatus.FAILED, 400)


async def test_network_error_is_retry(
    vapid_signer: VapidSigner, push_service: LoopbackPushService
) -> None:
    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    origin = f"http://127.0.0.1:{port}"
    keys = push_service.new_subscription()
    sub = Subscription(f"{origin}/push/x", keys.p256dh, keys.auth)
    async with PushSender(vapid_signer, EndpointPolicy([origin]), trust_env=False) as sender:
        result = await sender.send(sub, NOTE)
    assert result.status is DeliveryStatus.RETRY and result.http_status is None
    assert "ConnectError" in result.detail


async def test_refused_endpoint_and_oversized_payload_never_sent(
    sender: PushSender, push_service: LoopbackPushService
) -> None:
    sub = push_service.new_subscription()
    before = push_service.requests
    metadata = Subscription("http://169.254.169.254/latest/", sub.p256dh, sub.auth)
    refused = await sender.send(metadata, NOTE)
    assert refused.status is DeliveryStatus.FAILED and "endpoint refused" in refused.detail
    huge = await sender.send(sub, b"x" * 5000)
    assert huge.status is DeliveryStatus.FAILED and "at most 3993" in huge.detail
    assert push_service.requests == before


async def test_burst_waits_for_a_slot_instead_of_timing_out(
    vapid_signer: VapidSigner, push_service: LoopbackPushService
) -> None:
    subs = [push_service.new_subscription() for _ in range(120)]
    policy = EndpointPolicy([push_service.origin])
    # A pool timeout far below the burst's duration: only the in-flight limit keeps the
    # queued sends from failing as PoolTimeout.
    client = httpx.AsyncClient(
        trust_env=False,
        limits=httpx.Limits(max_connections=4),
        timeout=httpx.Timeout(5.0, pool=0.001),
    )
    async with client, PushSender(vapid_signer, policy, client=client, max_in_flight=4) as s:
        results = await asyncio.gather(
            *(s.send(sub, f'{{"n":{i}}}'.encode()) for i, sub in enumerate(subs))
        )
    assert {r.status for r in results} == {DeliveryStatus.DELIVERED}
    for i, sub in enumerate(subs):
        assert [m.payload for m in push_service.messages_for(sub)] == [f'{{"n":{i}}}'.encode()]


def test_backoff_exponential_jitter_cap_and_retry_after() -> None:
    assert backoff(1, rand=0.0) == 5.0 and backoff(1, rand=0.999) == pytest.approx(10.0, 0.01)
    assert [backoff(n, rand=0.0) for n in (1, 2, 3, 4)] == [5.0, 10.0, 20.0, 40.0]
    assert backoff(50, rand=0.999) <= 3600.0 and backoff(50, rand=0.0) == 1800.0
    assert backoff(1, 120.0, rand=0.5) == 120.0  # Retry-After is a floor
    assert backoff(3, 1.0, rand=0.0) == 20.0
    assert backoff(1, 7200.0) == 7200.0  # honoured even above the cap
    assert backoff(1, 10**9) == 24 * 3600  # but a bogus value cannot park a message forever
    assert 5.0 <= backoff(1) < 10.0
    with pytest.raises(ValueError):
        backoff(0)


def test_parse_retry_after() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == 30.0
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None
    assert parse_retry_after("99999999") == 24 * 3600

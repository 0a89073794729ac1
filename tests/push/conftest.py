"""Fixtures for the push library: one loopback push service and VAPID key per session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from push import EndpointPolicy, PushSender, VapidKeys, VapidSigner
from push.testing_service import LoopbackPushService

SUBJECT = "mailto:push-admin@kabinet.example"


@pytest.fixture(scope="session")
def vapid_keys() -> VapidKeys:
    return VapidKeys.generate()


@pytest.fixture(scope="session")
def push_service() -> Iterator[LoopbackPushService]:
    with LoopbackPushService() as service:
        yield service


@pytest.fixture(scope="session")
def vapid_signer(vapid_keys: VapidKeys) -> VapidSigner:
    return VapidSigner(vapid_keys, SUBJECT)


@pytest.fixture
async def sender(
    vapid_signer: VapidSigner, push_service: LoopbackPushService
) -> AsyncIterator[PushSender]:
    policy = EndpointPolicy([push_service.origin])
    # trust_env=False: a proxy from the environment must not see loopback test traffic.
    async with PushSender(vapid_signer, policy, trust_env=False) as s:
        yield s

"""SSRF guard: only known push services (plus explicit extras) are ever POSTed to."""

from __future__ import annotations

import pytest

from push import EndpointNotAllowedError, EndpointPolicy

POLICY = EndpointPolicy()


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/dX3abc:APA91bH",
        "https://fcm.googleapis.com:443/wp/abc",
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABk",
        "https://web.push.apple.com/QGuQyavXutnMgm?x=1",
        "https://wns2-par02p.notify.windows.com/w/?token=BQYAAAB%2bXrq",
        "HTTPS://FCM.googleapis.com/fcm/send/x",
    ],
)
def test_known_push_services_accepted(endpoint: str) -> None:
    assert POLICY.check(endpoint) == endpoint


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        ("http://fcm.googleapis.com/fcm/send/x", "https"),
        ("http://127.0.0.1:8080/push/x", "IP address"),
        ("https://127.0.0.1/push/x", "IP address"),
        ("http://169.254.169.254/latest/meta-data/", "IP address"),
        ("https://169.254.169.254/latest/meta-data/", "IP address"),
        ("https://[::1]/x", "IP address"),
        ("https://[fd00::1]/x", "IP address"),
        ("https://user:pass@fcm.googleapis.com/fcm/send/x", "user information"),
        ("https://fcm.googleapis.com@evil.example/x", "user information"),
        ("https://evil.example/fcm/send/x", "not an allowed push service"),
        ("https://fcm.googleapis.com.evil.example/x", "not an allowed push service"),
        ("https://fcm.googleapis.com./x", "not an allowed push service"),
        ("https://localhost/x", "not an allowed push service"),
        ("https://2130706433/x", "not an allowed push service"),
        ("file:///etc/passwd", "scheme"),
        ("ftp://fcm.googleapis.com/x", "scheme"),
        ("gopher://fcm.googleapis.com:25/x", "scheme"),
        ("//fcm.googleapis.com/x", "scheme"),
        ("https://fcm.googleapis.com:8443/fcm/send/x", "fcm.googleapis.com:8443"),
        ("https://fcm.googleapis.com:99999/x", "invalid port"),
        ("https://fcm.googleapis.com:0x1bb/x", "invalid port"),
        ("https://notify.windows.com/w/", "not an allowed push service"),
        ("https://a.b.notify.windows.com/w/", "not an allowed push service"),
        ("https://evilnotify.windows.com/w/", "not an allowed push service"),
        ("https://fcm.googleapis.com/x#frag", "fragment"),
        ("https://fcm.googleapis.com", "no path"),
        ("https://fcm.googleapis.com/x y", "characters"),
        ("https://fcm.googleapis.com/x\n", "characters"),
        ("https://fcm.googleapis.com\\@evil.example/x", "characters"),
        ("https://fсm.googleapis.com/x", "characters"),  # Cyrillic "с"
        ("https://fcm.googleapis.com/" + "a" * 2100, "longer than"),
        ("", "empty"),
    ],
)
def test_dangerous_endpoints_refused(endpoint: str, reason: str) -> None:
    with pytest.raises(EndpointNotAllowedError, match=reason):
        POLICY.check(endpoint)


def test_extra_loopback_origin_for_tests() -> None:
    policy = EndpointPolicy(["http://127.0.0.1:18080"])
    assert policy.check("http://127.0.0.1:18080/push/abc") == "http://127.0.0.1:18080/push/abc"
    for refused in (
        "http://127.0.0.1:18081/push/abc",  # other port
        "http://127.0.0.1/push/abc",
        "https://127.0.0.1:18080/push/abc",  # other scheme
    ):
        with pytest.raises(EndpointNotAllowedError):
            policy.check(refused)
    assert policy.check("https://fcm.googleapis.com/x")  # defaults still there


def test_from_env_value() -> None:
    policy = EndpointPolicy.from_env_value(
        " https://push.gov.example:8443 , https://*.push.region.example,"
    )
    assert policy.check("https://push.gov.example:8443/p/1")
    assert policy.check("https://n1.push.region.example/p/1")
    with pytest.raises(EndpointNotAllowedError):
        policy.check("https://push.gov.example/p/1")  # the port is part of the origin
    assert "https://push.gov.example:8443" in policy.origins
    assert EndpointPolicy.from_env_value(None).origins == EndpointPolicy().origins
    assert EndpointPolicy.from_env_value("").origins == EndpointPolicy().origins


@pytest.mark.parametrize(
    "origin",
    [
        "http://push.example",  # plain http off loopback
        "http://10.0.0.5:8080",
        "https://push.example/path",
        "https://user@push.example",
        "https://*.com",
        "ftp://push.example",
        "push.example",
        "https://push.example:notaport",
        "https://push example",
    ],
)
def test_bad_extra_origins_fail_at_startup(origin: str) -> None:
    with pytest.raises(ValueError):
        EndpointPolicy([origin])

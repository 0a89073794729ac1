"""Which push endpoints we are willing to POST to.

A push endpoint is a URL chosen by the browser — and so by anyone who can call the
subscription API. Without a check, the worker would POST to whatever it is given:
``http://169.254.169.254/`` (cloud metadata), ``https://10.0.0.5:8443/`` (internal admin
panels), and so on. We therefore accept only the origins of known push services plus the
operator's explicit extras (``KABINET_PUSH_ENDPOINT_ALLOWLIST``), matched exactly after
strict parsing, and the sender re-checks every endpoint before each request.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_PUSH_ORIGINS",
    "MAX_ENDPOINT_LENGTH",
    "EndpointNotAllowedError",
    "EndpointPolicy",
]

DEFAULT_PUSH_ORIGINS: Final = (
    "https://fcm.googleapis.com",  # Chrome, Edge on Android, Opera, Samsung Internet
    "https://updates.push.services.mozilla.com",  # Firefox
    "https://web.push.apple.com",  # Safari on macOS and iPadOS
    "https://*.notify.windows.com",  # Edge on Windows (WNS)
)

# Real endpoints are 150-500 characters (WNS tokens are the longest); anything much longer
# is not from a browser.
MAX_ENDPOINT_LENGTH: Final = 2048

# RFC 3986 unreserved + reserved + '%'. Everything else (spaces, control characters,
# backslashes, non-ASCII) is refused outright: different URL parsers disagree about such
# input, and a disagreement between our check and the HTTP client is an SSRF.
_URL_CHARS: Final = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}


class EndpointNotAllowedError(ValueError):
    """The push endpoint is malformed or points outside the allowed push services."""


@dataclass(frozen=True, slots=True)
class _Origin:
    scheme: str
    host: str  # lower-case; IPv6 without brackets; "*.suffix" for a wildcard
    port: int

    @property
    def is_wildcard(self) -> bool:
        return self.host.startswith("*.")

    def matches(self, scheme: str, host: str, port: int) -> bool:
        if scheme != self.scheme or port != self.port:
            return False
        if self.is_wildcard:
            # One DNS label, like a TLS wildcard: "a.notify.windows.com", not
            # "notify.windows.com" nor "evil.com.x.notify.windows.com" tricks.
            label, dot, rest = host.partition(".")
            return bool(dot) and rest == self.host[2:] and bool(_LABEL.fullmatch(label))
        return host == self.host


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_origin(text: str) -> _Origin:
    raw = text.strip()
    if not _URL_CHARS.fullmatch(raw):
        raise ValueError(f"push origin {text!r} contains characters not allowed in a URL")
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"push origin {text!r} must be https:// (or http:// on loopback)")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"push origin {text!r} must be scheme://host[:port] only")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise ValueError(f"push origin {text!r} has an invalid port") from None
    host = (parts.hostname or "").lower()
    wildcard = host.startswith("*.")
    name = host[2:] if wildcard else host
    if not name or not (_is_ip_literal(name) or all(_LABEL.fullmatch(x) for x in name.split("."))):
        raise ValueError(f"push origin {text!r} has an invalid host")
    if wildcard and (_is_ip_literal(name) or name.count(".") < 2):
        # "*.com" would allow a whole TLD; insist on at least "*.name.tld.x".
        raise ValueError(f"push origin {text!r}: wildcard too broad")
    if scheme == "http" and (wildcard or not _is_loopback(host)):
        # Plain http is only for the loopback push service in tests and benchmarks.
        raise ValueError(f"push origin {text!r}: http:// is allowed only for loopback hosts")
    return _Origin(scheme, host, port)


class EndpointPolicy:
    """An allowlist of push-service origins that endpoints are checked against."""

    def __init__(self, extra_origins: Iterable[str] = (), *, include_defaults: bool = True) -> None:
        """Build a policy from the default push services plus ``extra_origins``.

        Extra origins are ``scheme://host[:port]``; ``https://*.example.com`` matches one
        label. ``http://`` is accepted only for loopback hosts (tests, benchmarks). A bad
        origin raises ``ValueError`` so misconfiguration fails at start-up.
        """
        sources = [*(DEFAULT_PUSH_ORIGINS if include_defaults else ()), *extra_origins]
        self._origins = tuple(_parse_origin(o) for o in sources)

    @classmethod
    def from_env_value(cls, value: str | None) -> EndpointPolicy:
        """Policy from a comma-separated origin list, e.g. ``KABINET_PUSH_ENDPOINT_ALLOWLIST``."""
        extras = [item.strip() for item in (value or "").split(",") if item.strip()]
        return cls(extras)

    @property
    def origins(self) -> tuple[str, ...]:
        """The allowed origins, normalised, for logs and diagnostics."""
        return tuple(
            f"{o.scheme}://{f'[{o.host}]' if ':' in o.host else o.host}"
            + ("" if o.port == _DEFAULT_PORTS[o.scheme] else f":{o.port}")
            for o in self._origins
        )

    def check(self, endpoint: str) -> str:
        """Return ``endpoint`` if it may be POSTed to; raise :class:`EndpointNotAllowedError`.

        Refused: over-long URLs, characters outside RFC 3986, schemes other than
        https (http only for an allowlisted loopback origin), userinfo, fragments,
        ports and hosts (including IP literals) that are not exactly an allowed origin.
        """
        if not isinstance(endpoint, str) or not endpoint:
            raise EndpointNotAllowedError("push endpoint is empty")
        if len(endpoint) > MAX_ENDPOINT_LENGTH:
            raise EndpointNotAllowedError(
                f"push endpoint is longer than {MAX_ENDPOINT_LENGTH} characters"
            )
        if not _URL_CHARS.fullmatch(endpoint):
            raise EndpointNotAllowedError("push endpoint contains characters not allowed in a URL")
        parts = urlsplit(endpoint)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise EndpointNotAllowedError(
                f"push endpoint scheme {parts.scheme or '(none)'!r} is not https"
            )
        if "@" in parts.netloc:
            raise EndpointNotAllowedError("push endpoint must not contain user information")
        if parts.fragment or endpoint.endswith("#"):
            raise EndpointNotAllowedError("push endpoint must not contain a fragment")
        if not parts.path.startswith("/"):
            raise EndpointNotAllowedError("push endpoint has no path")
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError:
            raise EndpointNotAllowedError("push endpoint has an invalid port") from None
        host = (parts.hostname or "").lower()
        if not host:
            raise EndpointNotAllowedError("push endpoint has no host")
        for origin in self._origins:
            if origin.matches(scheme, host, port):
                return endpoint
        if _is_ip_literal(host):
            raise EndpointNotAllowedError(
                f"push endpoint host {host} is an IP address, not an allowed push service"
            )
        if scheme == "http":
            raise EndpointNotAllowedError("push endpoint must use https")
        shown = f"{host}:{port}" if port != _DEFAULT_PORTS[scheme] else host
        raise EndpointNotAllowedError(f"push endpoint host {shown} is not an allowed push service")

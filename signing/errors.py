"""Exceptions raised by the signing library.

One base class lets the backend map every signing failure to a single HTTP problem type
while still telling a bad signature from a bad certificate or a wrong PIN.
"""

from __future__ import annotations


class SigningError(Exception):
    """Base class of every error raised by :mod:`signing`."""


class InvalidSignatureError(SigningError):
    """A signature does not verify, or is not a well-formed ECDSA signature."""


class CertificateError(SigningError):
    """A certificate or public key is unusable (wrong algorithm, wrong curve, malformed)."""


class MalformedCmsError(SigningError):
    """CMS or signed-attributes DER cannot be parsed or lacks a required part."""


class TokenError(SigningError):
    """A PKCS#11 token is missing, locked, or refused an operation."""


class WrongPinError(TokenError):
    """The PIN given to unlock a PKCS#11 key was refused by the token."""

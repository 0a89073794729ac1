"""Domain errors. Services raise these; app.py maps them to RFC 9457 problems once."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400
    title = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class Invalid(DomainError):
    status_code = 422
    title = "Invalid input"


class Unauthorized(DomainError):
    status_code = 401
    title = "Not authenticated"


class Forbidden(DomainError):
    status_code = 403
    title = "Forbidden"


class NotFound(DomainError):
    status_code = 404
    title = "Not found"


class Conflict(DomainError):
    status_code = 409
    title = "Conflict"


class TooLarge(DomainError):
    status_code = 413
    title = "Payload too large"


class UnsupportedMedia(DomainError):
    status_code = 415
    title = "Unsupported media type"


class TooManyRequests(DomainError):
    status_code = 429
    title = "Too many requests"


class Unavailable(DomainError):
    status_code = 503
    title = "Service unavailable"

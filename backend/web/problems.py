"""Every error leaves as an RFC 9457 problem (application/problem+json), mapped here once."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from backend.errors import DomainError

PROBLEM = "application/problem+json"
log = structlog.get_logger("kabinet.errors")


def _problem(status: int, title: str, detail: str, **extra: Any) -> Response[dict[str, Any]]:
    headers: dict[str, str] = {}
    retry_after = extra.pop("retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return Response(body, status_code=status, media_type=PROBLEM, headers=headers)


def domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    extra = dict(exc.extra)
    field = extra.pop("field", None)
    if field is not None:
        extra["errors"] = [{"field": field, "message": exc.detail}]
    return _problem(exc.status_code, exc.title, exc.detail, **extra)


def validation_error(
    _: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    errors = []
    for item in exc.extra or []:
        if isinstance(item, dict):
            errors.append(
                {
                    "field": str(item.get("key") or item.get("source") or ""),
                    "message": str(item.get("message", "")),
                }
            )
    return _problem(
        422 if exc.status_code == 400 else exc.status_code,
        "Invalid input",
        exc.detail,
        errors=errors,
    )


def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    headers = exc.headers or {}
    resp = _problem(exc.status_code, type(exc).__name__, exc.detail)
    resp.headers.update(headers)
    return resp


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled", path=request.url.path, error=type(exc).__name__)
    return _problem(500, "Internal server error", "the server failed; the request changed nothing")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}

__all__ = ["EXCEPTION_HANDLERS"]

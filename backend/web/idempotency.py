"""Idempotent decisions: `Idempotency-Key` + one transaction per decision.

The first answer is stored with the decision, in the same transaction, so a retry after a
lost response (a tablet on a flight) replays it and changes nothing. The same key with
another body is 422. If two requests with one key race, the loser finds the winner's
record once the winner commits and replays it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request, Response
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from backend.db.fastread import fetch_rows, insert_write
from backend.db.ids import new_id
from backend.db.models import IdempotencyRecord, utcnow
from backend.domain.accounts.access import Principal
from backend.domain.cabinet.marks import write_marks
from backend.errors import Conflict, DomainError, Invalid

HEADER = "idempotency-key"
_encoder = msgspec.json.Encoder()


def _hash(request: Request[Any, Any, Any], body: object) -> str:
    h = hashlib.sha256()
    h.update(request.method.encode())
    h.update(b" ")
    h.update(request.url.path.encode())
    h.update(b"\n")
    h.update(_encoder.encode(body))
    return h.hexdigest()


_LOOKUP = select(
    IdempotencyRecord.request_hash, IdempotencyRecord.status_code, IdempotencyRecord.response_body
).where(
    IdempotencyRecord.user_id == bindparam("user_id", type_=Uuid()),
    IdempotencyRecord.key == bindparam("key"),
)


async def _lookup(db: AsyncSession, user_id: uuid.UUID, key: str) -> tuple[str, int, str] | None:
    """(request hash, status, body) of the answer stored under this user's key, if any."""
    rows = await fetch_rows(db, _LOOKUP, {"user_id": user_id, "key": key})
    return (rows[0][0], rows[0][1], rows[0][2]) if rows else None


def _replay(rec: tuple[str, int, str], request_hash: str) -> Response[bytes]:
    stored_hash, status_code, body = rec
    if stored_hash != request_hash:
        raise Invalid("this Idempotency-Key was used with another request", field="Idempotency-Key")
    return Response(
        body.encode(),
        status_code=status_code,
        media_type="application/json",
        headers={"Idempotent-Replayed": "true"},
    )


async def run_decision(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    principal: Principal,
    body: object,
    decide: Callable[[], Awaitable[msgspec.Struct]],
    status_code: int = 201,
) -> Response[bytes]:
    """Run `decide` (which writes without committing) and commit it with its answer."""
    key = request.headers.get(HEADER)
    if key is not None and not 1 <= len(key) <= 200:
        raise Invalid("Idempotency-Key must be 1..200 characters", field="Idempotency-Key")
    request_hash = _hash(request, body) if key else ""
    # Read before anything can roll back: a rollback expires ORM objects such as the user.
    user_id = principal.user.id
    if key:
        existing = await _lookup(db, user_id, key)
        if existing is not None:
            return _replay(existing, request_hash)
    try:
        out = await decide()
        encoded = _encoder.encode(out)
        answer = []
        if key:
            row = {
                "id": new_id(),
                "user_id": user_id,
                "key": key,
                "request_hash": request_hash,
                "status_code": status_code,
                "response_body": encoded.decode(),
                "created_at": utcnow(),
            }
            answer.append(insert_write(IdempotencyRecord, row))
        # Last, with the answer: the mark rows are locked only for the commit.
        await write_marks(db, also=answer)
        await db.commit()
    except (DomainError, IntegrityError) as exc:
        await db.rollback()
        if key:
            # The same key may have won concurrently: its answer is ours.
            existing = await _lookup(db, user_id, key)
            if existing is not None:
                return _replay(existing, request_hash)
        if isinstance(exc, IntegrityError):
            raise Conflict("a concurrent change won; reload and decide again") from exc
        raise
    return Response(encoded, status_code=status_code, media_type="application/json")

"""Liveness, readiness (database reachable and migrated)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from backend.db.migrate import head_revision
from backend.web.deps import Services

_HEAD = head_revision()


class OpsController(Controller):
    tags = ["operations"]

    @get("/health", operation_id="health", exclude_from_auth=True, cache_control=None)
    async def health(self) -> dict[str, str]:
        """The process is up (no database round trip: the floor of the framework)."""
        return {"status": "ok"}

    @get("/ready", operation_id="ready")
    async def ready(self, svc: Services) -> Response[dict[str, Any]]:
        """The database answers and its schema is at the head migration."""
        try:
            async with svc.engine.connect() as conn:
                current = (
                    await conn.execute(text("SELECT version_num FROM alembic_version"))
                ).scalar()
        except SQLAlchemyError as exc:
            return Response(
                {"status": "unavailable", "detail": type(exc).__name__}, status_code=503
            )
        if current != _HEAD:
            return Response(
                {"status": "unavailable", "detail": f"schema at {current}, code expects {_HEAD}"},
                status_code=503,
            )
        return Response({"status": "ready", "schema": current})

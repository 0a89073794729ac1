"""The org directory for pickers."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.domain.accounts.access import Principal
from backend.domain.orgs import services
from backend.domain.orgs.schemas import PositionPage


class PositionController(Controller):
    path = "/api/v1/positions"
    tags = ["orgs"]

    @get("/", operation_id="searchPositions")
    async def search(
        self,
        principal: Principal,
        db: AsyncSession,
        q: Annotated[str, Parameter(max_length=100)],
        limit: Annotated[int, Parameter(ge=1, le=50)] = 20,
    ) -> PositionPage:
        """Positions whose title, organisation or holder matches every word of `q`."""
        return PositionPage(await services.search_positions(db, q, limit))

"""The production calendar, read-only over HTTP (an administrator loads a year with
`kabinet calendar YEAR FILE`)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.domain.accounts.access import Principal
from backend.domain.calendar import schemas, services


class CalendarController(Controller):
    path = "/api/v1/calendar"
    tags = ["calendar"]

    @get("/{year:int}", operation_id="calendarYear")
    async def year(
        self,
        year: Annotated[int, Parameter(ge=2000, le=2100)],
        principal: Principal,
        db: AsyncSession,
    ) -> schemas.YearOut:
        """Exceptions to the Monday–Friday week in a year: holidays and transferred days."""
        del principal  # any signed-in user may read the calendar
        days = await services.year_days(db, year)
        return schemas.YearOut(year, [schemas.DayOut(d, w, n) for d, w, n in days])

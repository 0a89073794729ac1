"""Working days on the production calendar: weekends, public holidays, transferred days."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, bindparam, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.fastread import fetch_rows
from backend.db.models import CalendarDay
from backend.domain.calendar.data import CALENDARS
from backend.errors import Invalid

Exceptions = dict[dt.date, bool]
# Every route stage that starts reads this (a visa completing a stage among them).
_EXCEPTIONS = select(CalendarDay.day, CalendarDay.working, CalendarDay.year).where(
    CalendarDay.year >= bindparam("first", type_=Integer()),
    CalendarDay.year <= bindparam("last", type_=Integer()),
)


async def exceptions_for(session: AsyncSession, first: dt.date, last: dt.date) -> Exceptions:
    """Exceptions to Mon–Fri between two days: a year loaded in the database wins over the
    shipped data for that year."""
    rows = await fetch_rows(session, _EXCEPTIONS, {"first": first.year, "last": last.year})
    loaded_years = {year for _, _, year in rows}
    out: Exceptions = {day: working for day, working, _ in rows}
    for year in range(first.year, last.year + 1):
        if year not in loaded_years:
            out.update({d: w for d, (w, _) in CALENDARS.get(year, {}).items()})
    return out


def is_working(day: dt.date, exceptions: Exceptions) -> bool:
    if day in exceptions:
        return exceptions[day]
    return day.weekday() < 5


def add_working_days_with(start: dt.date, days: int, exceptions: Exceptions) -> dt.date:
    """The `days`-th working day after `start` (start itself not counted)."""
    day = start
    left = days
    while left > 0:
        day += dt.timedelta(days=1)
        if is_working(day, exceptions):
            left -= 1
    return day


async def add_working_days(session: AsyncSession, start: dt.date, days: int) -> dt.date:
    # Generous window: even the January holidays cost fewer than three calendar days a
    # working day on average.
    last = start + dt.timedelta(days=days * 3 + 31)
    return add_working_days_with(start, days, await exceptions_for(session, start, last))


def end_of_day(day: dt.date, tz: str) -> dt.datetime:
    """The moment a deadline day ends in the region: midnight at the start of the next day."""
    nxt = day + dt.timedelta(days=1)
    return dt.datetime(nxt.year, nxt.month, nxt.day, tzinfo=ZoneInfo(tz)).astimezone(dt.UTC)


async def year_days(session: AsyncSession, year: int) -> list[tuple[dt.date, bool, str | None]]:
    rows = (
        await session.execute(
            select(CalendarDay.day, CalendarDay.working, CalendarDay.note)
            .where(CalendarDay.year == year)
            .order_by(CalendarDay.day)
        )
    ).all()
    if rows:
        return [(d, w, n) for d, w, n in rows]
    return [(d, w, n) for d, (w, n) in sorted(CALENDARS.get(year, {}).items())]


async def load_year(
    session: AsyncSession, year: int, days: list[tuple[dt.date, bool, str | None]]
) -> int:
    """Replace one year's calendar (an administrator's action). Caller commits."""
    seen: set[dt.date] = set()
    for day, working, _ in days:
        if day.year != year:
            raise Invalid(f"{day.isoformat()} is not in {year}", field="days")
        if day in seen:
            raise Invalid(f"{day.isoformat()} is listed twice", field="days")
        if working == (day.weekday() < 5):
            kind = "working" if working else "non-working"
            raise Invalid(
                f"{day.isoformat()} is already {kind} by the week; list only exceptions",
                field="days",
            )
        seen.add(day)
    await session.execute(delete(CalendarDay).where(CalendarDay.year == year))
    if days:
        await session.execute(
            insert(CalendarDay),
            [{"day": d, "year": year, "working": w, "note": n} for d, w, n in days],
        )
    return len(days)

"""Working days on the production calendar and the auto-visa job at the deadline."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from backend.db.engine import make_sessionmaker
from backend.db.models import Approval, RouteStage, User
from backend.domain.accounts.access import Principal, load_principal
from backend.domain.calendar.data import CALENDARS
from backend.domain.calendar.services import (
    add_working_days,
    add_working_days_with,
    end_of_day,
    load_year,
)
from backend.domain.documents.visibility import visible_document
from backend.domain.routes.services import start_route
from backend.errors import Invalid
from backend.jobs.registry import JOBS, run_due
from tests.backend.conftest import Env
from tests.backend.workflow import card, create_draft, open_items, route_draft, scalar

D = dt.date


def test_2026_has_247_working_days() -> None:
    exceptions = {d: w for d, (w, _) in CALENDARS[2026].items()}
    days = [D(2026, 1, 1) + dt.timedelta(days=i) for i in range(365)]
    working = [d for d in days if exceptions.get(d, d.weekday() < 5)]
    assert len(working) == 247


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (D(2026, 11, 3), 2, D(2026, 11, 6)),  # Nov 4 is a holiday
        (D(2026, 3, 6), 1, D(2026, 3, 10)),  # Mar 8 is a Sunday: Mar 9 off
        (D(2026, 5, 8), 1, D(2026, 5, 12)),  # May 9 Saturday: May 11 off
        (D(2026, 12, 29), 1, D(2026, 12, 30)),
        (D(2026, 1, 1), 1, D(2026, 1, 12)),  # New Year holidays through Jan 11
        (D(2026, 11, 6), 1, D(2026, 11, 9)),  # a plain weekend
    ],
)
def test_add_working_days(start: dt.date, n: int, expected: dt.date) -> None:
    exceptions = {d: w for d, (w, _) in CALENDARS[2026].items()}
    assert add_working_days_with(start, n, exceptions) == expected


async def test_admin_loads_a_year(env: Env) -> None:
    sessions = make_sessionmaker(env.engine)
    async with sessions() as s:
        with pytest.raises(Invalid):
            await load_year(s, 2031, [(D(2031, 1, 4), False, "суббота")])
        # 2031: Monday Jan 6 off, Saturday Jan 11 working.
        await load_year(
            s, 2031, [(D(2031, 1, 6), False, "праздник"), (D(2031, 1, 11), True, "рабочая")]
        )
        await s.commit()
        assert await add_working_days(s, D(2031, 1, 3), 1) == D(2031, 1, 7)
        assert await add_working_days(s, D(2031, 1, 10), 1) == D(2031, 1, 11)
        r = await env.client.get("/api/v1/calendar/2031", headers=await env.login("clerk"))
        assert r.status_code == 200
        assert r.json()["days"][0] == {"date": "2031-01-06", "working": False, "note": "праздник"}


async def test_auto_visa_exactly_at_the_working_day_deadline(env: Env) -> None:
    assert "auto_visa" in JOBS
    tz = ZoneInfo(env.settings.timezone)
    doc = await create_draft(env)
    await route_draft(
        env,
        doc,
        [["minister.digital", "minister.finance"], ["first.deputy"]],
        ["governor"],
        deadline_days=2,
        start=False,
    )
    started = dt.datetime(2026, 11, 3, 10, 0, tzinfo=tz)  # Tuesday before the Nov 4 holiday
    sessions = make_sessionmaker(env.engine)
    async with sessions() as s:
        user = await s.scalar(select(User).where(User.login == "lawyer"))
        assert user is not None
        found = await load_principal(s, user.id, started)
        assert found is not None
        principal = Principal(found[0], uuid.uuid4(), found[1])
        document = await visible_document(s, principal, uuid.UUID(doc["id"]))
        await start_route(s, principal, document, started, env.settings.timezone)
        await s.commit()
    stage = await scalar(
        env,
        select(RouteStage.deadline)
        .join(Approval, Approval.stage_id == RouteStage.id)
        .where(Approval.document_id == uuid.UUID(doc["id"])),
    )
    assert stage == D(2026, 11, 6)
    assert end_of_day(stage, env.settings.timezone) == dt.datetime(2026, 11, 7, tzinfo=tz)
    # One approver answers in time.
    from tests.backend.workflow import visa

    assert (await visa(env, doc["id"], "minister.digital")).status_code == 201

    async def autos() -> int:
        return int(
            await scalar(
                env,
                select(func.count())
                .select_from(Approval)
                .where(Approval.document_id == uuid.UUID(doc["id"]), Approval.auto.is_(True)),
            )
        )

    # Without the holiday the deadline would have ended at Nov 6, 00:00.
    await run_due(env.settings, dt.datetime(2026, 11, 6, 0, 0, tzinfo=tz))
    await run_due(env.settings, dt.datetime(2026, 11, 6, 23, 59, 59, tzinfo=tz))
    assert await autos() == 0
    ran = await run_due(env.settings, dt.datetime(2026, 11, 7, 0, 0, tzinfo=tz))
    assert "auto_visa" in ran
    assert await autos() == 1
    c = await card(env, doc["id"])
    first = c["route"]["stages"][0]
    auto = [a for a in first["approvers"] if a["auto"]]
    assert auto[0]["position_id"] == await env.own_position("minister.finance")
    assert auto[0]["decision"] == "approved" and auto[0]["file_sha256"] == doc["files"][0]["sha256"]
    assert first["state"] == "done" and c["route"]["current_stage"] == 1
    assert "visa.auto_approved" in [h["action"] for h in c["history"]]
    # The route moved on: the next stage is asked, and running again changes nothing.
    assert await open_items(env, doc["id"], "visa") == [await env.own_position("first.deputy")]
    await run_due(env.settings, dt.datetime(2026, 11, 7, 0, 0, tzinfo=tz))
    assert await autos() == 1

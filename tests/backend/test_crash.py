"""A process killed in the middle of a decision leaves all of it or nothing.

A real subprocess makes a visa decision with the backend's services against the test
database (a file SQLite database and PostgreSQL), flushes everything the decision writes —
the approval, the closed cabinet item, the next stage's requests, the audit record, the
outbox event — reports what it sees inside its transaction, and then waits before commit.
The test kills it with SIGKILL there and checks the database from outside."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid

from sqlalchemy import func, select

from backend.db.models import Approval, AuditEvent, CabinetItem, OutboxEvent, Route
from tests.backend.conftest import Env
from tests.backend.workflow import create_draft, open_items, route_draft, scalar, visa

# The decision, as a script: the pause before commit is this test's hook, not the product's.
SCRIPT = r"""
import asyncio, sys, uuid
from sqlalchemy import func, select
from backend.clock import utcnow
from backend.db.engine import make_engine, make_sessionmaker
from backend.db.models import Approval, AuditEvent, OutboxEvent, User
from backend.domain.accounts.access import Principal, load_principal
from backend.domain.documents.visibility import visible_document
from backend.domain.routes.schemas import VisaIn
from backend.domain.routes.services import decide_visa
from backend.settings import load_settings


async def main() -> None:
    doc_id, login, sha = sys.argv[1:4]
    settings = load_settings()
    engine = make_engine(settings)
    async with make_sessionmaker(engine)() as s:
        now = utcnow()
        user = await s.scalar(select(User).where(User.login == login))
        found = await load_principal(s, user.id, now)
        assert found is not None
        principal = Principal(found[0], uuid.uuid4(), found[1])
        doc = await visible_document(s, principal, uuid.UUID(doc_id))
        own = next(c.position_id for c in principal.cabinets if c.role == "own")
        data = VisaIn(position_id=own, decision="approved", file_sha256=sha)
        out = await decide_visa(s, principal, doc.id, data, now, settings.timezone)
        await s.flush()
        decided = await s.scalar(
            select(func.count()).select_from(Approval)
            .where(Approval.document_id == doc.id, Approval.decision.is_not(None))
        )
        audit = await s.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.document_id == doc.id)
        )
        events = await s.scalar(select(func.count()).select_from(OutboxEvent))
        print(f"inside decided={decided} audit={audit} outbox={events} "
              f"route={out.route_state}", flush=True)
        await asyncio.Event().wait()  # killed here, before commit


asyncio.run(main())
"""

NO_HANG = 120


async def _state(env: Env, doc_id: uuid.UUID) -> tuple[int, int, int, int, int, int]:
    decided = await scalar(
        env,
        select(func.count())
        .select_from(Approval)
        .where(Approval.document_id == doc_id, Approval.decision.is_not(None)),
    )
    asked = await scalar(
        env, select(func.count()).select_from(Approval).where(Approval.document_id == doc_id)
    )
    audit = await scalar(
        env, select(func.count()).select_from(AuditEvent).where(AuditEvent.document_id == doc_id)
    )
    events = await scalar(env, select(func.count()).select_from(OutboxEvent))
    version = await scalar(env, select(Route.version).where(Route.document_id == doc_id))
    closed = await scalar(
        env,
        select(func.count())
        .select_from(CabinetItem)
        .where(CabinetItem.document_id == doc_id, CabinetItem.state == "done"),
    )
    return decided, asked, audit, events, version, closed


async def test_sigkill_inside_a_decision_leaves_nothing(env: Env) -> None:
    doc = await create_draft(env)
    # One approver in the first stage: the visa also completes the stage and asks the next.
    await route_draft(env, doc, [["minister.digital"], ["first.deputy"]], ["governor"])
    doc_id = uuid.UUID(doc["id"])
    sha = doc["files"][0]["sha256"]
    digital = await env.own_position("minister.digital")
    before = await _state(env, doc_id)
    assert before[:2] == (0, 1)

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SCRIPT,
        doc["id"],
        "minister.digital",
        sha,
        env={
            **os.environ,
            "KABINET_DATA_DIR": str(env.settings.data_dir),
            "KABINET_DATABASE_URL": env.settings.database_url,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), NO_HANG)).decode()
    if not line.startswith("inside"):
        proc.kill()
        raise AssertionError((await proc.stderr.read()).decode())
    # Inside its transaction the decision is complete: visa, audit, events, next stage.
    inside = dict(kv.split("=") for kv in line.split()[1:])
    assert int(inside["decided"]) == 1 and inside["route"] == "active"
    assert int(inside["audit"]) > before[2] and int(inside["outbox"]) > before[3]

    proc.send_signal(signal.SIGKILL)
    assert await proc.wait() == -signal.SIGKILL

    # Nothing of it is in the database: no approval, audit, outbox row, closed item, stage.
    assert await _state(env, doc_id) == before
    assert await open_items(env, doc["id"], "visa") == [digital]

    # The same decision then goes through normally (PostgreSQL has rolled back the dead
    # session and released the route's row lock; SQLite's lock died with the process).
    r = await asyncio.wait_for(visa(env, doc["id"], "minister.digital", sha=sha), NO_HANG)
    assert r.status_code == 201, r.text
    assert r.json()["route_state"] == "active"
    assert await open_items(env, doc["id"], "visa") == [await env.own_position("first.deputy")]
    decided, asked, audit, events, version, closed = await _state(env, doc_id)
    assert (decided, asked, version, closed) == (1, 2, before[4] + 1, before[5] + 1)
    assert audit > before[2] and events > before[3]

"""The direct-driver path returns what `session.execute` returns, and never runs a
statement outside a transaction the caller has begun: reads, and writes with RETURNING."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Integer,
    Interval,
    String,
    Uuid,
    bindparam,
    cast,
    column,
    func,
    literal,
    select,
    table,
    text,
    update,
    values,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from backend.db.fastread import (
    Write,
    close_lane,
    fetch_rows,
    fetch_together,
    insert_row,
    insert_write,
    parked,
    run_writes,
)
from backend.db.ids import new_id
from backend.db.models import (
    CabinetItem,
    Document,
    IdempotencyRecord,
    OutboxEvent,
    UtcDateTime,
)
from backend.domain.cabinet.services import _queue_statement
from backend.domain.documents.services import _card_parts
from tests.backend.conftest import Env

_ITEM = select(CabinetItem.id, CabinetItem.received_at, CabinetItem.expected_action).where(
    CabinetItem.id == bindparam("item_id")
)
_NOW = select(func.now())
_BACKEND_PID = select(func.pg_backend_pid())
_PROBE = (
    update(CabinetItem)
    .where(CabinetItem.id == bindparam("item"))
    .values(expected_action=bindparam("action"))
    .returning(CabinetItem.id, CabinetItem.expected_action)
    .execution_options(synchronize_session=False)
)
_CLOSE = (
    update(CabinetItem)
    .where(CabinetItem.id == bindparam("item"))
    .values(state="done", done_at=func.now())
    .returning(CabinetItem.id, CabinetItem.state, CabinetItem.done_at)
    .execution_options(synchronize_session=False)
)
pg_stat = table("pg_stat_activity", column("pid"), column("datname"))
_EXPANDING = select(CabinetItem.id).where(CabinetItem.id.in_(bindparam("ids", expanding=True)))


async def test_same_rows_as_the_session(env: Env) -> None:
    position = uuid.UUID(await env.own_position("governor"))
    svc = env.app.state.services
    first = {"position_id": position, "folder": "resolve", "limit": 5}
    async with svc.readers() as session:
        result = await session.execute(_queue_statement(False, True), first)
        expected = [tuple(r) for r in result.all()]
        got = await fetch_rows(session, _queue_statement(False, True), first)
        assert [tuple(r) for r in got] == expected and len(got) == 5
        # The keyset variant binds a UTC datetime through the column type's processor.
        after = {**first, "at": expected[-1][5], "last_id": expected[-1][0]}
        expected_next = (await session.execute(_queue_statement(True, True), after)).all()
        got_next = await fetch_rows(session, _queue_statement(True, True), after)
        assert [tuple(r) for r in got_next] == [tuple(r) for r in expected_next]
        assert got_next and got_next[0][5] <= expected[-1][5]
        assert all(r[5].tzinfo is not None and r[5].utcoffset() == dt.timedelta(0) for r in got)


async def test_reads_inside_the_callers_transaction(env: Env) -> None:
    position = uuid.UUID(await env.own_position("governor"))
    svc = env.app.state.services
    page = {"position_id": position, "folder": "resolve", "limit": 1}
    async with svc.sessions() as session:
        # Nothing begun yet: fetch_rows begins the transaction (BEGIN sent) and runs in it.
        [row] = await fetch_rows(session, _queue_statement(False, True), page)
        item_id = row[0]
        await session.execute(
            update(CabinetItem).where(CabinetItem.id == item_id).values(expected_action="probe")
        )
        # Now begun: whichever way it runs, it must see this transaction's own write.
        [seen] = await fetch_rows(session, _ITEM, {"item_id": item_id})
        assert seen[2] == "probe"
        # And it runs in the same transaction: now() is the transaction's start time.
        if env.name == "pg":
            [(inside,)] = await fetch_rows(session, _NOW, {})
            await asyncio.sleep(0.02)
            assert inside == await session.scalar(select(func.now()))
        await session.rollback()
    async with svc.readers() as session:
        [after] = await fetch_rows(session, _ITEM, {"item_id": item_id})
        assert after[2] != "probe"


async def test_expanding_or_missing_parameters_are_refused_on_postgresql(env: Env) -> None:
    if env.name != "pg":
        pytest.skip("SQLite always goes through the session")
    async with env.app.state.services.readers() as session:
        with pytest.raises(ValueError, match="expanding"):
            await fetch_rows(session, _EXPANDING, {"ids": [uuid.uuid4()]})
        with pytest.raises(ValueError, match="no value for item_id"):
            await fetch_rows(session, _ITEM, {})


async def test_a_lost_connection_is_not_handed_back_to_the_pool(env: Env) -> None:
    if env.name != "pg":
        pytest.skip("a PostgreSQL backend is terminated")
    svc = env.app.state.services
    async with svc.readers() as session:
        conn = await session.connection()
        [(pid,)] = await fetch_rows(session, _BACKEND_PID, {})
        async with svc.engine.connect() as other:
            await other.execute(select(func.pg_terminate_backend(pid)))
        # asyncpg's error or the OS's, whichever the termination reaches first.
        with pytest.raises(Exception) as info:
            await fetch_rows(session, _BACKEND_PID, {})
        assert conn.invalidated, repr(info.value)
    async with svc.readers() as session:
        [(fresh,)] = await fetch_rows(session, _BACKEND_PID, {})
        assert fresh != pid


async def test_a_connection_lost_before_begin_is_not_handed_back_to_the_pool(env: Env) -> None:
    if env.name != "pg":
        pytest.skip("a PostgreSQL backend is terminated")
    # One pooled connection: what the first session gave back is what the next one gets.
    engine = create_async_engine(env.settings.database_url, pool_size=1, max_overflow=0)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with sessions() as session:
            [(pid,)] = await fetch_rows(session, _BACKEND_PID, {})
            await session.commit()
        async with env.engine.connect() as other:
            await other.execute(select(func.pg_terminate_backend(pid)))
        async with sessions() as session:
            # fetch_rows sends the BEGIN itself: it fails there, on the dead connection.
            with pytest.raises(Exception):  # noqa: B017 - asyncpg's error or the OS's
                await fetch_rows(session, _BACKEND_PID, {})
        async with sessions() as session:
            [(fresh,)] = await fetch_rows(session, _BACKEND_PID, {})
            assert fresh != pid
    finally:
        await close_lane(engine)
        await engine.dispose()


async def test_a_read_only_session_reads_on_a_pool_connection_until_the_orm_takes_one(
    env: Env,
) -> None:
    if env.name != "pg":
        pytest.skip("SQLite always goes through the session")
    svc = env.app.state.services
    pool = svc.engine.sync_engine.pool

    def held() -> int:  # checked out of the pool, not parked in the read lane
        return pool.checkedout() - parked(svc.engine)

    idle = held()
    async with svc.readers() as session:
        [(pid,)] = await fetch_rows(session, _BACKEND_PID, {})
        # The connection went back at once, and the session has none of its own.
        assert held() == idle and not session.in_transaction()
        # Once the ORM holds one, fastread runs on it: one connection per request.
        orm_pid = (await session.execute(_BACKEND_PID)).scalar_one()
        assert await fetch_rows(session, _BACKEND_PID, {}) == [(orm_pid,)]
        assert held() == idle + 1
    assert held() == idle
    assert isinstance(pid, int)


async def test_the_read_lane_reuses_its_connections_and_keeps_a_bounded_few(env: Env) -> None:
    if env.name != "pg":
        pytest.skip("SQLite always goes through the session")
    svc = env.app.state.services
    pool = svc.engine.sync_engine.pool
    await close_lane(svc.engine)
    assert parked(svc.engine) == 0
    before = pool.checkedout()
    # One statement at a time: the same parked connection every time.
    pids = set()
    for _ in range(5):
        async with svc.readers() as session:
            pids |= {row[0] for row in await fetch_rows(session, _BACKEND_PID, {})}
    assert len(pids) == 1 and parked(svc.engine) == 1
    # Many at once: each takes its own, and no more than a quarter of the pool stay parked.
    sessions = [svc.readers() for _ in range(12)]
    slow = select(func.pg_backend_pid(), func.pg_sleep(0.05))
    rows = await asyncio.gather(*(fetch_rows(s, slow, {}) for s in sessions))
    assert len({r[0][0] for r in rows}) == 12
    assert parked(svc.engine) == pool.size() // 4
    for s in sessions:
        await s.close()
    assert pool.checkedout() == before + pool.size() // 4
    # Closing the lane hands them back (the app does this before disposing the engine).
    await close_lane(svc.engine)
    assert parked(svc.engine) == 0 and pool.checkedout() == before


async def test_a_lost_pool_connection_is_dropped_not_reused(env: Env) -> None:
    if env.name != "pg":
        pytest.skip("PostgreSQL backends are terminated")
    svc = env.app.state.services
    # Fill the pool with idle connections, then end every backend of this database but
    # the one doing it: each of them fails once when next used, and must not come back.
    async with svc.readers() as first, svc.readers() as second, svc.readers() as third:
        pids = {(await s.execute(_BACKEND_PID)).scalar_one() for s in (first, second, third)}
    async with svc.engine.connect() as killer:
        own = (await killer.execute(_BACKEND_PID)).scalar_one()
        await killer.execute(
            select(func.pg_terminate_backend(pg_stat.c.pid)).where(
                pg_stat.c.datname == func.current_database(), pg_stat.c.pid != own
            )
        )
    pids.discard(own)  # the killer's connection came from the same pool
    # Every idle connection but the killer's is dead now: each may fail once, no more.
    dead = svc.engine.sync_engine.pool.checkedin() - 1 + parked(svc.engine)
    outcomes: list[int | None] = []
    for _ in range(dead + 5):
        async with svc.readers() as session:
            try:
                [(pid,)] = await fetch_rows(session, _BACKEND_PID, {})
            except Exception:
                outcomes.append(None)
                continue
            outcomes.append(pid)
    assert outcomes.count(None) <= dead
    last = outcomes[-5:]
    assert pids and None not in last and not set(last) & pids, outcomes


async def test_a_write_runs_in_the_callers_transaction_and_rolls_back_with_it(env: Env) -> None:
    position = uuid.UUID(await env.own_position("governor"))
    svc = env.app.state.services
    page = {"position_id": position, "folder": "resolve", "limit": 1}
    async with svc.sessions() as session:
        [row] = await fetch_rows(session, _queue_statement(False, True), page)  # begins
        item_id = row[0]
        # Begun: on PostgreSQL this one goes straight to the driver, inside the transaction.
        assert await fetch_rows(session, _PROBE, {"item": item_id, "action": "probe"}) == [
            (item_id, "probe")
        ]
        assert await fetch_rows(session, _PROBE, {"item": uuid.uuid4(), "action": "x"}) == []
        assert (
            await session.scalar(
                select(CabinetItem.expected_action).where(CabinetItem.id == item_id)
            )
            == "probe"
        )
        with pytest.raises(ValueError, match="RETURNING"):
            await fetch_rows(
                session,
                update(CabinetItem).where(CabinetItem.id == item_id).values(unread=False),
                {},
            )
        await session.rollback()
    async with svc.readers() as session:
        [after] = await fetch_rows(session, _ITEM, {"item_id": item_id})
        assert after[2] != "probe"


async def test_after_a_commit_the_next_statement_runs_in_the_next_transaction(env: Env) -> None:
    # The driver connection is remembered per transaction: one remembered across a commit
    # would run the next write outside any transaction (kept by the rollback below), on a
    # connection the pool may meanwhile have given to another request.
    position = uuid.UUID(await env.own_position("governor"))
    svc = env.app.state.services
    page = {"position_id": position, "folder": "resolve", "limit": 1}
    async with svc.sessions() as session:
        [row] = await fetch_rows(session, _queue_statement(False, True), page)  # begins
        item_id = row[0]
        await fetch_rows(session, _PROBE, {"item": item_id, "action": "committed"})
        await session.commit()
        await fetch_rows(session, _PROBE, {"item": item_id, "action": "rolled back"})
        await fetch_rows(session, _PROBE, {"item": item_id, "action": "rolled back too"})
        await session.rollback()
        with_savepoint = await session.begin_nested()
        await fetch_rows(session, _PROBE, {"item": item_id, "action": "in the savepoint"})
        await with_savepoint.rollback()
        [seen] = await fetch_rows(session, _ITEM, {"item_id": item_id})
        assert seen[2] == "committed"
        await session.rollback()
    async with svc.readers() as session:
        [after] = await fetch_rows(session, _ITEM, {"item_id": item_id})
        assert after[2] == "committed"


async def test_a_connection_handed_to_another_session_is_not_used_through_the_first(
    env: Env,
) -> None:
    if env.name != "pg":
        pytest.skip("SQLite always goes through the session")
    position = uuid.UUID(await env.own_position("governor"))
    page = {"position_id": position, "folder": "resolve", "limit": 1}
    # One pooled connection and one overflow: what the first session gave back after its
    # commit is what the second one takes, and begins a transaction on.
    engine = create_async_engine(env.settings.database_url, pool_size=1, max_overflow=1)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with sessions() as first, sessions() as second:
            [row] = await fetch_rows(first, _queue_statement(False, True), page)  # begins
            item_id = row[0]
            [(pid,)] = await fetch_rows(first, _BACKEND_PID, {})
            await first.commit()
            await second.execute(select(1))  # begins, on the connection `first` gave back
            assert (await second.execute(_BACKEND_PID)).scalar() == pid
            await fetch_rows(first, _PROBE, {"item": item_id, "action": "first's"})
            await first.commit()
            await second.rollback()
        async with sessions() as session:
            [seen] = await fetch_rows(session, _ITEM, {"item_id": item_id})
            assert seen[2] == "first's"
    finally:
        await close_lane(engine)
        await engine.dispose()


async def test_insert_row_raises_integrity_errors_as_sqlalchemy_does(env: Env) -> None:
    me = await env.cabinets("clerk")
    row = {
        "id": new_id(),
        "user_id": uuid.UUID(me["user"]["id"]),
        "key": "fastread-dup",
        "request_hash": "h",
        "status_code": 201,
        "response_body": "{}",
        "created_at": dt.datetime.now(dt.UTC),
    }
    async with env.app.state.services.sessions() as session:
        await insert_row(session, IdempotencyRecord, row)
        # The same (user, key) again: what run_decision treats as "a concurrent request won".
        with pytest.raises(IntegrityError):
            await insert_row(session, IdempotencyRecord, {**row, "id": new_id()})
        await session.rollback()


def _idempotency_row(user_id: uuid.UUID, key: str) -> dict[str, Any]:
    return {
        "id": new_id(),
        "user_id": user_id,
        "key": key,
        "request_hash": "h",
        "status_code": 201,
        "response_body": "{}",
        "created_at": dt.datetime.now(dt.UTC),
    }


async def test_run_writes_gives_each_write_its_own_rows(env: Env) -> None:
    # On PostgreSQL one statement of CTEs: each part's binds renamed apart (two parts use
    # "item"), literal values kept (state 'done'), and each part's RETURNING rows decoded
    # to the types a statement of its own returns.
    position = uuid.UUID(await env.own_position("governor"))
    me = await env.cabinets("clerk")
    svc = env.app.state.services
    page = {"position_id": position, "folder": "resolve", "limit": 3}
    got: dict[str, Sequence[Sequence[Any]]] = {}

    def keep(name: str) -> Any:
        return lambda rows: got.__setitem__(name, rows)

    async with svc.sessions() as session:
        rows = await fetch_rows(session, _queue_statement(False, True), page)
        # Three different rows: parts must not write the same one (run_writes' rule).
        first, second, third = rows[0][0], rows[1][0], rows[2][0]
        record = insert_write(
            IdempotencyRecord, _idempotency_row(uuid.UUID(me["user"]["id"]), "rw")
        )
        await run_writes(
            session,
            (
                Write(_PROBE, {"item": first, "action": "one"}, keep("first")),
                Write(record.stmt, record.params, keep("record")),
                Write(_PROBE, {"item": second, "action": "two"}, keep("second")),
                Write(_CLOSE, {"item": third}, keep("closed")),
                Write(_PROBE, {"item": uuid.uuid4(), "action": "x"}, keep("none")),
            ),
        )
        assert got["first"] == [(first, "one")]
        assert got["second"] == [(second, "two")]
        assert got["record"] == [(record.params["v_id"],)]
        assert got["none"] == []
        [(closed_id, state, done_at)] = got["closed"]
        assert (closed_id, state) == (third, "done")
        assert isinstance(done_at, dt.datetime) and done_at.utcoffset() == dt.timedelta(0)
        [seen] = await fetch_rows(session, _ITEM, {"item_id": second})
        assert seen[2] == "two"
        await session.rollback()


async def test_run_writes_raises_integrity_errors_and_keeps_nothing(env: Env) -> None:
    me = await env.cabinets("clerk")
    user_id = uuid.UUID(me["user"]["id"])
    position = uuid.UUID(await env.own_position("governor"))
    svc = env.app.state.services
    page = {"position_id": position, "folder": "resolve", "limit": 1}
    async with svc.sessions() as session:
        [row] = await fetch_rows(session, _queue_statement(False, True), page)
        await insert_row(session, IdempotencyRecord, _idempotency_row(user_id, "rw-dup"))
        with pytest.raises(IntegrityError):
            await run_writes(
                session,
                (
                    Write(_PROBE, {"item": row[0], "action": "with the duplicate"}),
                    insert_write(IdempotencyRecord, _idempotency_row(user_id, "rw-dup")),
                ),
            )
        await session.rollback()
    async with svc.readers() as session:
        [after] = await fetch_rows(session, _ITEM, {"item_id": row[0]})
        assert after[2] != "with the duplicate"


async def test_insert_row_refuses_to_leave_a_python_default_unset(env: Env) -> None:
    if env.name != "pg":
        pytest.skip("SQLite goes through the session, which computes the default")
    async with env.app.state.services.sessions() as session:
        await session.execute(select(1))  # begun: the next statement goes to the driver
        with pytest.raises(ValueError, match="attempts"):
            await insert_row(
                session,
                OutboxEvent,
                {
                    "id": new_id(),
                    "kind": "x",
                    "payload": {},
                    "created_at": dt.datetime.now(dt.UTC),
                    "available_at": dt.datetime.now(dt.UTC),
                    "done_at": None,
                    "last_error": None,
                },
            )
        await session.rollback()


async def test_run_writes_refuses_a_python_default_unset_in_any_part(env: Env) -> None:
    if env.name != "pg":
        pytest.skip("SQLite goes through the session, which computes the default")
    now = dt.datetime.now(dt.UTC)
    # Compiled together, SQLAlchemy would report the last part's defaults only.
    unset = insert_write(
        OutboxEvent,
        {"id": new_id(), "kind": "x", "payload": {}, "created_at": now, "available_at": now},
    )
    async with env.app.state.services.sessions() as session:
        with pytest.raises(ValueError, match="attempts"):
            await run_writes(session, (unset, Write(_PROBE, {"item": uuid.uuid4(), "action": "x"})))
        await session.rollback()


async def test_pending_orm_changes_are_flushed_first_as_session_execute_would(env: Env) -> None:
    position = uuid.UUID(await env.own_position("governor"))
    page = {"position_id": position, "folder": "resolve", "limit": 1}
    async with env.app.state.services.sessions() as session:
        [row] = await fetch_rows(session, _queue_statement(False, True), page)  # begins
        item = await session.get_one(CabinetItem, row[0])
        item.expected_action = "pending"  # changed in the session, not yet flushed
        [seen] = await fetch_rows(session, _ITEM, {"item_id": item.id})
        assert seen[2] == "pending"
        await session.rollback()


def _exact(parts: list[Sequence[Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
    """The rows with what `==` alone would not compare: a datetime's UTC offset and
    whether it is a date or a datetime."""

    def value(v: Any) -> Any:
        if isinstance(v, dt.datetime):
            return ("datetime", v, v.utcoffset())
        if isinstance(v, dt.date):
            return ("date", v)
        return v

    return [[tuple(value(v) for v in row) for row in rows] for rows in parts]


async def test_fetch_together_returns_what_each_select_returns_alone(env: Env) -> None:
    """Several selects read in one statement (PostgreSQL) return what each returns alone,
    row for row and value for value: every column type the card uses, NULLs, their own
    order and limit, and no rows at all."""
    svc = env.app.state.services
    if env.name == "pg":  # SQLite has no VALUES with column names; it runs them one by one
        rows = [
            (new_id(), dt.datetime(2026, 11, 26, 20, 15, 1, 123456, dt.UTC), dt.date(2026, 11, 27))
            for _ in range(5)
        ]
        rows.append((new_id(), None, None))
        data = values(
            column("id", Uuid()),
            column("at", UtcDateTime()),
            column("day", Date()),
            name="v",
        ).data(rows)
        typed = select(
            data.c.id,
            data.c.at,
            data.c.day,
            literal('ДСП «Совершенно» \\ "x"', String()),
            literal(7, Integer()),
            literal(True, Boolean()),
            cast(literal('{"k": [1, "два"]}'), JSON()),
        )
        parts = (
            typed.order_by(data.c.id.desc()),
            typed.order_by(data.c.id).limit(2),
            typed.where(data.c.id == bindparam("none", type_=Uuid())),
            _queue_statement(False, False),
        )
        position = uuid.UUID(await env.own_position("governor"))
        params = {"none": new_id(), "position_id": position, "folder": "resolve", "limit": 21}
        async with svc.readers() as session:
            together = await fetch_together(session, parts, params)
            alone = [await fetch_rows(session, stmt, params) for stmt in parts]
        assert [len(r) for r in alone][:3] == [6, 2, 0] and len(alone[3]) > 1
        assert _exact(together) == _exact(alone)
        # A server in another zone renders timestamptz in JSON with its offset; the
        # datetimes must still come back as asyncpg gives them: in UTC.
        async with svc.sessions() as session:
            await session.execute(text("SET LOCAL TIME ZONE 'Asia/Vladivostok'"))
            together = await fetch_together(session, parts, params)
        assert _exact(together) == _exact(alone)
    # The card's own parts, on every demo document.
    card_parts = _card_parts()
    async with svc.readers() as session:
        for (document_id,) in await fetch_rows(session, select(Document.id), {}):
            params = {"document_id": document_id, "of_document": document_id}
            together = await fetch_together(session, card_parts, params)
            alone = [await fetch_rows(session, stmt, params) for stmt in card_parts]
            assert _exact(together) == _exact(alone), document_id


async def test_fetch_together_refuses_a_column_it_cannot_decode(env: Env) -> None:
    if env.name != "pg":
        pytest.skip("SQLite runs the selects one by one")
    svc = env.app.state.services
    interval = (select(cast(literal("1 day"), Interval())),)
    distinct = (select(Document.kind).distinct(),)
    async with svc.readers() as session:
        with pytest.raises(ValueError, match="no JSON decoding for Interval"):
            await fetch_together(session, interval, {})
        with pytest.raises(ValueError, match="DISTINCT"):
            await fetch_together(session, distinct, {})

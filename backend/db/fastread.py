"""Hot statements run straight on asyncpg, skipping SQLAlchemy's execution layer.

SQLAlchemy still builds and compiles the statement (once) and supplies its own bind and
result processors, so values come back exactly as `session.execute` would return them.
What is skipped is the per-call work around the driver: the greenlet hop, the cursor
adapter, the result metadata and Row objects. On the queue statement (21 rows, 17
columns), CPU per execution on the fifth session's machine (`python -m
bench.driver_overhead --db kb1m`, two runs): raw asyncpg 0.32 / 0.35 ms, this path as a GET
runs it 0.45 / 0.40 ms (session and read lane included), `AsyncSession.execute` 1.11 /
1.07 ms, and 1.52 / 1.44 ms with the BEGIN … ROLLBACK every request used to pay.

Rules for callers:
- pass statements that live for the whole process (module constants or `lru_cache`d
  builders): the compiled form is cached by the statement object;
- no "expanding" IN parameters (use `= ANY(:param)` with an array, or the session);
- on a session it runs inside the session's transaction, begun (BEGIN sent) first if it
  has not been, so it can never run outside a transaction the caller relies on;
- pending ORM changes are flushed first, as `session.execute` would (autoflush);
- an INSERT, UPDATE or DELETE must have RETURNING (its rows are how the caller learns
  what it changed); the ORM does not see such a change, so it is for rows the session
  has not loaded, or that the caller loads afterwards with `populate_existing`.

`fetch_together` reads several selects in one round trip (one statement on PostgreSQL);
their columns must be of a type it can decode from JSON (it refuses any other).

On any other database (SQLite in development and tests) it is `session.execute`.
"""

from __future__ import annotations

import datetime as dt
import uuid
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeAlias

import asyncpg
import msgspec
from sqlalchemy import (
    Delete,
    Insert,
    Select,
    Table,
    Update,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.pool import Pool, PoolProxiedConnection, QueuePool
from sqlalchemy.sql import sqltypes
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import replacement_traverse
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import greenlet_spawn

Processor = Callable[[Any], Any]
# `session.info` flag of the sessions of read-only requests (backend/db/engine.py).
READ_ONLY = "kabinet.read_only"
# Server-side errors that end the connection: class 08 (connection exception) and 57
# (operator intervention: admin or crash shutdown, as when PostgreSQL restarts).
_CONNECTION_LOST = (asyncpg.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError)
# A select of any number of columns of any type, or a write that returns rows.
AnySelect: TypeAlias = Select[*tuple[Any, ...]]
AnyWrite: TypeAlias = Insert | Update | Delete
AnyStatement: TypeAlias = AnySelect | AnyWrite


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # bind parameter names in positional order
    defaults: dict[str, Any]  # values bound by the statement itself (literals)
    required: frozenset[str]  # parameters the caller must give
    binds: tuple[Processor | None, ...]  # per position
    results: tuple[tuple[int, Processor], ...]  # (column index, processor), where one exists


_compiled: dict[tuple[int, str], tuple[AnyStatement, _Compiled]] = {}


def _compile(stmt: AnyStatement, dialect: Dialect) -> _Compiled:
    key = (id(stmt), dialect.name)
    hit = _compiled.get(key)
    if hit is not None and hit[0] is stmt:
        return hit[1]
    compiled = stmt.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    if compiled.insert_prefetch or compiled.update_prefetch:
        # Python-side column defaults are computed by SQLAlchemy's execution context,
        # which this path skips: the caller must give those columns a value.
        missing = [c.name for c in (*compiled.insert_prefetch, *compiled.update_prefetch)]
        raise ValueError(f"fastread: no value for the defaulted column(s) {missing}")
    names = tuple(compiled.positiontup or ())
    for name in names:
        if compiled.binds[name].expanding:
            raise ValueError(f"fastread: expanding parameter {name!r} is not supported")
    bind_procs: dict[str, Any] = dict(compiled._bind_processors)
    binds = tuple(bind_procs.get(n) for n in names)
    results = tuple(
        (i, proc)
        for i, col in enumerate(compiled._result_columns)
        if (proc := col[3]._cached_result_processor(dialect, None)) is not None
    )
    entry = _Compiled(
        sql=str(compiled),
        names=names,
        defaults=dict(compiled.params),
        required=frozenset(n for n in names if compiled.binds[n].required),
        binds=binds,
        results=results,
    )
    # Keep the statement alive with its entry so its id() cannot be reused by another.
    _compiled[key] = (stmt, entry)
    return entry


# `session.info` key: (root transaction, asyncpg connection, AsyncConnection, adapter)
# as `_driver` last found them.
_DRIVER = "kabinet.fastread_driver"


async def _driver(session: AsyncSession) -> tuple[Any, AsyncConnection] | None:
    """The asyncpg connection under the session, if a statement may run on it directly.

    Found once per transaction: asking the session for its connection and that for its
    driver connection is two greenlet hops per statement, and a visa ran ~13 statements
    then (`bench.inprocess visa`, old and new checkouts at once: 4.2-5.3 → 3.0-3.9 ms of CPU
    per visa). The entry is used only while the session is in the same root transaction
    (held here, so its identity cannot be reused by a later one), on a connection still
    valid whose driver-level transaction has begun: after a commit the connection may be
    another session's."""
    sync = session.sync_session
    hit = sync.info.get(_DRIVER)
    if (
        hit is not None
        and hit[0] is sync.get_transaction()
        and not hit[2].invalidated
        and (hit[3].autocommit or hit[3]._transaction is not None)
    ):
        return hit[1], hit[2]
    conn = await session.connection()
    if conn.dialect.driver != "asyncpg":
        return None
    raw = await conn.get_raw_connection()
    adapter: Any = raw.dbapi_connection
    if adapter is None:
        return None
    if not adapter.autocommit and adapter._transaction is None:
        # The session has begun but the driver not yet: SQLAlchemy's asyncpg adapter sends
        # BEGIN before its first statement. Sent here the same way (the adapter's own
        # method, under its lock), a request's first statement goes direct too instead of
        # through `session.execute`: 4.58 → 4.12 M instructions per visa
        # (`bench.instructions`), which CPU time on this VM was too noisy to show.
        try:
            async with adapter._execute_mutex:
                if adapter._transaction is None:
                    await adapter._start_transaction()
        except Exception:
            # What SQLAlchemy did when the BEGIN went with its first statement: a connection
            # that cannot even begin (PostgreSQL restarted) is not handed back to the pool.
            await conn.invalidate()
            raise
    sync.info[_DRIVER] = (sync.get_transaction(), raw.driver_connection, conn, adapter)
    return raw.driver_connection, conn


async def fetch_rows(
    session: AsyncSession, stmt: AnyStatement, params: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """All rows of a select, or of a write's RETURNING, as tuples (positional, like `Row`)."""
    if not isinstance(stmt, Select) and not stmt._returning:
        raise ValueError("fastread: a write must have RETURNING")
    if session.info.get(READ_ONLY) and not session.in_transaction():
        engine = session.bind
        if isinstance(engine, AsyncEngine) and engine.dialect.driver == "asyncpg":
            return await _on_pooled(engine, stmt, params)
    found = await _driver(session)
    if found is None:
        rows: Sequence[Sequence[Any]] = (await session.execute(stmt, params)).all()
        return rows
    driver, conn = found
    if session.autoflush and (session.new or session.dirty or session.deleted):
        await session.flush()
    return await _execute(driver, _compile(stmt, conn.dialect), params, conn.invalidate)


async def _on_pooled(
    engine: AsyncEngine, stmt: AnyStatement, params: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """A read-only request's statement on a connection of its own, handed back at once:
    no session connection is set up. In autocommit every statement takes its own snapshot
    anyway, so nothing differs from running it on the session's connection, and the
    request never holds two connections at once (a later ORM query gets the session's
    own). The connection comes from the engine's read lane (below) when one is parked
    there, and goes back to it."""
    pool = engine.sync_engine.pool
    lane = _lanes.get(pool)
    if lane is None:
        size = pool.size() // 4 if isinstance(pool, QueuePool) else 0
        lane = _lanes[pool] = _Lane(max(1, size))
    pooled = lane.idle.pop() if lane.idle else await engine.raw_connection()
    try:
        rows = await _execute(
            pooled.driver_connection,
            _compile(stmt, engine.dialect),
            params,
            lambda: greenlet_spawn(pooled.invalidate),
        )
    except BaseException:
        # Whatever failed (an SQL error, a lost connection, a cancelled request), the
        # connection goes back through the pool, which resets or discards it.
        await greenlet_spawn(pooled.close)
        raise
    if len(lane.idle) >= lane.size or _lanes.get(pool) is not lane:
        # Full, or closed meanwhile (close_lane during this statement): back to the pool.
        await greenlet_spawn(pooled.close)
    else:
        lane.idle.append(pooled)
    return rows


@dataclass
class _Lane:
    """Pool connections parked for read-only statements, past the pool's own check-out
    and check-in. Those two are a greenlet hop each plus the pool's events and reset: 0.09
    of the 0.16 ms of CPU a one-row SELECT cost through the pool (raw asyncpg: 0.07 ms).
    A parked connection stays checked out of the pool, so the lane keeps at most a quarter
    of it (writers then get the rest: with 20 + 10 overflow, 25); a statement that finds
    the lane empty checks one out as before. A parked connection that died (PostgreSQL
    restarted) fails its next statement once and is discarded, as a pooled one does
    without pre-ping."""

    size: int
    idle: list[PoolProxiedConnection] = field(default_factory=list)


# Per pool, not per engine: engines made with `execution_options` share their pool.
# `engine.dispose()` closes only checked-in connections: `close_lane` first, or the
# parked ones stay open (and keep the old pool alive) for the life of the process.
_lanes: weakref.WeakKeyDictionary[Pool, _Lane] = weakref.WeakKeyDictionary()


def parked(engine: AsyncEngine) -> int:
    """Connections parked in the engine's read lane (checked out of its pool)."""
    lane = _lanes.get(engine.sync_engine.pool)
    return len(lane.idle) if lane is not None else 0


async def close_lane(engine: AsyncEngine) -> None:
    """Hand the lane's connections back to the pool: before `engine.dispose()`, which
    closes only the connections checked in."""
    lane = _lanes.pop(engine.sync_engine.pool, None)
    while lane is not None and lane.idle:
        await greenlet_spawn(lane.idle.pop().close)


async def _execute(
    driver: Any,
    c: _Compiled,
    params: Mapping[str, Any],
    invalidate: Callable[[], Awaitable[Any]],
) -> Sequence[Sequence[Any]]:
    if missing := c.required.difference(params):
        # As SQLAlchemy would: a forgotten parameter must not quietly become NULL.
        raise ValueError(f"fastread: no value for {', '.join(sorted(missing))}")
    args = []
    for name, proc in zip(c.names, c.binds, strict=True):
        value = params[name] if name in params else c.defaults[name]
        args.append(value if proc is None else proc(value))
    try:
        records: list[Any] = await driver.fetch(c.sql, *args)
    except asyncpg.IntegrityConstraintViolationError as exc:
        # As SQLAlchemy raises it: callers tell "a concurrent request won" by this class.
        raise IntegrityError(c.sql, args, exc) from exc
    except Exception as exc:
        # An SQL error leaves the connection usable; anything else (lost connection, OS
        # or protocol state) leaves it in doubt. What SQLAlchemy's own execution does on a
        # lost connection: never hand it back to the pool, or a restarted PostgreSQL
        # would fail every later use of it.
        if not isinstance(exc, asyncpg.PostgresError) or isinstance(exc, _CONNECTION_LOST):
            await invalidate()
        raise
    if not c.results:
        return [tuple(r) for r in records]
    out = []
    for record in records:
        row = list(record)
        for i, proc in c.results:
            row[i] = proc(row[i])
        out.append(tuple(row))
    return out


async def fetch_together(
    session: AsyncSession, stmts: tuple[AnySelect, ...], params: Mapping[str, Any]
) -> list[Sequence[Sequence[Any]]]:
    """The rows of several selects, each as `fetch_rows` returns them, in one round trip.

    On PostgreSQL the selects become scalar subqueries of one statement, each folding its
    rows into a JSON array in its own order (`_together`), which msgspec decodes straight
    into the values asyncpg would have returned (UUIDs, datetimes and dates typed by the
    columns). A round trip cost a cold card more than its statements: about 0.15 ms of CPU
    in `send` alone on this VM, and a card took ten. Elsewhere (SQLite) the selects run one
    after the other. Pass the same `stmts` tuple object every time (a module constant): the
    combined statement and its decoder are built once per tuple.
    Each part is numbered with a window over its ORDER BY, so a part must not be DISTINCT
    (refused) and must order by columns, not by output labels; PostgreSQL takes at most
    100 parts, and 100 columns per part (refused).
    """
    engine = session.bind
    if not (isinstance(engine, AsyncEngine) and engine.dialect.driver == "asyncpg"):
        return [await fetch_rows(session, stmt, params) for stmt in stmts]
    return await _together(stmts, engine.dialect).run(session, params)


# A timestamptz in JSON carries the session's UTC offset; rendered in UTC with a "Z" it
# decodes to what asyncpg returns (an aware UTC datetime) whatever the server's TimeZone.
# Unlike asyncpg, ±infinity come back as None and BC years lose their era: nothing here
# stores either. A timestamptz expression typed as a naive DateTime keeps the offset.
_UTC_JSON = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'


def _json_column(column: Any, type_: Any) -> tuple[Any, Any]:
    """(the column as put into the JSON array, the Python type msgspec decodes it to)."""
    impl = type_
    if isinstance(type_, TypeDecorator):
        # Ours (UtcDateTime) read as their impl does; SQLAlchemy's own (Interval over
        # DateTime, PickleType) do not look like their impl in JSON.
        if type(type_).__module__.startswith("sqlalchemy."):
            raise ValueError(f"fetch_together: no JSON decoding for {type_!r}")
        impl = type_.impl_instance
    if isinstance(impl, sqltypes.JSON):
        return column, Any  # asyncpg decodes json columns too: the value is final
    if isinstance(impl, sqltypes.Uuid):
        return column, uuid.UUID | None
    if isinstance(impl, sqltypes.DateTime):
        if not impl.timezone:
            return column, dt.datetime | None
        return func.to_char(func.timezone("UTC", column), _UTC_JSON), dt.datetime | None
    if isinstance(impl, sqltypes.Date):
        return column, dt.date | None
    if isinstance(impl, sqltypes.Boolean):
        return column, bool | None
    if isinstance(impl, sqltypes.Integer):
        return column, int | None
    if isinstance(impl, sqltypes.String):
        return column, str | None
    raise ValueError(f"fetch_together: no JSON decoding for {type_!r}")


@dataclass(frozen=True)
class _Together:
    """Parts folded into one statement, each into a JSON array (`_fold`, `_combine`)."""

    stmt: AnySelect
    decoder: msgspec.json.Decoder[Any]
    # (part, column, processor): SQLAlchemy result processing left to apply (none of the
    # card's columns has one on asyncpg).
    after: tuple[tuple[int, int, Processor], ...]

    async def run(
        self, session: AsyncSession, params: Mapping[str, Any]
    ) -> list[Sequence[Sequence[Any]]]:
        """Each part's rows, as `fetch_rows` would return them."""
        [(text,)] = await fetch_rows(session, self.stmt, params)
        parts: list[list[tuple[Any, ...]]] = list(self.decoder.decode(text))
        for i, column, process in self.after:
            parts[i] = [(*r[:column], process(r[column]), *r[column + 1 :]) for r in parts[i]]
        return parts  # type: ignore[return-value]


def _fold(
    i: int,
    source: Any,
    columns: Sequence[tuple[Any, Any]],
    dialect: Dialect,
    after: list[tuple[int, int, Processor]],
    order_by: Any = None,
) -> tuple[Any, Any]:
    """Part `i`: the rows of `source` as one JSON array, `columns` being (column, its
    SQLAlchemy type); returns (its scalar subquery, the Python type it decodes to) and
    adds the result processing left to apply to `after`."""
    if len(columns) > 100:
        raise ValueError("fastread: json_build_array takes at most 100 arguments")
    as_json, types = [], []
    for j, (column, type_) in enumerate(columns):
        folded, python_type = _json_column(column, type_)
        as_json.append(folded)
        types.append(python_type)
        process = type_._cached_result_processor(dialect, None)
        if process is not None:
            after.append((i, j, process))
    row = func.json_build_array(*as_json)
    rows = func.json_agg(row if order_by is None else aggregate_order_by(row, order_by))
    part = (
        select(func.coalesce(rows, literal_column("'[]'::json")))
        .select_from(source)
        .scalar_subquery()
    )
    return part, list[tuple[tuple(types)]]  # type: ignore[misc]


def _combine(
    parts: list[Any], part_types: list[Any], after: list[tuple[int, int, Processor]]
) -> _Together:
    if len(parts) > 100:
        raise ValueError("fastread: json_build_array takes at most 100 arguments")
    return _Together(
        stmt=select(cast(func.json_build_array(*parts), sqltypes.Text())),
        decoder=msgspec.json.Decoder(tuple[tuple(part_types)]),  # type: ignore[misc]
        after=tuple(after),
    )


_together_cache: dict[tuple[int, str], tuple[tuple[AnySelect, ...], _Together]] = {}


def _together(stmts: tuple[AnySelect, ...], dialect: Dialect) -> _Together:
    key = (id(stmts), dialect.name)
    hit = _together_cache.get(key)
    if hit is not None and hit[0] is stmts:
        return hit[1]
    parts, part_types = [], []
    after: list[tuple[int, int, Processor]] = []
    for i, stmt in enumerate(stmts):
        if stmt._distinct:
            raise ValueError("fetch_together: a DISTINCT select would lose its DISTINCT")
        # Numbered in the select's own order (before its LIMIT, as the window is), so the
        # array keeps the order the select alone would return.
        numbered = stmt.add_columns(
            func.row_number().over(order_by=stmt._order_by_clauses).label("kb_n")
        ).subquery()
        columns = [
            (column, selected.type)
            for column, selected in zip(list(numbered.c)[:-1], stmt.selected_columns, strict=True)
        ]
        part, part_type = _fold(i, numbered, columns, dialect, after, numbered.c.kb_n)
        parts.append(part)
        part_types.append(part_type)
    entry = _combine(parts, part_types, after)
    _together_cache[key] = (stmts, entry)
    return entry


@lru_cache(maxsize=64)
def _insert_statement(table: Table, columns: tuple[str, ...]) -> Insert:
    values = {c: bindparam(f"v_{c}", type_=table.c[c].type) for c in columns}
    return insert(table).values(values).returning(*table.primary_key.columns)


def insert_write(model: type[Any], row: Mapping[str, Any]) -> Write:
    """The INSERT of one row, for `run_writes`. `row` names every column that has a
    Python-side default (refused otherwise)."""
    table = model.__table__
    assert isinstance(table, Table)
    return Write(_insert_statement(table, tuple(row)), {f"v_{k}": v for k, v in row.items()})


async def insert_row(session: AsyncSession, model: type[Any], row: Mapping[str, Any]) -> None:
    """INSERT one row now, through the path above: for rows a decision writes (items,
    approvals, audit and outbox events on their own), where the ORM's flush was a sixth
    of a visa."""
    await run_writes(session, (insert_write(model, row),))


@dataclass(frozen=True)
class Write:
    """One write for `run_writes`: a statement with RETURNING that lives for the whole
    process (as for `fetch_rows`), its parameters, and what to do with the rows it
    returned (note the cabinets it changed, say)."""

    stmt: AnyWrite
    params: Mapping[str, Any]
    then: Callable[[Sequence[Sequence[Any]]], None] | None = None


async def run_writes(session: AsyncSession, writes: Sequence[Write]) -> None:
    """Run the writes in the session's transaction, in one round trip on PostgreSQL.

    There they become data-modifying CTEs of one statement (`_writes`), each returning its
    rows as a JSON array, decoded as `fetch_together` does. A visa's closing of its item,
    its audit event and its outbox event were three round trips, its idempotency record
    and its cabinet's mark two: together 4.12 → 3.95 M instructions of the app per visa
    (`bench.instructions`), besides three statements fewer for PostgreSQL and three
    round trips fewer through the kernel, which that count leaves out. All parts run on
    one snapshot in an order PostgreSQL chooses: they must not write the same rows, read
    what another part writes, or take row locks that another transaction takes in a set
    order (cabinet marks: one at most, `write_marks`). Elsewhere (SQLite) they run one
    after the other."""
    if not writes:
        return
    engine = session.bind
    if len(writes) == 1 or not (
        isinstance(engine, AsyncEngine) and engine.dialect.driver == "asyncpg"
    ):
        results = [await fetch_rows(session, w.stmt, w.params) for w in writes]
    else:
        params = {f"w{i}_{k}": v for i, w in enumerate(writes) for k, v in w.params.items()}
        combined = _writes(tuple(w.stmt for w in writes), engine.dialect)
        results = await combined.run(session, params)
    for write, rows in zip(writes, results, strict=True):
        if write.then is not None:
            write.then(rows)


_writes_cache: dict[tuple[int, ...], tuple[tuple[AnyWrite, ...], _Together]] = {}


def _renamed(stmt: AnyWrite, prefix: str) -> AnyWrite:
    """The statement with its named parameters prefixed, so that parts do not collide;
    anonymous ones (literal values such as `state='done'`) are unique already."""

    def rename(element: Any, **_: Any) -> Any:
        if isinstance(element, BindParameter) and not element.unique:
            return bindparam(
                prefix + element.key,
                value=element.value,
                type_=element.type,
                required=element.required,
            )
        return None

    renamed = replacement_traverse(stmt, {}, rename)
    assert isinstance(renamed, Insert | Update | Delete)
    return renamed


def _writes(stmts: tuple[AnyWrite, ...], dialect: Dialect) -> _Together:
    key = tuple(id(s) for s in stmts)
    hit = _writes_cache.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], stmts, strict=True)):
        return hit[1]
    parts, part_types = [], []
    after: list[tuple[int, int, Processor]] = []
    for i, stmt in enumerate(stmts):
        if not stmt._returning:
            raise ValueError("run_writes: a write must have RETURNING")
        # Each part alone through fastread's own checks: compiled together, SQLAlchemy
        # reports the Python-side defaults of the last part only, and an expanding IN
        # would not be refused up front.
        _compile(stmt, dialect)
        cte = _renamed(stmt, f"w{i}_").cte(f"w{i}")
        part, part_type = _fold(i, cte, [(c, c.type) for c in cte.c], dialect, after)
        parts.append(part)
        part_types.append(part_type)
    entry = _combine(parts, part_types, after)
    # Keep the statements alive with their entry so their id()s cannot be reused.
    _writes_cache[key] = (stmts, entry)
    return entry

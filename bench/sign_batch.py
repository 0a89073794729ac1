"""Server-side time to sign a batch of N documents (default 100) with a device key.

    .venv/bin/python -m bench.sign_batch [--db sqlite|pg] [--documents 100] [--rounds 3]

A fresh database (SQLite in a temp dir, or PostgreSQL database `kabinet_bench_sign` on
`--pg`, dropped at the end) gets the demo region and N drafts waiting in one executive's
`sign` folder (written straight to the tables, as the route would leave them). The app runs
in this process behind httpx's ASGI transport, so the times are the server's work without
network: `POST /sign-batches` (N sign requests: checks, hashing the stored file, CMS signed
attributes) and `POST /sign-batches/{id}/complete` (per item: signature check, CMS assembly,
signature row, signatory step, registration in the journal, audit, outbox, own commit). The
device's own signing (WebCrypto on the tablet) is done between the two and not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from backend.app import create_app
from backend.db.engine import make_sessionmaker
from backend.db.fastread import close_lane
from backend.db.ids import new_id
from backend.db.migrate import upgrade
from backend.db.models import (
    CabinetItem,
    Document,
    DocumentFile,
    Journal,
    Position,
    PositionHolder,
    Route,
    RouteSignatory,
    User,
)
from backend.demo.loader import load_demo
from backend.demo.pdfs import letter_pdf
from backend.domain.files.storage import BlobStore
from backend.settings import load_settings
from signing import der_to_raw

SIGNER, AUTHOR = "governor", "lawyer"


async def waiting_documents(app: object, n: int) -> list[tuple[str, str]]:
    """N drafts on a route at the signing stage for SIGNER, each with its own PDF bytes."""
    services = app.state.services  # type: ignore[attr-defined]
    sessions = make_sessionmaker(services.engine)
    blobs: BlobStore = services.blobs
    now = dt.datetime.now(dt.UTC)
    base = letter_pdf("Бенчмарк", "проект", "01.12.2026", "Кому", "Проект", ["Текст."], "Я", 1)
    out: list[tuple[str, str]] = []
    async with sessions() as s:

        async def position_of(login: str) -> tuple[uuid.UUID, uuid.UUID]:
            row = (
                await s.execute(
                    select(PositionHolder.position_id, User.id)
                    .join(User, User.id == PositionHolder.user_id)
                    .where(User.login == login)
                )
            ).one()
            return row[0], row[1]

        signer, _ = await position_of(SIGNER)
        author, author_user = await position_of(AUTHOR)
        org = await s.scalar(select(Position.organization_id).where(Position.id == author))
        journal = Journal(
            id=new_id(),
            organization_id=org,
            name=f"Бенчмарк {uuid.uuid4().hex[:6]}",
            kind="outgoing",
            number_format="Б-{seq}",
            year=now.year,
            last_seq=0,
        )
        s.add(journal)
        await s.flush()
        tables: list[list[object]] = [[], [], [], [], []]
        for i in range(n):
            content = base + f"\n% {uuid.uuid4()} {i}\n".encode()
            sha = blobs.put_bytes(content)
            doc_id, route_id, step_id = new_id(), new_id(), new_id()
            tables[0].append(
                Document(
                    id=doc_id,
                    kind="outgoing",
                    title=f"Бенчмарк {i}",
                    state="on_route",
                    organization_id=org,
                    author_position_id=author,
                    created_by_id=author_user,
                    created_at=now,
                )
            )
            tables[1].append(
                Route(
                    id=route_id,
                    document_id=doc_id,
                    state="signing",
                    version=1,
                    journal_id=journal.id,
                    created_at=now,
                    created_by_id=author_user,
                    started_at=now,
                )
            )
            tables[2].append(
                RouteSignatory(
                    id=step_id, route_id=route_id, order=0, position_id=signer, state="waiting"
                )
            )
            tables[3].append(
                DocumentFile(
                    id=new_id(),
                    document_id=doc_id,
                    slot_id=new_id(),
                    role="main",
                    name=f"p{i}.pdf",
                    mime="application/pdf",
                    size=len(content),
                    sha256=sha,
                    version=1,
                    pages=1,
                    is_current=True,
                    created_at=now,
                    created_by_id=author_user,
                )
            )
            tables[4].append(
                CabinetItem(
                    id=new_id(),
                    position_id=signer,
                    folder="sign",
                    document_id=doc_id,
                    ref_id=step_id,
                    state="open",
                    expected_action="sign",
                    received_at=now,
                )
            )
            out.append((str(doc_id), sha))
        for rows in tables:
            s.add_all(rows)
            await s.flush()
        await s.commit()
    return out


async def run(db: str, pg: str, documents: int, rounds: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="kabinet-bench-sign-"))
    pg_db = "kabinet_bench_sign"
    if db == "pg":
        conn = await asyncpg.connect(f"{pg}/postgres")
        await conn.execute(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{pg_db}"')
        await conn.close()
        url = f"{pg.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{pg_db}"
    else:
        url = f"sqlite+aiosqlite:///{data_dir / 'kabinet.db'}"
    settings = dataclasses.replace(
        load_settings(), data_dir=data_dir, database_url=url, log_json=True
    )
    await asyncio.to_thread(upgrade, "head", url)
    app = create_app(settings)
    await load_demo(app.state.services.engine, BlobStore(settings.files_dir), documents=20)
    transport = httpx.ASGITransport(app=app)
    load = os.getloadavg()[0]  # other work on the machine stretches every number below
    create_s: list[float] = []
    complete_s: list[float] = []
    complete_cpu: list[float] = []  # this process's CPU (app + drivers), not the database's
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            r = await client.post("/api/v1/auth/login", json={"login": SIGNER, "password": "demo"})
            h = {"Authorization": f"Bearer {r.json()['access_token']}"}
            me = (await client.get("/api/v1/me", headers=h)).json()
            position = next(c["position_id"] for c in me["cabinets"] if c["role"] == "own")
            key = ec.generate_private_key(ec.SECP256R1())
            spki = key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            r = await client.post(
                "/api/v1/signing/keys",
                json={"public_key_spki": base64.b64encode(spki).decode(), "device_name": "bench"},
                headers=h,
            )
            key_id = r.json()["key_id"]
            for _ in range(rounds):
                docs = await waiting_documents(app, documents)
                items = [{"document_id": d, "file_sha256": sha} for d, sha in docs]
                t0 = time.perf_counter()
                r = await client.post(
                    "/api/v1/sign-batches",
                    json={"position_id": position, "key_id": key_id, "items": items},
                    headers=h,
                )
                create_s.append(time.perf_counter() - t0)
                batch = r.json()
                assert r.status_code == 201 and batch["requested"] == documents, r.text
                signatures = [  # the tablet's part, not timed
                    {
                        "request_id": it["request_id"],
                        "signature": base64.b64encode(
                            der_to_raw(
                                key.sign(
                                    base64.b64decode(it["to_be_signed"]), ec.ECDSA(hashes.SHA256())
                                )
                            )
                        ).decode(),
                    }
                    for it in batch["items"]
                ]
                t0, c0 = time.perf_counter(), time.process_time()
                r = await client.post(
                    f"/api/v1/sign-batches/{batch['batch_id']}/complete",
                    json={"signatures": signatures},
                    headers=h,
                )
                complete_s.append(time.perf_counter() - t0)
                complete_cpu.append(time.process_time() - c0)
                assert r.status_code == 200 and r.json()["signed"] == documents, r.text
    finally:
        await close_lane(app.state.services.engine)
        await app.state.services.engine.dispose()
        if db == "pg":
            conn = await asyncpg.connect(f"{pg}/postgres")
            await conn.execute(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
            await conn.close()

    def fmt(values: list[float]) -> str:
        med = statistics.median(values)
        return f"median {med:.2f} s ({med / documents * 1000:.1f} ms/document), runs " + ", ".join(
            f"{v:.2f}" for v in values
        )

    total = [a + b for a, b in zip(create_s, complete_s, strict=True)]
    command = ["python", "-m", "bench.sign_batch", *sys.argv[1:]]
    print(f"command: {' '.join(command)}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"database: {db}; batch of {documents}; {rounds} rounds; load average {load:.2f}")
    print(f"POST /sign-batches            {fmt(create_s)}")
    print(f"POST /sign-batches/…/complete {fmt(complete_s)}")
    print(f"server total                  {fmt(total)}")
    print(f"complete, app process CPU     {fmt(complete_cpu)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", choices=("sqlite", "pg"), default="sqlite")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--documents", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("KABINET_LOG_FORMAT", "json")
    asyncio.run(run(args.db, args.pg, args.documents, args.rounds))


if __name__ == "__main__":
    main()

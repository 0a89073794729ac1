"""CPU per request of a few endpoints, the app called in-process (no HTTP server, no wrk).

    .venv/bin/python -m bench.inprocess --db kb1m --data-dir /tmp/kb1m health queue card-cold

Needs a loaded bench database and its data dir (`python -m bench.run --keep --db NAME
--data-dir DIR`). Calls the ASGI app directly (lifespan included) and prints the CPU time
of this process (`time.process_time`, so PostgreSQL's share is not in it) per request,
for each endpoint named, twice. `queue-cold` asks for another cabinet's folder each time
(from `--skip` on). `card-cold` asks for a different document by a different user each
time (the pairs `bench.run` uses, from `--skip` on). Of these the first fifth is
unmeasured, to warm the connections. `visa` posts real visas, one after the other, each
another open approval by its approver (the list `bench.run` uses, in its `spread` order,
from `--skip` on; it changes the data, so each run uses approvals no run has used). The
access log goes to stdout; redirect it.

To compare two versions of the code on a noisy machine, run this from two checkouts at
the same time (each with `PYTHONPATH` set to its checkout): both see the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

Headers = list[tuple[bytes, bytes]]
Request = tuple[str, bytes, Headers, bytes]  # path, query, headers, body (POST if any)
Call = Callable[..., Awaitable[tuple[int, bytes]]]


def _caller(app: Any) -> Call:
    async def call(
        path: str, query: bytes = b"", headers: Headers | None = None, body: bytes = b""
    ) -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST" if body else "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "headers": list(headers or []),
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 8000),
            "root_path": "",
            "state": {},
        }
        sent = False
        out: list[bytes] = []
        status = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                out.append(message.get("body", b""))

        await app(scope, receive, send)
        return status, b"".join(out)

    return call


async def _per_request(call: Call, requests: list[Request]) -> float:
    started = time.process_time()
    for path, query, headers, sent in requests:
        status, body = await call(path, query, headers, sent)
        if not 200 <= status < 300:
            raise RuntimeError(f"{path} -> {status}: {body[:300]!r}")
    return (time.process_time() - started) / len(requests) * 1000


async def main(args: argparse.Namespace) -> None:
    from backend.app import create_app
    from bench.decisions import _Tokens, cabinet_folders, pending_visas, spread, visible_cards

    pg = f"{args.pg.rstrip('/')}/{args.db}"
    os.environ["KABINET_DATABASE_URL"] = pg.replace("postgresql://", "postgresql+asyncpg://")
    os.environ["KABINET_DATA_DIR"] = str(args.data_dir)
    app = create_app()
    call = _caller(app)
    async with app.lifespan():
        status, body = await call(
            "/api/v1/auth/login",
            headers=[(b"content-type", b"application/json")],
            body=json.dumps({"login": "governor", "password": "demo"}).encode(),
        )
        if status != 200:
            raise RuntimeError(f"login -> {status}")
        auth = [(b"authorization", f"Bearer {json.loads(body)['access_token']}".encode())]
        me = json.loads((await call("/api/v1/me", headers=auth))[1])
        position = next(c["position_id"] for c in me["cabinets"] if c["role"] == "own")
        cabinet = f"/api/v1/cabinets/{position}"
        same: dict[str, Request] = {
            "health": ("/health", b"", [], b""),
            "me": ("/api/v1/me", b"", auth, b""),
            "folders": (f"{cabinet}/folders", b"", auth, b""),
            "queue": (f"{cabinet}/queue", b"folder=resolve&limit=20", auth, b""),
        }
        tokens = _Tokens(args.data_dir)
        differing: dict[str, list[Request]] = {}
        if "card-cold" in args.endpoints:
            pairs = (await visible_cards(pg, 200_000))[args.skip :]
            differing["card-cold"] = [
                (
                    f"/api/v1/documents/{d}",
                    b"",
                    [(b"authorization", f"Bearer {tokens(u)}".encode())],
                    b"",
                )
                for u, d in pairs[: args.requests * 3]
            ]
        if "queue-cold" in args.endpoints:
            found = (await cabinet_folders(pg))[args.skip :]
            differing["queue-cold"] = [
                (
                    f"/api/v1/cabinets/{p}/queue",
                    f"folder={f}&limit=20".encode(),
                    [(b"authorization", f"Bearer {tokens(u)}".encode())],
                    b"",
                )
                for u, p, f in found[: args.requests * 3]
            ]
        if "visa" in args.endpoints:
            rows = spread(await pending_visas(pg, args.skip + args.requests * 3), 32)
            differing["visa"] = [
                (
                    f"/api/v1/documents/{d}/visas",
                    b"",
                    [
                        (b"authorization", f"Bearer {tokens(u)}".encode()),
                        (b"content-type", b"application/json"),
                        (b"idempotency-key", f"inprocess-{a}-{d}".encode()),
                    ],
                    json.dumps(
                        {"position_id": str(a), "decision": "approved", "file_sha256": sha}
                    ).encode(),
                )
                for u, d, a, sha in rows[args.skip :]
            ]
        for round_ in (1, 2):
            for name in args.endpoints:
                if name in differing:
                    # Every round on requests not sent before, after a warm-up.
                    batch = differing[name][(round_ - 1) * args.requests : round_ * args.requests]
                    warm, batch = batch[: len(batch) // 5], batch[len(batch) // 5 :]
                    await _per_request(call, warm)
                else:
                    batch = [same[name]] * args.requests
                    await _per_request(call, batch[: len(batch) // 10])
                per = await _per_request(call, batch)
                print(f"{name}: {per:.3f} ms CPU per request ({len(batch)})", file=sys.stderr)


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="bench.inprocess", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "endpoints",
        nargs="+",
        choices=["health", "me", "folders", "queue", "queue-cold", "card-cold", "visa"],
    )
    p.add_argument("--db", default="kabinet_bench")
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument(
        "--skip",
        type=int,
        default=0,
        help="queue-cold, card-cold, visa: start this far into the list",
    )
    asyncio.run(main(p.parse_args()))

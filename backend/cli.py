"""The `kabinet` command: migrate, demo, serve, worker, tick, calendar."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys

from backend.settings import get_settings


def _migrate(_: argparse.Namespace) -> int:
    from backend.db.migrate import upgrade

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade()
    print("database migrated", file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from backend.db.engine import make_engine
    from backend.demo.loader import load_demo
    from backend.domain.files.storage import BlobStore

    settings = get_settings()

    async def run() -> int:
        engine = make_engine(settings)
        try:
            result = await load_demo(
                engine,
                BlobStore(settings.files_dir),
                users=args.users,
                documents=args.documents,
                seed=args.seed,
                progress=lambda msg: print(f"  … {msg}", file=sys.stderr),
            )
        finally:
            await engine.dispose()
        if result.skipped:
            print(
                f"demo region already loaded ({result.users} users); nothing to do", file=sys.stderr
            )
        else:
            print(
                f"demo region loaded: {result.users} users, {result.documents} documents, "
                f"{result.items} cabinet items in {result.seconds:.1f} s",
                file=sys.stderr,
            )
        return 0

    return asyncio.run(run())


def _serve(args: argparse.Namespace) -> int:
    import os

    from backend.web.server import serve

    # The jobs run inside the server unless told not to (`--no-jobs`, or KABINET_RUN_JOBS=0
    # when a separate `kabinet worker` runs them). Set in the environment so that every
    # `--workers` process reads it; processes split the jobs with SKIP LOCKED.
    if args.no_jobs:
        os.environ["KABINET_RUN_JOBS"] = "0"
    else:
        os.environ.setdefault("KABINET_RUN_JOBS", "1")
    get_settings.cache_clear()

    return serve(args.host, args.port, args.workers)


def _worker(_: argparse.Namespace) -> int:
    import signal

    from backend.app import build_services
    from backend.jobs.worker import run_loops
    from backend.web.logging import configure_logging

    settings = get_settings()
    configure_logging(json=settings.log_json)

    async def run() -> int:
        services = build_services(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await run_loops(services, stop)
        finally:
            await services.engine.dispose()
        return 0

    return asyncio.run(run())


def _tick(args: argparse.Namespace) -> int:
    from backend.jobs.registry import run_due
    from backend.web.logging import configure_logging

    configure_logging(json=get_settings().log_json)

    at = dt.datetime.fromisoformat(args.at) if args.at else dt.datetime.now(dt.UTC)
    if at.tzinfo is None:
        print("--at needs an offset, e.g. 2026-12-01T09:00:00+12:00", file=sys.stderr)
        return 2
    ran = asyncio.run(run_due(get_settings(), at))
    print(f"{len(ran)} job(s) ran at {at.isoformat()}: {', '.join(ran) or '-'}", file=sys.stderr)
    return 0


def _calendar(args: argparse.Namespace) -> int:
    import msgspec

    from backend.db.engine import make_engine, make_sessionmaker
    from backend.domain.calendar.schemas import YearIn
    from backend.domain.calendar.services import load_year

    with open(args.file, "rb") as fh:
        data = msgspec.json.decode(fh.read(), type=YearIn)

    async def run() -> int:
        engine = make_engine(get_settings())
        try:
            async with make_sessionmaker(engine)() as session:
                n = await load_year(
                    session, args.year, [(d.date, d.working, d.note) for d in data.days]
                )
                await session.commit()
        finally:
            await engine.dispose()
        print(f"calendar {args.year}: {n} exceptions loaded", file=sys.stderr)
        return 0

    return asyncio.run(run())


def _verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from backend.domain.signing.verify_cli import run_verify

    settings = get_settings()
    return run_verify(
        Path(args.file),
        Path(args.sig),
        ca_dir=settings.ca_dir,
        organization=settings.ca_organization,
        ca_file=Path(args.ca_file) if args.ca_file else None,
        crl_file=Path(args.crl_file) if args.crl_file else None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kabinet", description="Kabinet executive cabinet")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=_migrate)
    demo = sub.add_parser("demo", help="load the demo region (once)")
    demo.add_argument("--users", type=int, default=0, help="grow the region to N users")
    demo.add_argument("--documents", type=int, default=300)
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(func=_demo)
    serve = sub.add_parser("serve", help="serve the API and the PWA")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--no-jobs", action="store_true", help="do not run the background jobs in the server"
    )
    serve.set_defaults(func=_serve)
    worker = sub.add_parser("worker", help="run the background jobs without HTTP")
    worker.set_defaults(func=_worker)
    tick = sub.add_parser("tick", help="run the time-driven jobs due at a moment")
    tick.add_argument("--at", help="RFC 3339 timestamp; default now")
    tick.set_defaults(func=_tick)
    cal = sub.add_parser("calendar", help="load a year of the production calendar")
    cal.add_argument("year", type=int)
    cal.add_argument("file", help='JSON {"days": [{"date", "working", "note"}]}: exceptions only')
    cal.set_defaults(func=_calendar)
    verify = sub.add_parser(
        "verify", help="verify a detached CMS signature (.p7s) over a file; exit 0 if valid"
    )
    verify.add_argument("file", help="the signed file")
    verify.add_argument("sig", help="the signature: CMS, DER or PEM")
    verify.add_argument("--ca-file", help="trusted root PEM instead of the CA in the data dir")
    verify.add_argument("--crl-file", help="CRL (DER or PEM) instead of the data dir CA's")
    verify.set_defaults(func=_verify)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())

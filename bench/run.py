"""`make bench`: load a fresh PostgreSQL database with the demo region, serve it, drive the
API with wrk and print throughput and latency per endpoint.

    .venv/bin/python -m bench.run [--documents N --users U --duration S --connections C]

Everything runs on 127.0.0.1. The database (default `kabinet_bench`) is dropped and
recreated at the start and dropped at the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "auth.lua"
WALK_LUA = Path(__file__).resolve().parent / "walk.lua"
KABINET = [sys.executable, "-m", "backend.cli"]


@dataclass
class WrkResult:
    name: str
    workers: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # socket errors (connect, read, write, timeout)
    non_2xx: int
    load_before: float
    # PostgreSQL sessions opened on the database during the run: more than the pool means
    # the app kept opening and closing connections (pool overflow).
    new_sessions: int
    # CPU seconds used during the run by the server's processes and by the PostgreSQL
    # backends of the bench database, per request: contention on the machine stretches
    # latency, but hardly the CPU a request costs.
    app_cpu_ms: float
    pg_cpu_ms: float


# --- wrk -----------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found: installing the Debian package `wrk`", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, stdout=subprocess.DEVNULL)
        found = shutil.which("wrk")
        if found:
            return found
    sys.exit("wrk is required: `sudo apt-get install -y wrk` (Debian/Ubuntu), then rerun")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"unparsed wrk duration {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict[str, float]:
    """Requests/s, p50, p99, requests, socket errors and non-2xx/3xx from `wrk --latency`."""
    res: dict[str, float] = {"errors": 0, "non_2xx": 0}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", out):
        res["rps"] = float(m.group(1))
    if m := re.search(r"(\d+) requests in", out):
        res["requests"] = int(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        if m := re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M):
            res[key] = _ms(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        res["errors"] = sum(int(g) for g in m.groups())
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        res["non_2xx"] = int(m.group(1))
    missing = {"rps", "p50", "p99", "requests"} - res.keys()
    if missing:
        raise RuntimeError(f"could not parse wrk output ({missing}):\n{out}")
    return res


def run_wrk(
    wrk: str,
    url: str,
    token: str,
    *,
    duration: int,
    connections: int,
    threads: int,
    script: Path = LUA,
    extra_env: dict[str, str] | None = None,
) -> tuple[dict[str, float], str]:
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    env = {**os.environ, "KABINET_BENCH_TOKEN": token, **(extra_env or {})}
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=duration + 30, check=True
    )
    return parse_wrk(proc.stdout), proc.stdout


# --- database and server -------------------------------------------------------------------


def _db_url(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


async def _admin(base: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_db_url(base, "postgres"))
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


def create_database(base: str, name: str) -> None:
    asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'))


def drop_database(base: str, name: str) -> None:
    asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def http(
    method: str, url: str, token: str | None = None, body: dict[str, Any] | None = None
) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def get_json(url: str, token: str) -> Any:
    status, body = http("GET", url, token)
    if status != 200:
        raise RuntimeError(f"GET {url} -> {status}: {body[:300]!r}")
    return json.loads(body)


class Server:
    """`kabinet serve` in its own process group, stopped by that group's id."""

    def __init__(
        self, env: dict[str, str], workers: int, log: Path, server: str = "uvicorn"
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log.open("ab")
        cmd = [
            *KABINET,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
        ]
        if server == "granian":
            # The same app under granian (Rust HTTP, its own worker processes), for the
            # comparison issue 7 asks for; `kabinet serve` itself runs uvicorn.
            granian = shutil.which("granian", path=str(Path(sys.executable).parent))
            if granian is None:
                sys.exit("--server granian: `.venv/bin/pip install granian` first")
            env = {**env, "KABINET_RUN_JOBS": "1"}
            cmd = [
                granian,
                "--interface",
                "asgi",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--loop",
                "uvloop",
                "--no-access-log",
                "--log-level",
                "warning",
                "backend.app:create_app",
            ]
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=self.log, stderr=self.log, start_new_session=True
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}; see {self.log.name}"
                )
            try:
                if http("GET", self.base + "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError("server did not answer /health in time")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def _cpu_ticks(match: Any) -> dict[int, int]:
    """utime+stime in clock ticks of every process for which match(pid, stat, cmdline)."""
    out: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if match(int(entry.name), fields, cmdline):
            out[int(entry.name)] = int(fields[11]) + int(fields[12])
    return out


class CpuMeter:
    """CPU used by the server's process group and the database's PostgreSQL backends."""

    def __init__(self, server_pgid: int, db: str) -> None:
        self.pgid = server_pgid
        self.db = db
        self.tick = os.sysconf("SC_CLK_TCK")

    def sample(self) -> tuple[dict[int, int], dict[int, int]]:
        app = _cpu_ticks(lambda _pid, f, _cmd: int(f[2]) == self.pgid)
        pg = _cpu_ticks(
            lambda _pid, _f, cmd: cmd.startswith("postgres: ") and f" {self.db} " in cmd
        )
        return app, pg

    def seconds(self, before: dict[int, int], after: dict[int, int]) -> float:
        # Processes that ended during the run are missed; new ones count from zero.
        return sum(t - before.get(pid, 0) for pid, t in after.items()) / self.tick


# --- the run -------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def revision() -> str:
    """The code under test: git commit (+dirty), or KABINET_BENCH_REVISION for a snapshot."""
    if os.environ.get("KABINET_BENCH_REVISION"):
        return os.environ["KABINET_BENCH_REVISION"]
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+uncommitted changes" if dirty else "")


def endpoints(base: str, token: str) -> list[tuple[str, str]]:
    """Log in as the governor, find his cabinet, a document in `resolve` and its first page."""
    me = get_json(base + "/api/v1/me", token)
    own = [c for c in me["cabinets"] if c["role"] == "own"]
    position = own[0]["position_id"]
    cab = f"{base}/api/v1/cabinets/{position}"
    queue = get_json(f"{cab}/queue?folder=resolve&limit=20", token)
    if not queue["items"]:
        raise RuntimeError("the governor's resolve queue is empty")
    doc_id = queue["items"][0]["document_id"]
    card = get_json(f"{base}/api/v1/documents/{doc_id}", token)
    file_id = card["files"][0]["id"]
    page = f"{base}/api/v1/documents/{doc_id}/files/{file_id}/pages/1?width=1024"
    # Warm the page cache: the first request renders the WebP, later ones read it from disk.
    started = time.perf_counter()
    status, body = http("GET", page, token)
    if status != 200:
        raise RuntimeError(f"page render -> {status}: {body[:300]!r}")
    print(
        f"  first page render: {(time.perf_counter() - started) * 1000:.0f} ms, {len(body)} bytes",
        file=sys.stderr,
    )
    return [
        ("health", f"{base}/health"),
        ("me", f"{base}/api/v1/me"),
        ("folders", f"{cab}/folders"),
        ("queue", f"{cab}/queue?folder=resolve&limit=20"),
        ("card", f"{base}/api/v1/documents/{doc_id}"),
        ("page", page),
    ]


def login(base: str) -> str:
    status, body = http(
        "POST", base + "/api/v1/auth/login", body={"login": "governor", "password": "demo"}
    )
    if status not in (200, 201):
        raise RuntimeError(f"login -> {status}: {body[:300]!r}")
    token: str = json.loads(body)["access_token"]
    return token


def print_table(results: list[WrkResult]) -> None:
    health = {r.workers: r.rps for r in results if r.name == "health"}
    head = (
        "| workers | endpoint | req/s | p50 ms | p99 ms | requests | errors | non-2xx "
        "| ×health | app CPU ms/req | PG CPU ms/req | load1 | new PG sessions |"
    )
    print(head)
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        ratio = r.rps / health[r.workers] if health.get(r.workers) else float("nan")
        print(
            f"| {r.workers} | {r.name} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
            f"| {r.requests:,} | {r.errors} | {r.non_2xx} | {ratio:.2f} | {r.app_cpu_ms:.2f} "
            f"| {r.pg_cpu_ms:.2f} | {r.load_before:.2f} | {r.new_sessions} |"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--documents", type=int, default=10_000)
    p.add_argument("--users", type=int, default=0, help="grow the region to U users")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", type=int, default=12, help="seconds per wrk run (max 60)")
    p.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured wrk first")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--threads", type=int, default=1, help="wrk threads (it shares the CPUs)")
    p.add_argument("--workers", default="1,2", help="server worker counts to run, e.g. 1,2")
    p.add_argument("--pool-size", type=int, default=20, help="KABINET_DB_POOL_SIZE per worker")
    p.add_argument(
        "--ratio-rounds",
        type=int,
        default=5,
        help="rounds of /health then queue, back to back, for the interleaved ratio (0: off)",
    )
    p.add_argument("--ratio-seconds", type=int, default=3, help="seconds of each in a round")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432", help="server URL")
    p.add_argument("--db", default="kabinet_bench", help="database to (re)create")
    p.add_argument("--keep", action="store_true", help="keep the database and data dir")
    p.add_argument(
        "--reuse", action="store_true", help="skip create/migrate/load (needs --keep before)"
    )
    p.add_argument("--data-dir", help="data dir (default: a new temp dir)")
    p.add_argument(
        "--no-prewarm",
        dest="prewarm",
        action="store_false",
        help="skip reading the database into the OS page cache before the runs",
    )
    p.add_argument("--explain", action="store_true", help="print bench.explain after the run")
    p.add_argument(
        "--server",
        choices=("uvicorn", "granian"),
        default="uvicorn",
        help="HTTP server: uvicorn (`kabinet serve`) or granian (needs `pip install granian`)",
    )
    p.add_argument(
        "--endpoints",
        type=lambda v: set(v.split(",")),
        default={
            "health",
            "me",
            "folders",
            "queue",
            "queue-cold",
            "card",
            "card-cold",
            "page",
            "visa",
        },
        help="comma-separated subset of "
        "health,me,folders,queue,queue-cold,card,card-cold,page,visa",
    )
    p.add_argument(
        "--visas",
        type=int,
        default=20_000,
        help="open approvals to visa in the visa run (0: no visa run; it changes the data)",
    )
    p.add_argument(
        "--visa-order",
        choices=("spread", "grouped"),
        default="spread",
        help="spread: approvers of different drafts side by side (concurrent visas on "
        "different routes), every stage still completed within the run; grouped: the "
        "approvers of one stage one after another, so concurrent visas wait on their "
        "route's lock",
    )
    args = p.parse_args(argv)
    # A SIGTERM (or a killed parent script) must still stop the server's process group in
    # the `finally` below; by default Python would die without running it, leaving an
    # orphaned `kabinet serve` polling the database during the next runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not 1 <= args.duration <= 60:
        p.error("--duration must be 1..60 seconds")
    if "127.0.0.1" not in args.pg and "localhost" not in args.pg:
        p.error("--pg must be a loopback server")
    workers = [int(w) for w in args.workers.split(",") if w]

    wrk = ensure_wrk()
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="kabinet-bench-"))
    db_url = _db_url(args.pg, args.db)
    env = {
        **os.environ,
        "KABINET_DATABASE_URL": db_url,
        "KABINET_DATA_DIR": str(data_dir),
        "KABINET_DB_POOL_SIZE": str(args.pool_size),
        "KABINET_ACCESS_TTL": "3600",
    }
    info = machine()
    info["code"] = revision()
    info["pg autovacuum"] = asyncio.run(_autovacuum(args.pg))
    print(f"machine: {info}", file=sys.stderr)
    print(f"database: {db_url}  data dir: {data_dir}", file=sys.stderr)

    if not args.reuse:
        create_database(args.pg, args.db)
        subprocess.run([*KABINET, "migrate"], env=env, cwd=ROOT, check=True)
        demo = [*KABINET, "demo", "--documents", str(args.documents), "--seed", str(args.seed)]
        if args.users:
            demo += ["--users", str(args.users)]
        started = time.perf_counter()
        subprocess.run(demo, env=env, cwd=ROOT, check=True)
        load_s = time.perf_counter() - started
        print(
            f"LOAD: {args.documents} documents, {args.users or 'default'} users "
            f"in {load_s:.1f} s (kabinet demo wall time)"
        )
        # Statistics and the visibility map (index-only scans), as autovacuum would leave
        # them on a server that has been running for a while.
        started = time.perf_counter()
        asyncio.run(_analyze(db_url))
        print(f"VACUUM ANALYZE: {time.perf_counter() - started:.1f} s")

    if args.prewarm:
        # Every table and index read once into the OS page cache, as on a server with
        # RAM for its database that has run a while. This VM's page cache did not keep
        # what the load wrote: the first look at a document cost 1.4-9 ms of reads
        # against 0.2-0.5 ms once cached, which set the cold card's p99.
        started = time.perf_counter()
        pages = asyncio.run(_prewarm(db_url))
        print(f"PREWARM: {pages} pages read in {time.perf_counter() - started:.1f} s")

    results: list[WrkResult] = []
    interleaved: dict[int, list[float]] = {}
    try:
        for w in workers:
            server = Server(env, w, data_dir / f"server-{w}.log", args.server)
            try:
                server.wait_ready()
                meter = CpuMeter(server.proc.pid, args.db)
                token = login(server.base)
                urls = endpoints(server.base, token)
                for name, url in urls:
                    if name not in args.endpoints:
                        continue
                    if args.warmup:
                        run_wrk(
                            wrk,
                            url,
                            token,
                            duration=args.warmup,
                            connections=args.connections,
                            threads=args.threads,
                        )
                    results.append(
                        _measure(
                            name,
                            w,
                            meter,
                            args,
                            partial(
                                run_wrk,
                                wrk,
                                url,
                                token,
                                duration=args.duration,
                                connections=args.connections,
                                threads=args.threads,
                            ),
                            port=server.port,
                        )
                    )
                if args.ratio_rounds and {"health", "queue"} <= args.endpoints:
                    interleaved[w] = _interleaved_ratio(wrk, dict(urls), token, args)
                for cold in ("queue-cold", "card-cold"):
                    if cold in args.endpoints:
                        results.append(
                            _cold_run(cold, wrk, server, meter, args, db_url, data_dir, w)
                        )
                if args.visas and "visa" in args.endpoints:
                    # Last: it uses up open approvals, and leaves the database changed.
                    visa = _visa_run(wrk, server, meter, args, db_url, data_dir, w)
                    if visa is not None:
                        results.append(visa)
            finally:
                server.stop()
        print()
        docs, users = asyncio.run(_sizes(db_url))
        print(
            f"documents={docs} users={users} "
            f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s "
            f"(after {args.warmup}s warm-up), {args.server}, pool {args.pool_size}/worker, "
            f"cpus={info['cpus']}, code {info['code']}"
        )
        print_table(results)
        for w in workers:
            by = {r.name: r.rps for r in results if r.workers == w}
            if by.get("health"):
                ratios = [f"{n}/health = {by[n] / by['health']:.2f}" for n in by if n != "health"]
                print(f"workers={w}: " + ", ".join(ratios))
        for w, pairs in interleaved.items():
            print(
                f"workers={w}: queue/health interleaved, {len(pairs)} rounds of "
                f"{args.ratio_seconds} s each: median {statistics.median(pairs):.2f} "
                f"(min {min(pairs):.2f}, max {max(pairs):.2f})"
            )
        if args.explain:
            from bench import explain

            explain.main(["--database-url", db_url])
    finally:
        if not args.keep:
            drop_database(args.pg, args.db)
            if not args.data_dir:
                shutil.rmtree(data_dir, ignore_errors=True)
    return 0


def _measure(
    name: str,
    workers: int,
    meter: CpuMeter,
    args: argparse.Namespace,
    run: Any,
    port: int | None = None,
) -> WrkResult:
    load1 = os.getloadavg()[0]
    sessions = asyncio.run(_sessions(args.pg, args.db))
    app0, pg0 = meter.sample()
    split: list[str] = []
    sampler = None
    if workers > 1 and port is not None:
        sampler = threading.Timer(1.5, lambda: split.extend(connection_split(port)))
        sampler.start()
    res, _ = run()
    if sampler is not None:
        sampler.join()
    app1, pg1 = meter.sample()
    n = max(int(res["requests"]), 1)
    r = WrkResult(
        name,
        workers,
        res["rps"],
        res["p50"],
        res["p99"],
        int(res["requests"]),
        int(res["errors"]),
        int(res["non_2xx"]),
        load1,
        asyncio.run(_sessions(args.pg, args.db)) - sessions,
        meter.seconds(app0, app1) * 1000 / n,
        meter.seconds(pg0, pg1) * 1000 / n,
    )
    print(
        f"  workers={workers} {name}: {r.rps:.0f} req/s "
        f"p50 {r.p50_ms:.2f} ms p99 {r.p99_ms:.2f} ms; CPU/req "
        f"app {r.app_cpu_ms:.2f} ms, PG {r.pg_cpu_ms:.2f} ms"
        + (f"; wrk's connections per worker {'/'.join(split)}" if split else ""),
        file=sys.stderr,
    )
    return r


def connection_split(port: int) -> list[str]:
    """How many of the load's connections each server process holds (`ss`, iproute2).

    wrk opens its keep-alive connections once; each stays with the worker that accepted
    it. A split such as 13/3 leaves one worker nearly idle for the whole run, which moves
    2-worker figures more than any code change (seen in the fifth session)."""
    try:
        out = subprocess.run(
            ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    pids = re.findall(r"pid=(\d+)", out)
    return [str(n) for _, n in sorted(Counter(pids).items())]


def _walk_wrk(
    wrk: str, server: Server, args: argparse.Namespace, requests: Path, duration: int, once: bool
) -> Any:
    """wrk walking a list of prepared requests (bench/walk.lua), ready to run."""
    env = {"KABINET_BENCH_REQUESTS": str(requests), "KABINET_BENCH_ONCE": "1" if once else "0"}
    return partial(
        run_wrk,
        wrk,
        server.base + "/",
        "",
        duration=duration,
        connections=args.connections,
        threads=1,  # one Lua state walks the list: each line is sent in order
        script=WALK_LUA,
        extra_env=env,
    )


def _walk(
    name: str,
    wrk: str,
    server: Server,
    meter: CpuMeter,
    args: argparse.Namespace,
    workers: int,
    requests: Path,
    duration: int,
    *,
    once: bool,
) -> WrkResult:
    """Measure a run of prepared, all-different requests (bench/walk.lua)."""
    run = _walk_wrk(wrk, server, args, requests, duration, once)
    return _measure(name, workers, meter, args, run, port=server.port)


def _interleaved_ratio(
    wrk: str, urls: dict[str, str], token: str, args: argparse.Namespace
) -> list[float]:
    """queue/health per round of `/health` then the queue, run back to back for
    --ratio-seconds each. The machine's speed drifts over minutes (other tenants), which
    moves two 10-second runs taken a minute apart by ±20 %; a pair taken seconds apart
    sees the same machine."""
    pairs = []
    for _ in range(args.ratio_rounds):
        rps = {}
        for name in ("health", "queue"):
            res, _ = run_wrk(
                wrk,
                urls[name],
                token,
                duration=args.ratio_seconds,
                connections=args.connections,
                threads=args.threads,
            )
            if res["errors"] or res["non_2xx"]:
                raise RuntimeError(f"{name}: errors in the interleaved run: {res}")
            rps[name] = res["rps"]
        pairs.append(rps["queue"] / rps["health"])
    line = ", ".join(f"{r:.2f}" for r in pairs)
    print(f"  queue/health interleaved: {line}", file=sys.stderr)
    return pairs


def _cold_run(
    name: str,
    wrk: str,
    server: Server,
    meter: CpuMeter,
    args: argparse.Namespace,
    db_url: str,
    data_dir: Path,
    workers: int,
) -> WrkResult:
    """GET a different thing per request (bench/walk.lua, lists from bench/decisions.py):
    `queue-cold` another cabinet's folder, by the cabinet's holder; `card-cold` another
    document's card, by a user who may see it. The warm-up walks other things than the
    measured run (the last 10,000 of the list, or a fifth of a small region's), so that
    what is measured stays cold while the server's connections have prepared and planned
    the statements, as the other endpoints' warm-ups do for theirs."""
    from bench import decisions

    found: list[Any]
    if name == "queue-cold":
        found = asyncio.run(decisions.cabinet_folders(db_url))
        write: Any = decisions.write_queue_requests
    else:
        found = asyncio.run(decisions.visible_cards(db_url, 200_000))
        write = decisions.write_card_requests
    n_warm = min(10_000, len(found) // 5)
    warm, found = found[-n_warm:], found[:-n_warm]
    warmup = data_dir / f"{name}-warmup-{workers}.tsv"
    write(warm, data_dir, warmup)
    if args.warmup:
        _walk_wrk(wrk, server, args, warmup, args.warmup, once=False)()
    requests = data_dir / f"{name}-{workers}.tsv"
    write(found, data_dir, requests)
    r = _walk(name, wrk, server, meter, args, workers, requests, args.duration, once=False)
    if r.requests > len(found):
        print(
            f"  {name}: {r.requests} requests over a list of {len(found)}: "
            "the list wrapped, later requests may have hit a cache",
            file=sys.stderr,
        )
    return r


def _visa_run(
    wrk: str,
    server: Server,
    meter: CpuMeter,
    args: argparse.Namespace,
    db_url: str,
    data_dir: Path,
    workers: int,
) -> WrkResult | None:
    """POST a real visa per request, each a different open approval (bench/decisions.py)."""
    from bench import decisions

    rows = asyncio.run(decisions.pending_visas(db_url, args.visas))
    if args.visa_order == "spread":
        rows = decisions.spread(rows, args.connections * 2)
    # Run only as long as the open approvals last at ~500/s, so that the figure is visas,
    # not 409s for a used-up list (which would show as non-2xx anyway).
    duration = min(args.duration, len(rows) // 500)
    if duration < 1:
        print(f"  visa: only {len(rows)} open approvals; skipped", file=sys.stderr)
        return None
    requests = data_dir / f"visas-{workers}.tsv"
    decisions.write_requests(rows, data_dir, requests)
    before = asyncio.run(_decision_rows(db_url))
    r = _walk("visa", wrk, server, meter, args, workers, requests, duration, once=True)
    time.sleep(2)  # requests still in flight when wrk stopped commit after it
    after = asyncio.run(_decision_rows(db_url))
    added = {k: after[k] - before[k] for k in before}
    print(
        f"  visa: {len(rows)} open approvals listed, {duration} s; rows added: {added}",
        file=sys.stderr,
    )
    return r


async def _decision_rows(url: str) -> dict[str, int]:
    """What a visa writes, counted before and after the visa run."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return {
            "approvals decided": await conn.fetchval(
                "SELECT count(*) FROM approvals WHERE decision IS NOT NULL"
            ),
            "audit visa.approved": await conn.fetchval(
                "SELECT count(*) FROM audit_events WHERE action = 'visa.approved'"
            ),
            "outbox events": await conn.fetchval("SELECT count(*) FROM outbox_events"),
            "idempotency records": await conn.fetchval("SELECT count(*) FROM idempotency_records"),
        }
    finally:
        await conn.close()


async def _autovacuum(base: str) -> str:
    """The server's autovacuum setting: with it off (as on CI machines), pages changed by
    a write run stay out of the visibility map and index-only scans read the heap."""
    import asyncpg

    try:
        conn = await asyncpg.connect(_db_url(base, "postgres"))
    except (OSError, asyncpg.PostgresError):
        return "?"  # the bench itself says more when it connects
    try:
        return str(await conn.fetchval("SHOW autovacuum"))
    finally:
        await conn.close()


async def _sessions(base: str, name: str) -> int:
    """Sessions ever opened on the database (pg_stat_database.sessions, PostgreSQL 14+)."""
    import asyncpg

    conn = await asyncpg.connect(_db_url(base, "postgres"))
    try:
        n = await conn.fetchval("SELECT sessions FROM pg_stat_database WHERE datname = $1", name)
    finally:
        await conn.close()
    return int(n or 0)


async def _sizes(url: str) -> tuple[int, int]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        docs = await conn.fetchval("SELECT count(*) FROM documents")
        users = await conn.fetchval("SELECT count(*) FROM users")
    finally:
        await conn.close()
    return int(docs), int(users)


async def _prewarm(url: str) -> int:
    """pg_prewarm (PostgreSQL's contrib) in 'read' mode over the database's own tables,
    indexes and TOAST: into the OS cache, not shared_buffers (128 MB by default)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        pages: int = await conn.fetchval(
            """
            SELECT coalesce(sum(pg_prewarm(c.oid, 'read')), 0)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'i', 't', 'm')
              AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            """
        )
        return pages
    finally:
        await conn.close()


async def _analyze(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


if __name__ == "__main__":
    raise SystemExit(main())

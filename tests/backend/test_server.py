"""`kabinet serve --workers 2`: a listening socket per worker, connections spread over
them, a dead worker replaced, and SIGTERM stopping them all (backend/web/server.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "SO_REUSEPORT") or not Path("/proc/net/tcp").exists(),
    reason="SO_REUSEPORT and /proc (Linux)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command name may hold spaces; the fields after its ")" do not.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _sockets(port: int, state: str) -> dict[int, int]:
    """inode → remote port of the loopback TCP sockets on `port` in `state` (0A listening,
    01 established)."""
    out = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, st, inode = fields[1], fields[2], fields[3], int(fields[9])
        if int(local.split(":")[1], 16) == port and st == state:
            out[inode] = int(remote.split(":")[1], 16)
    return out


def _workers(pid: int, port: int) -> set[int]:
    """The children holding a listening socket on `port` (multiprocessing also starts a
    resource tracker)."""
    listening = _sockets(port, "0A").keys()
    return {child for child in _children(pid) if _inodes_of(child) & listening}


def _inodes_of(pid: int) -> set[int]:
    inodes = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # gone meanwhile
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _wait(what: str, check: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.1)


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    data_dir = Path(tempfile.mkdtemp(prefix="kabinet-serve-"))
    env = {**os.environ, "KABINET_DATA_DIR": str(data_dir), "KABINET_LOG_FORMAT": "console"}
    env.pop("KABINET_DATABASE_URL", None)
    port = _free_port()
    log = (data_dir / "serve.log").open("wb")
    cli = [sys.executable, "-m", "backend.cli", "serve", "--no-jobs"]
    proc = subprocess.Popen(
        [*cli, "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait("two workers listening", lambda: len(_workers(proc.pid, port)) == 2)
        yield proc, port
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_each_worker_listens_and_takes_connections(
    served: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = served
    workers = _workers(proc.pid, port)
    assert len(workers) == 2
    listening = _sockets(port, "0A")
    # One socket per worker, none shared (uvicorn's own --workers shares one).
    assert len(listening) == 2
    assert [len(_inodes_of(w) & listening.keys()) for w in workers] == [1, 1]
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}") for _ in range(32)]
    try:
        for c in clients:
            assert c.get("/health").status_code == 200
        # The server's side of each kept-alive connection, by the worker holding it.
        assert len(set(_sockets(port, "01").values())) == 32
        held = {w: len(_inodes_of(w) & _sockets(port, "01").keys()) for w in workers}
        assert sum(held.values()) == 32
        # Spread by the kernel's hash of the client's port: all 32 on one worker would
        # happen once in 2^31 runs.
        assert all(n > 0 for n in held.values()), held
    finally:
        for c in clients:
            c.close()


def test_a_dead_worker_is_replaced_and_sigterm_stops_all(
    served: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = served
    first = _workers(proc.pid, port)
    os.kill(min(first), signal.SIGKILL)
    _wait("a new worker listening", lambda: len(_workers(proc.pid, port) - first) == 1)
    assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    workers = _workers(proc.pid, port)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    _wait("the workers gone", lambda: not any(_running(w) for w in workers))
    assert not _sockets(port, "0A")


def test_workers_that_cannot_start_stop_the_server() -> None:
    """A worker failing at startup every time ends the server with status 3 (as uvicorn's
    own supervisor does) instead of being respawned forever."""
    data_dir = Path(tempfile.mkdtemp(prefix="kabinet-serve-"))
    env = {**os.environ, "KABINET_DATA_DIR": str(data_dir), "KABINET_DATABASE_URL": "nonsense"}
    cli = [sys.executable, "-m", "backend.cli", "serve", "--no-jobs", "--workers", "2"]
    proc = subprocess.run(
        [*cli, "--host", "127.0.0.1", "--port", str(_free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert b"workers_cannot_start" in proc.stdout + proc.stderr


def test_a_port_in_use_is_refused() -> None:
    """SO_REUSEPORT must not let a second server quietly share the port."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        data_dir = Path(tempfile.mkdtemp(prefix="kabinet-serve-"))
        env = {**os.environ, "KABINET_DATA_DIR": str(data_dir)}
        env.pop("KABINET_DATABASE_URL", None)
        cli = [sys.executable, "-m", "backend.cli", "serve", "--no-jobs", "--workers", "2"]
        proc = subprocess.run(
            [*cli, "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=60,
        )
    assert proc.returncode != 0
    assert b"Address already in use" in proc.stderr


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for a parent that does not reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_workers_die_with_a_killed_supervisor(
    served: tuple[subprocess.Popen[bytes], int],
) -> None:
    """An orphaned worker would keep its share of the port's connections."""
    proc, port = served
    workers = _workers(proc.pid, port)
    proc.kill()
    proc.wait()
    _wait("the workers gone", lambda: not any(_running(w) for w in workers))
    _wait("nothing listening", lambda: not _sockets(port, "0A"))

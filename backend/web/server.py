"""How `kabinet serve` runs the app: uvicorn, and with several workers one listening
socket per worker process (SO_REUSEPORT).

uvicorn's own `--workers` shares one listening socket between its processes. Whichever
process wakes first accepts every connection waiting (asyncio accepts until the backlog
is empty), and a keep-alive connection stays with the process that accepted it. Clients
that hold a few long-lived connections, as a reverse proxy or a load generator does, were
seen to land 16/0 or 14/2 on two workers, leaving one core idle. With a socket per
process the kernel spreads new connections over the processes by their address hash.

The parent only supervises: it starts the workers, starts a new one when one dies (and
gives up with status 3 when they cannot start), and on SIGTERM, SIGINT or SIGHUP passes
SIGTERM on and waits for them to finish their requests. A worker dies with it.

Compared with uvicorn's own supervisor there is no liveness ping (a wedged worker keeps
its share of new connections) and no reload on SIGHUP; connections waiting in a dying
worker's accept queue are reset (Linux's `net.ipv4.tcp_migrate_req=1` hands them over).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from typing import Any

import structlog
import uvicorn
from uvicorn.config import STARTUP_FAILURE

from backend.settings import get_settings
from backend.web.logging import configure_logging

log = structlog.get_logger("kabinet.server")

APP = "backend.app:create_app"
# How long the workers get to finish after SIGTERM (the jobs loop waits up to 30 s).
STOP_SECONDS = 40.0
# Workers dying this soon after their start this many times in a row: they cannot start.
QUICK_DEATH_SECONDS = 10.0
QUICK_DEATHS = 3


# uvicorn's options, the same for one worker (uvicorn.run) and for each of several.
_OPTIONS: dict[str, Any] = {
    "factory": True,
    "access_log": False,
    "log_level": "warning",
    "proxy_headers": True,
}


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) that other processes may bind too (SO_REUSEPORT)."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _ensure_port_free(host: str, port: int) -> None:
    """Fail as a plain bind would: SO_REUSEPORT would otherwise let this server quietly
    share the port with another one (an older `kabinet serve`) and split its traffic."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def _die_with_parent() -> None:
    # A worker must not outlive a supervisor killed with SIGKILL: it would keep its share
    # of the port's connections. Linux only (prctl PR_SET_PDEATHSIG = 1).
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _worker(host: str, port: int) -> None:
    """One worker process: its own socket in the port's group, then uvicorn's server."""
    _die_with_parent()
    sock = listening_socket(host, port)
    uvicorn.Server(uvicorn.Config(APP, host=host, port=port, **_OPTIONS)).run(sockets=[sock])


def serve(host: str, port: int, workers: int) -> int:
    """Serve until SIGTERM, SIGINT or SIGHUP; the exit status (3 if workers cannot start)."""
    if workers <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        uvicorn.run(APP, host=host, port=port, workers=workers, **_OPTIONS)
        return 0
    configure_logging(json=get_settings().log_json)
    _ensure_port_free(host, port)
    # Bound here first, and kept bound (not listening, so it takes no connections): the
    # port stays this server's while a worker is being replaced.
    reserved = listening_socket(host, port)
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)

    def start() -> tuple[BaseProcess, float]:
        process = context.Process(target=_worker, args=(host, port), name="kabinet-worker")
        process.start()
        return process, time.monotonic()

    slots = [start() for _ in range(workers)]
    log.info("serving", host=host, port=port, workers=[p.pid for p, _ in slots])
    quick_deaths = 0
    status = 0
    try:
        while not stopping:
            time.sleep(0.2)
            for i, (process, started) in enumerate(slots):
                if process.is_alive() or stopping:
                    continue
                lived = time.monotonic() - started
                log.warning("worker_died", pid=process.pid, exitcode=process.exitcode, lived=lived)
                # A worker that cannot start (bad settings, the app failing its startup:
                # uvicorn's exit status 3) would fail again: give up, as uvicorn does,
                # so that whatever runs the server sees it, instead of respawning.
                quick_deaths = quick_deaths + 1 if lived < QUICK_DEATH_SECONDS else 0
                if process.exitcode == STARTUP_FAILURE or quick_deaths >= QUICK_DEATHS:
                    log.error("workers_cannot_start", exitcode=process.exitcode)
                    status = STARTUP_FAILURE
                    stopping = True
                    break
                slots[i] = start()
    finally:
        for process, _ in slots:
            if process.is_alive() and process.pid is not None:
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + STOP_SECONDS
        for process, _ in slots:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        reserved.close()
    return status

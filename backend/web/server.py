"""How `kabinet serve` runs the app: uvicorn, and with several workers one listening
socket per worker process (SO_REUSEPORT).

uvicorn's own `--workers` shares one listening socket between its processes. Whichever
process wakes first accepts every connection waiting (asyncio accepts until the backlog
is empty), and a keep-alive connection stays with the process that accepted it. Clients
that hold a few long-lived connections, as a reverse proxy or a load generator does, were
seen to land 16/0 or 14/2 on two workers, leaving one core idle. With a socket per
process the kernel spreads new connections over the processes by their address hash.

The parent only supervises: it starts the workers, starts a new one when one dies, and
on SIGTERM or SIGINT passes SIGTERM on and waits for them to finish their requests.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from typing import Any

import structlog
import uvicorn

log = structlog.get_logger("kabinet.server")

APP = "backend.app:create_app"
# How long the workers get to finish after SIGTERM (the jobs loop waits up to 30 s).
STOP_SECONDS = 40.0


def _config(host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        APP,
        factory=True,
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
        proxy_headers=True,
    )


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) that other processes may bind too (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(host: str, port: int) -> None:
    """One worker process: its own socket in the port's group, then uvicorn's server."""
    sock = listening_socket(host, port)
    uvicorn.Server(_config(host, port)).run(sockets=[sock])


def serve(host: str, port: int, workers: int) -> None:
    if workers <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        uvicorn.run(
            APP,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=False,
            log_level="warning",
            proxy_headers=True,
        )
        return
    # Bound here first, and kept bound (not listening, so it takes no connections): the
    # port is known to be free before any worker starts, and stays ours while a worker
    # is being replaced.
    reserved = listening_socket(host, port)
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def start() -> BaseProcess:
        process = context.Process(target=_worker, args=(host, port), name="kabinet-worker")
        process.start()
        return process

    processes = [start() for _ in range(workers)]
    log.info("serving", host=host, port=port, workers=[p.pid for p in processes])
    try:
        while not stopping:
            time.sleep(0.2)
            for i, process in enumerate(processes):
                if not process.is_alive() and not stopping:
                    log.warning("worker_died", pid=process.pid, exitcode=process.exitcode)
                    processes[i] = start()
    finally:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + STOP_SECONDS
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        reserved.close()

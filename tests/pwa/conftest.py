"""Browser tests of the PWA: a real `kabinet serve` and Debian's chromium through Playwright.

The server runs as a subprocess on a free 127.0.0.1 port with its own data directory
(migrated, demo region with 60 documents). Chromium is the system one (/usr/bin/chromium,
installed by scripts/install-chromium.sh); Playwright never downloads a browser here.
Without chromium the tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "docs" / "screenshots"
TABLET = {"width": 1024, "height": 768}
PASSWORD = "demo"


def _missing_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (scripts/install-chromium.sh installs Debian's chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install playwright)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    ours = [i for i in items if i.path.is_relative_to(here)]
    for item in ours:
        item.add_marker(pytest.mark.browser)
    reason = _missing_reason()
    if reason is None or not ours:
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(f"browser tests cannot run under CI: {reason}")
    for item in ours:
        item.add_marker(pytest.mark.skip(reason=reason))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, base_url: str, data_dir: Path) -> None:
        self.base_url = base_url
        self.data_dir = data_dir
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self._tokens: dict[str, str] = {}
        self._positions: dict[str, str] = {}

    def headers(self, login: str) -> dict[str, str]:
        if login not in self._tokens:
            r = self.http.post("/api/v1/auth/login", json={"login": login, "password": PASSWORD})
            r.raise_for_status()
            self._tokens[login] = r.json()["access_token"]
        return {"Authorization": f"Bearer {self._tokens[login]}"}

    def own_position(self, login: str) -> str:
        if login not in self._positions:
            me = self.http.get("/api/v1/me", headers=self.headers(login)).json()
            own = [c for c in me["cabinets"] if c["role"] == "own"]
            self._positions[login] = own[0]["position_id"]
        return self._positions[login]

    def get(self, path: str, login: str) -> Any:
        r = self.http.get(path, headers=self.headers(login))
        r.raise_for_status()
        return r.json()

    def has_path(self, path: str) -> bool:
        schema = self.http.get("/schema/openapi.json").json()
        return path in schema.get("paths", {})


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    subprocess.run([sys.executable, str(ROOT / "pwa" / "build.py")], check=True, cwd=ROOT)
    data_dir = Path(tempfile.mkdtemp(prefix="kabinet-pwa-"))
    env = {
        **os.environ,
        "KABINET_DATA_DIR": str(data_dir),
        "KABINET_PWA_DIR": str(ROOT / "pwa" / "dist"),
        "KABINET_LOG_FORMAT": "console",
    }
    env.pop("KABINET_DATABASE_URL", None)
    cli = [sys.executable, "-m", "backend.cli"]
    subprocess.run([*cli, "migrate"], check=True, cwd=ROOT, env=env)
    subprocess.run([*cli, "demo", "--documents", "60"], check=True, cwd=ROOT, env=env)
    port = _free_port()
    log = (data_dir / "serve.log").open("w")
    proc = subprocess.Popen(
        [*cli, "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"kabinet serve exited: {(data_dir / 'serve.log').read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("kabinet serve did not answer /health in 30 s")
            time.sleep(0.2)
        srv = Server(base, data_dir)
        yield srv
        srv.http.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        # Keep the server's log where a failed run can be read after the fact.
        shutil.copy(data_dir / "serve.log", Path(tempfile.gettempdir()) / "kabinet-pwa-serve.log")
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope, not session: the sync API keeps an event loop running in this thread
    # while it is open, which would break the pytest-asyncio tests collected after it.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def context(browser: Any, server: Server) -> Iterator[Any]:
    ctx = browser.new_context(
        base_url=server.base_url,
        viewport=TABLET,
        has_touch=True,
        is_mobile=False,
        locale="ru-RU",
        timezone_id="Asia/Kamchatka",
        service_workers="allow",
    )
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any) -> Iterator[Any]:
    page = context.new_page()
    # The browser's console and the worker's, printed after the test: pytest shows captured
    # output only for a failed test, which is where they are needed.
    lines: list[str] = []
    context.on("console", lambda m: lines.append(f"console {m.type}: {m.text}"))
    page.on("pageerror", lambda e: lines.append(f"pageerror: {e}"))
    context.on("weberror", lambda e: lines.append(f"weberror: {e.error}"))
    yield page
    print("\n".join(lines[-200:]))


def screenshot(page: Any, name: str) -> None:
    """Save a small PNG of a main screen for docs/screenshots (committed, linked from README)."""
    from PIL import Image

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), animations="disabled", caret="hide")
    # A 256-colour palette keeps UI screenshots sharp at a third of the size.
    with Image.open(path) as img:
        small = img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)

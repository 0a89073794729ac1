"""Offline readiness survives what a loaded server or a flaky network does to the first visit:
a service worker install that fails once, and page images the server cannot render."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.pwa.test_pwa import sign_in, wait_offline_ready

pytestmark = pytest.mark.browser


def test_failed_worker_install_is_retried(page: Any, context: Any) -> None:
    failed: list[str] = []

    def fail_first_precache(route: Any) -> None:
        # The worker's precache of the stylesheet fails once: cache.addAll() rejects, the
        # install fails and the first registration is gone with it.
        if route.request.service_worker is not None and not failed:
            failed.append(route.request.url)
            route.abort("connectionreset")
        else:
            route.continue_()

    context.route("**/styles.css", fail_first_precache)
    sign_in(page, "governor")
    wait_offline_ready(page)
    assert failed, "the worker's precache request was not seen"
    assert page.evaluate("navigator.serviceWorker.controller !== null")


def test_unrenderable_pages_do_not_block_offline_ready(page: Any, context: Any) -> None:
    seen: list[str] = []

    def fail_second_pages(route: Any) -> None:
        seen.append(route.request.url)
        route.fulfill(status=500, content_type="application/problem+json", body="{}")

    # Every page 2 the worker asks the server for fails: retried, then skipped and counted.
    context.route(re.compile(r"/api/v1/documents/[^/]+/files/[^/]+/pages/2\?"), fail_second_pages)
    sign_in(page, "governor")
    wait_offline_ready(page)
    # A later sync may be running (and saying so) while the cabinet stays ready: wait for
    # the settled status line rather than reading it at one instant.
    ready = page.locator("[data-offline-ready]", has_text="Доступно без связи")
    ready.wait_for(timeout=60_000)
    status = ready.inner_text()
    assert re.search(r"без \d+ страниц", status), status
    assert seen

"""Operations endpoints: liveness, readiness, metrics, OpenAPI, request ids."""

from __future__ import annotations

from tests.backend.conftest import Env


async def test_health_and_ready(env: Env) -> None:
    assert (await env.client.get("/health")).json() == {"status": "ok"}
    ready = await env.client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


async def test_metrics_are_prometheus_text(env: Env) -> None:
    await env.client.get("/health")
    r = await env.client.get("/metrics")
    assert r.status_code == 200
    assert "kabinet_requests_total" in r.text


async def test_openapi_names_the_contract(env: Env) -> None:
    spec = (await env.client.get("/schema/openapi.json")).json()
    paths = spec["paths"]
    for path in (
        "/api/v1/auth/login",
        "/api/v1/me",
        "/api/v1/cabinets/{position_id}/folders",
        "/api/v1/cabinets/{position_id}/queue",
        "/api/v1/documents",
        "/api/v1/documents/{document_id}",
    ):
        assert path in paths, path


async def test_request_id_is_echoed(env: Env) -> None:
    r = await env.client.get("/health", headers={"X-Request-ID": "abc123"})
    assert r.headers["x-request-id"] == "abc123"
    assert len((await env.client.get("/health")).headers["x-request-id"]) == 32


async def test_unknown_routes_are_problem_404(env: Env) -> None:
    r = await env.client.get("/api/v1/nothing-here")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")

"""The org directory search behind the executor picker."""

from __future__ import annotations

from tests.backend.conftest import Env


async def test_search_by_title_in_any_case_and_by_several_words(env: Env) -> None:
    headers = await env.login("assistant")
    r = await env.client.get("/api/v1/positions", params={"q": "МИНИСТР финансов"}, headers=headers)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    # Every word matches the title, the organisation or the holder: here all are Минфин's.
    assert items and all(p["organization"] == "Минфин" for p in items)
    assert any(p["title"].startswith("Министр финансов") for p in items)


async def test_search_by_holders_name(env: Env) -> None:
    me = await env.cabinets("minister.digital")
    surname = me["user"]["full_name"].split()[0]
    r = await env.client.get(
        "/api/v1/positions", params={"q": surname.lower()}, headers=await env.login("governor")
    )
    assert me["cabinets"][0]["position_id"] in [p["position_id"] for p in r.json()["items"]]


async def test_search_needs_login_and_a_real_query(env: Env) -> None:
    assert (await env.client.get("/api/v1/positions", params={"q": "мин"})).status_code == 401
    headers = await env.login("governor")
    for params in ({"q": "м"}, {"q": "  "}, {"q": "министр", "limit": 0}, {}):
        r = await env.client.get("/api/v1/positions", params=params, headers=headers)
        assert 400 <= r.status_code < 500, params
    r = await env.client.get("/api/v1/positions", params={"q": "%_"}, headers=headers)
    assert r.status_code == 200 and r.json()["items"] == []

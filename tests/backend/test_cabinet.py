"""Cabinet: folders with counts, keyset-paginated queues, object-level access."""

from __future__ import annotations

import uuid

import pytest

from backend.db.models import FOLDERS
from tests.backend.conftest import Env


async def test_governor_sees_all_seven_folders_non_empty(env: Env) -> None:
    pid = await env.own_position("governor")
    r = await env.client.get(f"/api/v1/cabinets/{pid}/folders", headers=await env.login("governor"))
    assert r.status_code == 200
    folders = r.json()
    assert [f["folder"] for f in folders] == list(FOLDERS)
    for f in folders:
        assert f["count"] > 0, f
        assert 0 <= f["overdue"] <= f["count"]
        assert 0 <= f["unread"] <= f["count"]


@pytest.mark.parametrize("login", ["minister.digital", "minister.finance", "first.deputy"])
async def test_executives_have_work_in_their_main_folders(env: Env, login: str) -> None:
    pid = await env.own_position(login)
    r = await env.client.get(f"/api/v1/cabinets/{pid}/folders", headers=await env.login(login))
    counts = {f["folder"]: f["count"] for f in r.json()}
    for folder in ("sign", "visa", "resolve", "drafts", "execute", "control", "info"):
        assert counts[folder] > 0, (login, folder)


async def test_counts_match_the_queues(env: Env) -> None:
    pid = await env.own_position("governor")
    headers = await env.login("governor")
    folders = (await env.client.get(f"/api/v1/cabinets/{pid}/folders", headers=headers)).json()
    for f in folders:
        q = await env.client.get(
            f"/api/v1/cabinets/{pid}/queue",
            params={"folder": f["folder"], "limit": 100},
            headers=headers,
        )
        items = q.json()["items"]
        assert len(items) == f["count"]
        assert sum(i["overdue"] for i in items) == f["overdue"]
        assert all(i["folder"] == f["folder"] for i in items)


async def test_assistant_reads_the_governors_cabinet(env: Env) -> None:
    gov = await env.own_position("governor")
    r = await env.client.get(
        f"/api/v1/cabinets/{gov}/folders", headers=await env.login("assistant")
    )
    assert r.status_code == 200


@pytest.mark.parametrize("path", ["folders", "queue?folder=resolve"])
async def test_other_peoples_cabinets_are_403(env: Env, path: str) -> None:
    gov = await env.own_position("governor")
    executor = await env.login("executor")
    r = await env.client.get(f"/api/v1/cabinets/{gov}/{path}", headers=executor)
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    r = await env.client.get(f"/api/v1/cabinets/{uuid.uuid4()}/{path}", headers=executor)
    assert r.status_code == 403


async def test_pagination_has_no_gaps_or_repeats(env: Env) -> None:
    pid = await env.own_position("governor")
    headers = await env.login("governor")
    for folder in ("resolve", "control"):
        full = await env.client.get(
            f"/api/v1/cabinets/{pid}/queue",
            params={"folder": folder, "limit": 100},
            headers=headers,
        )
        expected = [i["item_id"] for i in full.json()["items"]]
        assert full.json()["next_cursor"] is None
        seen: list[str] = []
        cursor = None
        while True:
            params = {"folder": folder, "limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = (
                await env.client.get(
                    f"/api/v1/cabinets/{pid}/queue", params=params, headers=headers
                )
            ).json()
            assert len(page["items"]) <= 3
            seen += [i["item_id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == expected
        assert len(set(seen)) == len(seen)
        received = [i["received_at"] for i in full.json()["items"]]
        assert received == sorted(received, reverse=True)


@pytest.mark.parametrize(
    "params",
    [
        {"folder": "nonsense"},
        {"folder": "resolve", "cursor": "not-a-cursor"},
        {"folder": "resolve", "limit": 0},
        {"folder": "resolve", "limit": 101},
        {"folder": "resolve", "limit": "ten"},
        {},
    ],
)
async def test_bad_queue_parameters_are_4xx(env: Env, params: dict[str, object]) -> None:
    pid = await env.own_position("governor")
    r = await env.client.get(
        f"/api/v1/cabinets/{pid}/queue", params=params, headers=await env.login("governor")
    )
    assert 400 <= r.status_code < 500
    assert r.json()["detail"]


async def test_opening_a_document_marks_its_items_read_in_that_cabinet(env: Env) -> None:
    pid = await env.own_position("minister.finance")
    headers = await env.login("minister.finance")

    async def unread() -> dict[str, int]:
        r = await env.client.get(f"/api/v1/cabinets/{pid}/folders", headers=headers)
        return {f["folder"]: f["unread"] for f in r.json()}

    async def queue(folder: str) -> list[dict[str, object]]:
        r = await env.client.get(
            f"/api/v1/cabinets/{pid}/queue",
            params={"folder": folder, "limit": 100},
            headers=headers,
        )
        items: list[dict[str, object]] = r.json()["items"]
        return items

    before = await unread()
    folder = next(f for f, n in before.items() if n > 0)
    item = next(i for i in await queue(folder) if i["unread"])
    doc = item["document_id"]
    url = f"/api/v1/cabinets/{pid}/read"
    # Someone else's cabinet: 403, and nothing changes.
    r = await env.client.post(url, json={"document_id": doc}, headers=await env.login("executor"))
    assert r.status_code == 403
    assert await unread() == before
    r = await env.client.post(url, json={"document_id": doc}, headers=headers)
    assert r.status_code == 204
    after = await unread()
    assert after[folder] < before[folder]
    assert not [i for i in await queue(folder) if i["document_id"] == doc and i["unread"]]
    # Again, or a document this cabinet has nothing of: 204, nothing else changes.
    assert (
        await env.client.post(url, json={"document_id": doc}, headers=headers)
    ).status_code == 204
    r = await env.client.post(url, json={"document_id": str(uuid.uuid4())}, headers=headers)
    assert r.status_code == 204
    assert await unread() == after
    r = await env.client.post(url, json={"document_id": "nope"}, headers=headers)
    assert r.status_code in (400, 422)

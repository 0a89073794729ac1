"""Every request hands its database connection back, whatever it did: a GET that never
took one, a GET that used the ORM, a refused decision and a committed one. Back means to
the pool or to the read lane (backend/db/fastread.py), whose parked connections stay
checked out of the pool by design."""

from __future__ import annotations

from backend.db.fastread import parked
from tests.backend.conftest import Env


async def test_no_request_keeps_a_connection(env: Env) -> None:
    def held() -> int:
        return env.engine.sync_engine.pool.checkedout() - parked(env.engine)

    headers = await env.login("governor")
    position = await env.own_position("governor")
    idle = held()
    queue = await env.client.get(
        f"/api/v1/cabinets/{position}/queue", params={"folder": "resolve"}, headers=headers
    )
    assert queue.status_code == 200 and held() == idle
    document_id = queue.json()["items"][0]["document_id"]
    card = await env.client.get(f"/api/v1/documents/{document_id}", headers=headers)
    assert card.status_code == 200 and held() == idle
    # A GET whose session the ORM used (the file's row): that session is closed.
    file_id = card.json()["files"][0]["id"]
    original = await env.client.get(
        f"/api/v1/documents/{document_id}/files/{file_id}", headers=headers
    )
    assert original.status_code == 200 and held() == idle
    # A decision refused halfway (the document is not on a route): rolled back, closed.
    refused = await env.client.post(
        f"/api/v1/documents/{document_id}/visas",
        json={"position_id": position, "decision": "approved", "file_sha256": "0" * 64},
        headers=headers,
    )
    assert refused.status_code == 409, refused.text
    assert held() == idle
    read = await env.client.post(
        f"/api/v1/cabinets/{position}/read", json={"document_id": document_id}, headers=headers
    )
    assert read.status_code == 204 and held() == idle

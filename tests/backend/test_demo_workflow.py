"""The demo region's workflow rows are real: folders are fed by routes and resolutions."""

from __future__ import annotations

from sqlalchemy import func, select

from backend.db.models import Approval, Assignment, CabinetItem, Resolution, RouteSignatory
from tests.backend.conftest import Env
from tests.backend.workflow import scalar


async def test_every_folder_of_the_named_cabinets_is_non_empty(env: Env) -> None:
    for login in ("governor", "minister.digital", "assistant"):
        me = await env.cabinets(login)
        pid = next(
            c["position_id"]
            for c in me["cabinets"]
            if c["role"] == ("assistant" if login == "assistant" else "own")
        )
        r = await env.client.get(f"/api/v1/cabinets/{pid}/folders", headers=await env.login(login))
        assert r.status_code == 200, r.text
        empty = [f["folder"] for f in r.json() if f["count"] == 0]
        assert empty == [], (login, empty)


async def test_demo_items_reference_workflow_rows(env: Env) -> None:
    for folder, model in (
        ("visa", Approval),
        ("sign", RouteSignatory),
        ("drafts", Resolution),
        ("execute", Assignment),
        ("control", Assignment),
    ):
        dangling = await scalar(
            env,
            select(func.count())
            .select_from(CabinetItem)
            .outerjoin(model, model.id == CabinetItem.ref_id)  # type: ignore[attr-defined]
            .where(CabinetItem.folder == folder, model.id.is_(None)),  # type: ignore[attr-defined]
        )
        assert dangling == 0, folder

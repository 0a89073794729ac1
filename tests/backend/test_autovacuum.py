"""cabinet_items carries its own autovacuum thresholds on PostgreSQL (migration 0007)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.backend.conftest import Env


async def test_cabinet_items_is_vacuumed_after_a_fixed_number_of_changes(env: Env) -> None:
    if env.name != "pg":
        pytest.skip("autovacuum is PostgreSQL's")
    async with env.engine.connect() as conn:
        options = (
            await conn.execute(
                text("SELECT reloptions FROM pg_class WHERE relname = 'cabinet_items'")
            )
        ).scalar_one()
    assert set(options) == {
        "autovacuum_vacuum_scale_factor=0",
        "autovacuum_vacuum_threshold=5000",
        "autovacuum_vacuum_insert_scale_factor=0",
        "autovacuum_vacuum_insert_threshold=5000",
    }

"""Run Alembic migrations from code (the `kabinet migrate` command and tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    return cfg


def upgrade(revision: str = "head", database_url: str | None = None) -> None:
    """Migrate the database of the settings (or `database_url`). Blocking: it runs its own
    event loop, so call it from a thread when a loop is already running."""
    cfg = alembic_config()
    cfg.attributes["database_url"] = database_url
    command.upgrade(cfg, revision)


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()

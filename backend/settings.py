"""One frozen settings object, read from KABINET_* environment variables once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


_DEFAULT_PWA_DIR = Path(__file__).resolve().parent.parent / "pwa" / "dist"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    # Short-lived access tokens; the refresh token carries the session.
    access_ttl_seconds: int = 900
    refresh_ttl_seconds: int = 30 * 24 * 3600
    jwt_secret: str | None = None
    max_upload_bytes: int = 50 * 1024 * 1024
    max_pages: int = 500
    max_image_pixels: int = 60_000_000
    page_widths: tuple[int, ...] = (480, 1024, 1600)
    login_max_failures: int = 5
    login_window_seconds: int = 300
    timezone: str = "Asia/Kamchatka"
    db_pool_size: int = 10
    log_json: bool = True
    # The built PWA served at "/" (pwa/dist of a checkout; set in the container image).
    pwa_dir: Path = _DEFAULT_PWA_DIR

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def pages_dir(self) -> Path:
        return self.data_dir / "pages"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings() -> Settings:
    data_dir = Path(os.environ.get("KABINET_DATA_DIR", "./var")).resolve()
    url = os.environ.get("KABINET_DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'kabinet.db'}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+asyncpg://" + url.split("://", 1)[1]
    return Settings(
        data_dir=data_dir,
        database_url=url,
        access_ttl_seconds=_int("KABINET_ACCESS_TTL", 900),
        jwt_secret=os.environ.get("KABINET_JWT_SECRET") or None,
        max_upload_bytes=_int("KABINET_MAX_UPLOAD_BYTES", 50 * 1024 * 1024),
        max_pages=_int("KABINET_MAX_PAGES", 500),
        login_max_failures=_int("KABINET_LOGIN_MAX_FAILURES", 5),
        db_pool_size=_int("KABINET_DB_POOL_SIZE", 10),
        log_json=os.environ.get("KABINET_LOG_FORMAT", "json") == "json",
        pwa_dir=Path(os.environ.get("KABINET_PWA_DIR") or _DEFAULT_PWA_DIR),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()

"""One frozen settings object, read from KABINET_* environment variables once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    return raw in ("1", "true", "yes", "on") if raw else default


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
    db_pool_size: int = 20
    log_json: bool = True
    # Web Push: extra push-service origins (tests add their loopback service), the VAPID
    # contact, and how often the delivery worker looks for work.
    push_allowlist: tuple[str, ...] = ()
    # How long a user's identity and cabinets are reused between requests (per process).
    principal_cache_seconds: float = 5.0
    vapid_subject: str = "mailto:support@kabinet.example"
    push_poll_seconds: float = 1.0
    # After a push round that found work, wait this long before the next (see push_worker).
    push_gather_seconds: float = 0.05
    # The built PWA served at "/" (pwa/dist of a checkout; set in the container image).
    pwa_dir: Path = _DEFAULT_PWA_DIR
    # Signing: a sign request lives minutes (the device signs at once); certificates a year.
    sign_request_ttl_seconds: int = 300
    signing_cert_days: int = 365
    ca_organization: str = "Kabinet"
    pkcs11_module: str = "/usr/lib/softhsm/libsofthsm2.so"
    # The background loops (time-driven jobs; later push delivery) run inside the app
    # process when true. `kabinet serve` turns it on unless told otherwise; an app built by
    # tests or embedded elsewhere leaves it off.
    run_jobs: bool = False
    jobs_interval_seconds: int = 30
    # How long a decision's first answer is kept for replays of its Idempotency-Key. A
    # tablet's offline outbox replays within days; a month leaves room for a long trip.
    idempotency_days: int = 30

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
    def ca_dir(self) -> Path:
        return self.keys_dir / "ca"

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
        db_pool_size=_int("KABINET_DB_POOL_SIZE", 20),
        log_json=os.environ.get("KABINET_LOG_FORMAT", "json") == "json",
        push_allowlist=tuple(
            o.strip()
            for o in os.environ.get("KABINET_PUSH_ENDPOINT_ALLOWLIST", "").split(",")
            if o.strip()
        ),
        principal_cache_seconds=float(os.environ.get("KABINET_PRINCIPAL_CACHE_SECONDS", "5")),
        vapid_subject=os.environ.get("KABINET_VAPID_SUBJECT", "mailto:support@kabinet.example"),
        pwa_dir=Path(os.environ.get("KABINET_PWA_DIR") or _DEFAULT_PWA_DIR),
        run_jobs=_bool("KABINET_RUN_JOBS", False),
        jobs_interval_seconds=max(1, _int("KABINET_JOBS_INTERVAL", 30)),
        idempotency_days=max(1, _int("KABINET_IDEMPOTENCY_DAYS", 30)),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()

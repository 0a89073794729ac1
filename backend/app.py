"""create_app(): plugins, routes, dependencies, error mapping — assembled in one place."""

from __future__ import annotations

import gc
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.compression import CompressionConfig
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.static_files import create_static_files_router

from backend.db.engine import make_engine, make_reader_sessionmaker, make_sessionmaker
from backend.db.fastread import close_lane
from backend.domain.accounts.cache import PrincipalCache
from backend.domain.accounts.controllers import AuthController, MeController
from backend.domain.accounts.tokens import TokenCodec
from backend.domain.cabinet.controllers import CabinetController
from backend.domain.cabinet.services import folder_cache, queue_cache
from backend.domain.calendar.controllers import CalendarController
from backend.domain.documents.card_cache import card_cache
from backend.domain.documents.controllers import DocumentController
from backend.domain.documents.page_grants import page_grants
from backend.domain.files.pages import PageCache
from backend.domain.files.storage import BlobStore
from backend.domain.notifications.controllers import PushController
from backend.domain.ops.controllers import OpsController
from backend.domain.orgs.controllers import PositionController
from backend.domain.resolutions.controllers import AssignmentController, ResolutionController
from backend.domain.routes.controllers import RouteController
from backend.domain.signing.context import build_signing_context
from backend.domain.signing.controllers import SigningController, SignRequestController
from backend.jobs.worker import start_in_background
from backend.secrets_store import read_or_create_secret
from backend.settings import Settings, get_settings
from backend.web.deps import (
    PushConfig,
    Services,
    provide_principal,
    provide_session,
    services_provider,
)
from backend.web.logging import RequestContextMiddleware, configure_logging
from backend.web.problems import EXCEPTION_HANDLERS
from push import EndpointPolicy, VapidKeys


def build_services(settings: Settings) -> Services:
    engine = make_engine(settings)
    jwt_key = (
        settings.jwt_secret.encode()
        if settings.jwt_secret
        else read_or_create_secret(settings.keys_dir / "jwt.key")
    )
    return Services(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        readers=make_reader_sessionmaker(engine),
        tokens=TokenCodec(jwt_key, settings.access_ttl_seconds),
        blobs=BlobStore(settings.files_dir),
        pages=PageCache(settings.pages_dir, settings.page_widths),
        principals=PrincipalCache(settings.principal_cache_seconds),
        page_grants=page_grants(settings.principal_cache_seconds),
        cards=card_cache(),
        folder_counts=folder_cache(),
        queue_pages=queue_cache(),
        push=PushConfig(
            keys=VapidKeys.load_or_create(settings.keys_dir / "vapid"),
            policy=EndpointPolicy(settings.push_allowlist),
        ),
        signing=build_signing_context(
            settings.ca_dir,
            settings.keys_dir / "softhsm",
            organization=settings.ca_organization,
            pkcs11_module=settings.pkcs11_module,
            request_ttl_seconds=settings.sign_request_ttl_seconds,
            cert_days=settings.signing_cert_days,
        ),
    )


GC_YOUNG_THRESHOLD = 20_000


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    configure_logging(json=settings.log_json)
    services = build_services(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
        # The background loops (jobs, push) share this process's engine; they are stopped
        # before the engine is disposed.
        stop_worker = start_in_background(services) if settings.run_jobs else None
        # Everything built so far lives as long as the process: keep it out of the cyclic
        # collector's full passes, which otherwise walk it all and stall the event loop.
        gc.freeze()
        # A full collection walks every object that outlived two younger ones: the
        # caches' cards, principals and tokens. At CPython's default thresholds (700,
        # 10, 10) one came every ~1,400 cold cards and stopped the event loop for 12-25
        # ms, delaying all 16 requests in flight: about 1 % of requests, the p99. The
        # youngest generation is collected every 20,000 allocations instead of 700, so
        # full collections are rarer in proportion; each young collection walks more,
        # but still only what was allocated since the last.
        gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
        try:
            yield
        finally:
            if stop_worker is not None:
                await stop_worker()
            await close_lane(services.engine)
            await services.engine.dispose()

    prometheus = PrometheusConfig(app_name="kabinet", prefix="kabinet", group_path=True)

    class MetricsController(PrometheusController):
        path = "/metrics"

    route_handlers: list[object] = [
        OpsController,
        MetricsController,
        AuthController,
        MeController,
        CabinetController,
        DocumentController,
        PushController,
        PositionController,
        RouteController,
        ResolutionController,
        AssignmentController,
        CalendarController,
        SigningController,
        SignRequestController,
    ]
    if settings.pwa_dir.is_dir():
        route_handlers.append(
            create_static_files_router(
                path="/", directories=[settings.pwa_dir], html_mode=True, name="pwa"
            )
        )

    app = Litestar(
        route_handlers=route_handlers,  # type: ignore[arg-type]
        dependencies={
            "db": Provide(provide_session),
            "principal": Provide(provide_principal),
            "svc": Provide(services_provider(services), use_cache=True),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[RequestContextMiddleware(), prometheus.middleware],
        lifespan=[lifespan],
        request_max_body_size=settings.max_upload_bytes * 4,
        compression_config=CompressionConfig(
            backend="gzip", minimum_size=1024, exclude=["/api/v1/documents/.*/(files|pages)"]
        ),
        openapi_config=OpenAPIConfig(
            title="Kabinet API",
            version="1",
            path="/schema",
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
            security=[{"bearer": []}],
        ),
        debug=False,
    )
    app.state.services = services
    return app

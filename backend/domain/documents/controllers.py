"""Documents: create (multipart), card, original file, page images."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated, Any

import anyio
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import Parameter
from litestar.response import File
from sqlalchemy.ext.asyncio import AsyncSession

from backend.clock import region_today, utcnow
from backend.domain.accounts.access import Principal
from backend.domain.documents import services
from backend.domain.documents.page_grants import PageGrant, PageKey
from backend.domain.documents.schemas import DocumentCardIn, DocumentCardOut
from backend.domain.documents.visibility import visible_document, visible_revision
from backend.domain.signing.services import file_certificates
from backend.domain.signing.stamps import PageStamp
from backend.errors import Invalid, NotFound
from backend.web.deps import Services
from backend.web.idempotency import run_decision

IMMUTABLE = "private, max-age=31536000, immutable"
REVALIDATE = "private, no-cache"
# PDF rendering is CPU-bound; more threads than cores only queue inside PDFium.
_render_limiter = anyio.CapacityLimiter(2)


def _not_modified(request: Request[Any, Any, Any], etag: str) -> bool:
    header = request.headers.get("if-none-match", "")
    return etag in [t.strip() for t in header.split(",")] or header.strip() == "*"


class DocumentController(Controller):
    path = "/api/v1/documents"
    tags = ["documents"]

    @post("/", operation_id="createDocument", status_code=201)
    async def create(
        self, request: Request[Any, Any, Any], principal: Principal, db: AsyncSession, svc: Services
    ) -> Response[bytes]:
        """Create a card from a multipart form: `card` (JSON) and any number of `files`.

        Takes an `Idempotency-Key` like the decisions: a registration retried after a lost
        answer must not take a second journal number."""
        form = await request.form()
        raw = form.get("card")
        if raw is None:
            raise Invalid("multipart part 'card' (JSON) is required", field="card")
        raw_bytes = await raw.read() if isinstance(raw, UploadFile) else str(raw).encode()
        try:
            card = msgspec.json.decode(raw_bytes, type=DocumentCardIn)
        except msgspec.ValidationError as exc:
            raise Invalid(f"card: {exc}", field="card") from exc
        except msgspec.DecodeError as exc:
            raise Invalid("card is not valid JSON", field="card") from exc
        # Check the right before spending time on the files.
        principal.cabinet(card.position_id, "decide")
        uploads = [f for f in form.getall("files", []) if isinstance(f, UploadFile)]
        if len(uploads) != len(form.getall("files", [])):
            raise Invalid("every 'files' part must be a file", field="files")
        if len(uploads) > 20:
            raise Invalid("at most 20 files per document", field="files")
        stored = []
        for up in uploads:
            upload = services.Upload(up.filename, up.content_type, up.file)
            stored.append(
                await anyio.to_thread.run_sync(
                    services.store_upload, svc.blobs, svc.settings, upload
                )
            )
        now = utcnow()

        async def decide() -> DocumentCardOut:
            doc = await services.create_document(
                db, principal, card, stored, now, region_today(svc.settings.timezone, now)
            )
            return await services.document_card(db, doc.id)

        # The files are part of the request: a retry with other bytes is another request.
        body = {"card": card, "files": [[f.name, f.sha256] for f in stored]}
        return await run_decision(request, db, principal, body, decide)

    @get("/{document_id:uuid}", operation_id="documentCard")
    async def card(
        self, document_id: uuid.UUID, principal: Principal, db: AsyncSession, svc: Services
    ) -> DocumentCardOut:
        """The registration card with files, route, resolutions and history."""
        # The card is the same for everyone who may see it; overdue marks depend on the day.
        key = (document_id, region_today(svc.settings.timezone))
        cached = svc.cards.get(key)
        if cached is None:
            revision, card = await services.visible_card(db, principal, document_id)
        else:
            revision = await visible_revision(db, principal, document_id)
            if revision == cached[0]:
                return cached[1]
            card = await services.document_card(db, document_id)
        svc.cards.put(key, (revision, card))
        return card

    @get("/{document_id:uuid}/files/{file_id:uuid}", operation_id="fileContent")
    async def file(
        self,
        request: Request[Any, Any, Any],
        document_id: uuid.UUID,
        file_id: uuid.UUID,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
    ) -> Response[Any]:
        """The original bytes of one file version; ETag is its sha256."""
        await visible_document(db, principal, document_id)
        f = await services.document_file(db, document_id, file_id)
        await db.close()  # streaming the file needs no connection
        etag = f'"{f.sha256}"'
        headers = {"ETag": etag, "Cache-Control": IMMUTABLE}
        if _not_modified(request, etag):
            return Response(b"", status_code=304, headers=headers)
        return File(
            path=svc.blobs.path(f.sha256),
            filename=f.name,
            media_type=f.mime,
            headers=headers,
            content_disposition_type="inline",
        )

    @get("/{document_id:uuid}/files/{file_id:uuid}/pages/{page:int}", operation_id="pageImage")
    async def page(
        self,
        request: Request[Any, Any, Any],
        document_id: uuid.UUID,
        file_id: uuid.UUID,
        page: int,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
        width: Annotated[int, Parameter(ge=1, le=4000)] = 1024,
    ) -> Response[Any]:
        """Page `page` (from 1) as WebP at one of the supported widths; immutable."""
        if width not in svc.settings.page_widths:
            allowed = ", ".join(map(str, svc.settings.page_widths))
            raise Invalid(f"width must be one of {allowed}", field="width")
        key = (principal.user.id, document_id, file_id, page, width)
        grant = svc.page_grants.get(key)
        if grant is None:
            grant = await self._page_grant(db, svc, principal, key)
        headers = {"ETag": grant.etag, "Cache-Control": grant.cache_control}
        if _not_modified(request, grant.etag):
            return Response(b"", status_code=304, headers=headers)
        # A rendered page is 20–300 KB, already in the OS page cache after its first read:
        # reading it whole here is cheaper than a file response's thread hops and chunks.
        try:
            body = grant.path.read_bytes()
        except FileNotFoundError:
            # The page cache was cleared under a remembered grant: render it again.
            svc.page_grants.forget(key)
            grant = await self._page_grant(db, svc, principal, key)
            body = grant.path.read_bytes()
        return Response(body, media_type="image/webp", headers=headers)

    async def _page_grant(
        self,
        db: AsyncSession,
        svc: Services,
        principal: Principal,
        key: PageKey,
    ) -> PageGrant:
        """Check the right, render if needed; remember the answer for a few seconds when
        the page can no longer change (a tablet reads a document's pages in a burst)."""
        _, document_id, file_id, page, width = key
        doc = await visible_document(db, principal, document_id)
        f = await services.document_file(db, document_id, file_id)
        if not 1 <= page <= f.pages:
            raise NotFound(f"no page {page}; the file has {f.pages}")
        cache_control = IMMUTABLE
        stamp: PageStamp | None = None
        if page == f.pages:
            # The last page of a signed version carries the signature stamp(s); the other
            # pages need no look-up. Until the document leaves the route the last page may
            # still gain a stamp, so it is revalidated (a cheap 304) instead of immutable.
            stamp = PageStamp.of(await file_certificates(db, document_id, f.id))
            if doc.state in ("draft", "on_route"):
                cache_control = REVALIDATE
        # Give the connection back before rendering: it does not need it, and holding it
        # while rendering starved the pool under load.
        await db.close()
        variant = stamp.variant if stamp else ""
        etag = f'"{f.sha256}-{page}-{width}{"-" + variant if variant else ""}"'
        cache = svc.pages
        target = cache.path(f.sha256, page, width, variant)
        if not target.is_file():
            target = await anyio.to_thread.run_sync(
                partial(
                    cache.get_or_render,
                    svc.blobs.path(f.sha256),
                    f.mime,
                    f.sha256,
                    page,
                    width,
                    variant=variant,
                    decorate=stamp,
                ),
                limiter=_render_limiter,
            )
        grant = PageGrant(etag, cache_control, target)
        if cache_control == IMMUTABLE:
            # Only what cannot change: a page that may still gain a stamp is looked up
            # every time, so a new signature shows at once.
            svc.page_grants.put(key, grant)
        return grant

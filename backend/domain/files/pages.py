"""Page images: PDF pages through PDFium, scans through Pillow, as WebP at a few widths,
rendered once and cached on disk by (sha256, page, width)."""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image, ImageSequence

from backend.domain.files.formats import PDF, PDFIUM_LOCK
from backend.errors import NotFound

WEBP_QUALITY = 80


class PageCache:
    def __init__(self, root: Path, widths: tuple[int, ...]) -> None:
        self.root = root
        self.widths = widths
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str, page: int, width: int, variant: str = "") -> Path:
        # `variant` names a decorated rendering (the signature stamp), cached beside the plain.
        suffix = f"-{variant}" if variant else ""
        return self.root / sha256[:2] / sha256 / f"{page}-{width}{suffix}.webp"

    def get_or_render(
        self,
        source: Path,
        mime: str,
        sha256: str,
        page: int,
        width: int,
        variant: str = "",
        decorate: Callable[[Image.Image], Image.Image] | None = None,
    ) -> Path:
        """Blocking: call from a worker thread. `decorate` draws on the rendered page (the
        stored file is never changed); give it with its own `variant`."""
        target = self.path(sha256, page, width, variant)
        if target.is_file():
            return target
        image = render_page(source, mime, page, width)
        if decorate is not None:
            image = decorate(image)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".render-")
        try:
            with os.fdopen(fd, "wb") as out:
                image.save(out, "WEBP", quality=WEBP_QUALITY, method=4)
            # Two renders of one page race harmlessly: both write whole files, one wins.
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return target


def render_page(source: Path, mime: str, page: int, width: int) -> Image.Image:
    if mime == PDF:
        with PDFIUM_LOCK:  # PDFium is not thread-safe (see formats.PDFIUM_LOCK)
            pdf = pdfium.PdfDocument(str(source))
            try:
                if not 1 <= page <= len(pdf):
                    raise NotFound(f"no page {page}")
                pdf_page = pdf[page - 1]
                try:
                    page_width, _ = pdf_page.get_size()
                    bitmap = pdf_page.render(scale=width / page_width, may_draw_forms=True)
                    try:
                        # convert() copies out of PDFium's buffer before the bitmap is freed.
                        image: Image.Image = bitmap.to_pil().convert("RGB")
                    finally:
                        bitmap.close()
                finally:
                    pdf_page.close()
            finally:
                pdf.close()
        if image.width != width:  # PDFium rounds the scaled size; the URL promises a width
            height = max(1, round(image.height * width / image.width))
            image = image.resize((width, height), Image.Resampling.LANCZOS)
        return image
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(source) as img:
            frames = getattr(img, "n_frames", 1)
            if not 1 <= page <= frames:
                raise NotFound(f"no page {page}")
            frame = ImageSequence.Iterator(img)[page - 1]
            frame = frame.convert("RGB")
            height = max(1, round(frame.height * width / frame.width))
            return frame.resize((width, height), Image.Resampling.LANCZOS)

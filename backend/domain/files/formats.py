"""What a file really is: its type from its bytes, checked against what the client said,
and its page count. Broken, bomb-like or oversized content is refused here, before a
document row exists."""

from __future__ import annotations

import mimetypes
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image

from backend.errors import Invalid, UnsupportedMedia

PDF = "application/pdf"
IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/tiff": "TIFF"}
ACCEPTED = (PDF, *IMAGE_TYPES)
# A page taller than this many widths is not a document page; rendering it would be a bomb.
MAX_ASPECT = 20
# PDFium is not thread-safe: no two PDFium calls may run at once in a process, not even on
# different documents ("would crash or corrupt the process", pypdfium2 docs). Page renders run
# in worker threads (two at a time) and uploads inspect PDFs too, so every PDFium use holds
# this lock; the WebP encoding and resizing after it run in parallel.
PDFIUM_LOCK = threading.Lock()


@dataclass(frozen=True)
class Inspected:
    mime: str
    pages: int


def sniff(head: bytes) -> str | None:
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    return None


def declared_type(filename: str, content_type: str | None) -> str | None:
    ct = (content_type or "").split(";")[0].strip().lower()
    if ct and ct not in ("application/octet-stream", "binary/octet-stream"):
        return "image/jpeg" if ct == "image/jpg" else ct
    guessed, _ = mimetypes.guess_type(filename)
    return guessed


def inspect_file(
    path: Path, filename: str, content_type: str | None, max_pages: int, max_pixels: int
) -> Inspected:
    with path.open("rb") as fh:
        head = fh.read(16)
    actual = sniff(head)
    declared = declared_type(filename, content_type)
    if actual is None:
        if declared in ACCEPTED:
            raise Invalid(
                f"file '{filename}' is not a valid {declared}: its content does not match"
            )
        raise UnsupportedMedia(
            f"file '{filename}': unsupported type; accepted: PDF, PNG, JPEG, TIFF"
        )
    if declared is not None and declared != actual:
        raise Invalid(f"file '{filename}' is declared as {declared} but its content is {actual}")
    pages = (
        _pdf_pages(path, filename) if actual == PDF else _image_pages(path, filename, max_pixels)
    )
    if pages < 1:
        raise Invalid(f"file '{filename}' has no pages")
    if pages > max_pages:
        raise Invalid(f"file '{filename}' has {pages} pages; the limit is {max_pages}")
    return Inspected(actual, pages)


def _pdf_pages(path: Path, filename: str) -> int:
    with PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as exc:
            raise Invalid(f"file '{filename}' is a broken PDF: {exc}") from exc
        try:
            count = len(pdf)
            for i in range(min(count, 3)):
                page = pdf[i]
                try:
                    w, h = page.get_size()
                finally:
                    page.close()
                if w <= 0 or h <= 0 or max(w / h, h / w) > MAX_ASPECT:
                    raise Invalid(f"file '{filename}': page {i + 1} has an unusable size")
            return count
        finally:
            pdf.close()


def _image_pages(path: Path, filename: str, max_pixels: int) -> int:
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; we refuse both.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise Invalid(
                        f"file '{filename}' is {w}×{h} pixels; the limit is {max_pixels} pixels"
                    )
                if max(w / h, h / w) > MAX_ASPECT:
                    raise Invalid(f"file '{filename}' has an unusable page size {w}×{h}")
                frames = getattr(img, "n_frames", 1)
                img.verify()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise Invalid(f"file '{filename}' looks like a decompression bomb") from exc
        except Invalid:
            raise
        except (OSError, SyntaxError, ValueError, ZeroDivisionError) as exc:
            raise Invalid(f"file '{filename}' is a broken image: {exc}") from exc
    return int(frames)

"""Test files made on the fly: real PDFs, scans, and the broken kinds."""

from __future__ import annotations

import io

from fpdf import FPDF
from PIL import Image


def pdf(pages: int = 2) -> bytes:
    doc = FPDF(format="A4")
    for n in range(pages):
        doc.add_page()
        doc.set_font("helvetica", size=14)
        doc.text(20, 30, f"Test page {n + 1}")
    return bytes(doc.output())


def png(width: int = 800, height: int = 1100, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height), "white").save(buf, "PNG")
    return buf.getvalue()


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (900, 1200), (240, 240, 230)).save(buf, "JPEG")
    return buf.getvalue()


def tiff(pages: int = 3) -> bytes:
    frames = [Image.new("L", (600, 800), 255 - 40 * i) for i in range(pages)]
    buf = io.BytesIO()
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def bomb_png() -> bytes:
    """25 megapixels of one bit: tiny on disk, huge when decoded."""
    return png(5000, 5000, mode="1")

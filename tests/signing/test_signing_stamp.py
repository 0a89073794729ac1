from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from cryptography import x509
from PIL import Image, ImageChops

from signing import draw_stamp, draw_stamp_for_certificate
from signing.stamp import DEJAVU_SANS

pytestmark = pytest.mark.skipif(not DEJAVU_SANS.exists(), reason="fonts-dejavu-core missing")


def _page(width: int = 1240, height: int = 1754) -> Image.Image:
    return Image.new("RGB", (width, height), "white")


def test_stamp_drawn_in_lower_part_original_untouched() -> None:
    page = _page()
    before = page.tobytes()
    stamped = draw_stamp(
        page,
        serial=0x1A2B3C,
        owner="Иванов Иван Иванович",
        valid_from=date(2026, 3, 1),
        valid_to=date(2027, 3, 1),
    )
    assert page.tobytes() == before
    assert stamped is not page and stamped.size == page.size
    bbox = ImageChops.difference(stamped.convert("RGB"), page).getbbox()
    assert bbox is not None
    left, top, right, bottom = bbox
    assert top > page.height // 2  # lower part of the page
    assert 0 <= left < right <= page.width and bottom <= page.height
    # Coloured ink, not just grey.
    colors = stamped.crop(bbox).getcolors(maxcolors=1 << 16) or []
    assert any(isinstance(c, tuple) and c[2] > c[0] + 40 for _count, c in colors)


def test_stamp_from_certificate_on_greyscale_and_small_pages(
    device_cert: x509.Certificate, tmp_path: Path
) -> None:
    for page in (Image.new("L", (600, 850), 255), Image.new("RGBA", (300, 420), "white")):
        stamped = draw_stamp_for_certificate(page, device_cert)
        assert stamped.mode in ("RGB", "RGBA")
        bbox = ImageChops.difference(stamped.convert("RGB"), page.convert("RGB")).getbbox()
        assert bbox is not None and bbox[1] > page.height // 2
        assert bbox[2] <= page.width
    stamped.save(tmp_path / "stamp.png")


def test_explicit_position() -> None:
    page = _page(800, 1100)
    stamped = draw_stamp(
        page,
        serial="00FF",
        owner="Петров П. П.",
        valid_from=date(2026, 1, 1),
        valid_to=date(2026, 12, 31),
        position=(10, 900),
    )
    bbox = ImageChops.difference(stamped, page).getbbox()
    assert bbox is not None and bbox[0] >= 10 and bbox[1] >= 900

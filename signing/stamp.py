"""The visual signature stamp drawn on a page image.

Russian practice (and GOST R 7.0.97-2016 for electronic documents shown on paper) marks an
electronically signed page with a framed block naming the certificate and its owner instead
of a handwritten signature. The text is fixed; only the certificate data varies.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from cryptography import x509
from PIL import Image, ImageDraw, ImageFont

from signing.subject import SubjectInfo

DEJAVU_SANS = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
TITLE = "Документ подписан электронной подписью"
#: Dark blue, the colour of a traditional ink stamp.
STAMP_COLOR = (20, 50, 140)
_MIN_FONT = 8


def draw_stamp(
    image: Image.Image,
    *,
    serial: int | str,
    owner: str,
    valid_from: date,
    valid_to: date,
    position: tuple[int, int] | None = None,
    font_path: Path | str = DEJAVU_SANS,
) -> Image.Image:
    """Return a copy of ``image`` with the stamp; ``image`` itself is not modified.

    ``serial`` is an int (printed as upper-case hex) or an already formatted string.
    ``position`` is the top-left corner of the box in pixels; by default the box is centred
    horizontally in the lower part of the page, where the signature block of a document is.
    The font scales with the page width so the stamp looks the same at any render DPI.
    """
    lines = [
        TITLE,
        f"Сертификат: {format(serial, 'X') if isinstance(serial, int) else serial}",
        f"Владелец: {owner}",
        f"Действителен: с {_ru_date(valid_from)} по {_ru_date(valid_to)}",
    ]
    # RGBA keeps transparency of the input; palette and 1-bit pages need a colour mode to
    # show a coloured stamp at all.
    out = image.convert("RGBA") if image.mode in ("RGBA", "LA", "P") else image.convert("RGB")
    width, height = out.size
    draw = ImageDraw.Draw(out)

    margin = max(4, width // 20)
    size = max(_MIN_FONT, width // 55)
    while True:
        font = ImageFont.truetype(str(font_path), size)
        pad = max(4, size * 3 // 4)
        line_gap = max(2, size // 3)
        text_w = max(int(draw.textlength(line, font=font)) for line in lines)
        ascent, descent = font.getmetrics()
        line_h = ascent + descent
        box_w = text_w + 2 * pad
        box_h = len(lines) * line_h + (len(lines) - 1) * line_gap + 2 * pad
        if box_w <= width - 2 * margin or size <= _MIN_FONT:
            break
        size -= 1  # a long name would overflow a narrow page; shrink rather than clip

    if position is None:
        left = max(0, (width - box_w) // 2)
        top = max(0, height - margin - box_h)
    else:
        left, top = position
    border = max(1, size // 8)
    radius = max(2, size // 2)
    draw.rounded_rectangle(
        (left, top, left + box_w, top + box_h),
        radius=radius,
        outline=STAMP_COLOR,
        width=border,
        fill=(255, 255, 255),
    )
    y = top + pad
    for index, line in enumerate(lines):
        # The title is centred like on a rubber stamp; the data lines align left for reading.
        x = (
            left + (box_w - int(draw.textlength(line, font=font))) // 2
            if index == 0
            else left + pad
        )
        draw.text((x, y), line, font=font, fill=STAMP_COLOR)
        y += line_h + line_gap
    return out


def draw_stamp_for_certificate(
    image: Image.Image,
    certificate: x509.Certificate,
    *,
    position: tuple[int, int] | None = None,
    font_path: Path | str = DEJAVU_SANS,
) -> Image.Image:
    """Draw the stamp with serial, owner (CN) and validity taken from ``certificate``."""
    return draw_stamp(
        image,
        serial=certificate.serial_number,
        owner=SubjectInfo.from_name(certificate.subject).full_name,
        valid_from=certificate.not_valid_before_utc.date(),
        valid_to=certificate.not_valid_after_utc.date(),
        position=position,
        font_path=font_path,
    )


def _ru_date(value: date) -> str:
    if isinstance(value, datetime):
        value = value.date()
    return value.strftime("%d.%m.%Y")

"""Multi-page PDF letters in Russian, drawn with fpdf2 and DejaVu (Cyrillic)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from fpdf import FPDF

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
LINE = 5.6

TOP, BOTTOM = 25.0, 275.0


def letter_pdf(
    header: str,
    number: str,
    date: str,
    addressee: str,
    title: str,
    paragraphs: list[str],
    signer: str,
    pages: int,
) -> bytes:
    """A letter of exactly `pages` pages: header, addressee, title, body, signature."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    # Parsing the fonts is most of the cost (~60 ms); fpdf2's font copies cannot be shared
    # because subsetting mutates the parsed font, so the demo limits unique PDFs instead.
    pdf.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    # Text is pre-wrapped and placed line by line: fpdf2's own line breaking is ~5x slower.
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 13)
    y = TOP
    for line in textwrap.wrap(header.upper(), 60):
        pdf.text(105 - pdf.get_string_width(line) / 2, y, line)
        y += 6.5
    pdf.set_draw_color(40, 40, 120)
    pdf.line(20, y, 190, y)
    pdf.set_font("DejaVu", "", 10)
    y += 7
    pdf.text(20, y, f"{date}  № {number}")
    y += 10
    for line in textwrap.wrap(addressee, 40):
        pdf.text(115, y, line)
        y += 5.5
    y += 6
    pdf.set_font("DejaVu", "B", 11)
    for line in textwrap.wrap(title, 72):
        pdf.text(20, y, line)
        y += 6
    y += 4
    pdf.set_font("DejaVu", "", 11)
    page = 1
    i = 0
    while True:
        para = paragraphs[i % len(paragraphs)]
        i += 1
        for line in textwrap.wrap(para, 78, initial_indent="      "):
            if y > BOTTOM:
                if page == pages:
                    break
                pdf.set_font("DejaVu", "", 8)
                pdf.text(190, 290, str(page))
                pdf.set_font("DejaVu", "", 11)
                pdf.add_page()
                page += 1
                y = TOP
            pdf.text(20, y, line)
            y += LINE
        else:
            y += 2
            if page == pages and (i >= len(paragraphs)) and y < BOTTOM - 20:
                break
            continue
        break
    y = min(y + 12, BOTTOM + 8)
    pdf.set_font("DejaVu", "", 11)
    pdf.text(20, y, signer)
    pdf.set_font("DejaVu", "", 8)
    pdf.text(190, 290, str(page))
    return bytes(pdf.output())

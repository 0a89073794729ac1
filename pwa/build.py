"""Build the PWA into pwa/dist: copy the sources and draw the app icons.

Plain files, no bundler yet; `make run` and `make test` call this, and dist/ is not
committed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent
SRC, DIST = ROOT / "src", ROOT / "dist"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def icon(size: int) -> Image.Image:
    img = Image.new("RGB", (size, size), "#1f3a68")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, int(size * 0.55))
    draw.text((size / 2, size / 2), "К", font=font, fill="white", anchor="mm")
    return img


def main() -> None:
    if DIST.exists():
        shutil.rmtree(DIST)
    shutil.copytree(SRC, DIST)
    (DIST / "icons").mkdir(exist_ok=True)
    for size in (192, 512):
        icon(size).save(DIST / "icons" / f"icon-{size}.png")
    print(f"PWA built into {DIST}")


if __name__ == "__main__":
    main()

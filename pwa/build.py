"""Build the PWA into pwa/dist: copy the sources, draw the app icons, stamp the service worker.

Plain ES modules, no bundler: `make run` and `make test` call this, and dist/ is not
committed. The service worker gets the build hash (its shell cache is named with it, so a
new build installs a new worker and the old cache is deleted on activate) and the list of
shell files to precache.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent
SRC, DIST = ROOT / "src", ROOT / "dist"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
SW = "sw.js"
# Served by the backend or generated, never precached.
NOT_PRECACHED = {SW}


def icon(size: int) -> Image.Image:
    img = Image.new("RGB", (size, size), "#1f3a68")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, int(size * 0.55))
    draw.text((size / 2, size / 2), "К", font=font, fill="white", anchor="mm")
    return img


def shell_files(dist: Path) -> list[str]:
    files = sorted(
        p.relative_to(dist).as_posix()
        for p in dist.rglob("*")
        if p.is_file() and p.relative_to(dist).as_posix() not in NOT_PRECACHED
    )
    return ["/" + f for f in files]


def build_hash(dist: Path, files: list[str]) -> str:
    h = hashlib.sha256()
    for f in [*files, "/" + SW]:
        h.update(f.encode())
        h.update(b"\0")
        h.update((dist / f.lstrip("/")).read_bytes())
    return h.hexdigest()[:12]


def main() -> None:
    if DIST.exists():
        shutil.rmtree(DIST)
    shutil.copytree(SRC, DIST)
    (DIST / "icons").mkdir(exist_ok=True)
    for size in (192, 512):
        icon(size).save(DIST / "icons" / f"icon-{size}.png", optimize=True)
    files = shell_files(DIST)
    build = build_hash(DIST, files)
    sw = DIST / SW
    text = sw.read_text(encoding="utf-8")
    if "__BUILD__" not in text or "__PRECACHE__" not in text:
        raise SystemExit(f"{sw}: the __BUILD__ and __PRECACHE__ placeholders are missing")
    text = text.replace("__BUILD__", build).replace("__PRECACHE__", json.dumps(files))
    sw.write_text(text, encoding="utf-8")
    (DIST / "build.json").write_text(json.dumps({"build": build, "files": files}) + "\n")
    print(f"PWA build {build} ({len(files)} shell files) in {DIST}")


if __name__ == "__main__":
    main()

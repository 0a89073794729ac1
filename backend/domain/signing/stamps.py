"""The visual stamp on the page images of a signed file version.

Only the image changes; the stored file (what the CMS signs) never does. The stamped image
is cached under its own key — the file's sha256, page, width and a short hash of the
signatures on it — so a page rendered before signing is never served as the signed one.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from PIL import Image

from signing import draw_stamp_for_certificate

# The stamp font is page width // 55 (see signing.stamp); a box is at most ~7.5 lines of that
# height. Several stamps stack upwards from the bottom margin with this much room each.
_BOX_HEIGHT_IN_FONT_SIZES = 8


@dataclass(frozen=True)
class PageStamp:
    """Stamps of one file version's signatures, in signing order."""

    signature_ids: tuple[uuid.UUID, ...]
    certificates: tuple[bytes, ...]

    @classmethod
    def of(cls, rows: Sequence[tuple[uuid.UUID, bytes]]) -> PageStamp | None:
        if not rows:
            return None
        return cls(tuple(r[0] for r in rows), tuple(r[1] for r in rows))

    @property
    def variant(self) -> str:
        """Part of the page cache key and ETag: changes with every added signature."""
        h = hashlib.sha256(b"".join(i.bytes for i in self.signature_ids))
        return "s" + h.hexdigest()[:16]

    def __call__(self, image: Image.Image) -> Image.Image:
        """Blocking (Pillow): draw every signature's stamp on `image`, return a new image."""
        certs = [x509.load_der_x509_certificate(der) for der in self.certificates]
        if len(certs) == 1:
            return draw_stamp_for_certificate(image, certs[0])
        width, height = image.size
        margin = max(4, width // 20)
        step = max(8, width // 55) * _BOX_HEIGHT_IN_FONT_SIZES
        out = image
        # The last signatory's stamp lowest, as signatures sit at the end of a document.
        for index, cert in enumerate(reversed(certs)):
            top = max(0, height - margin - (index + 1) * step)
            out = draw_stamp_for_certificate(out, cert, position=(margin, top))
        return out

"""Content-addressed blob storage on disk (object storage later, behind this interface)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO

from backend.errors import TooLarge

CHUNK = 1024 * 1024


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def spool(self, source: IO[bytes], limit: int) -> tuple[Path, str, int]:
        """Copy a stream to a temp file in the store, hashing it; refuse past `limit` bytes."""
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(f"file is larger than the limit of {limit} bytes")
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            os.unlink(tmp)
            raise
        return Path(tmp), digest.hexdigest(), size

    def commit(self, tmp: Path, sha256: str) -> Path:
        """Move a spooled file to its content address (idempotent: same bytes, same place)."""
        final = self.path(sha256)
        final.parent.mkdir(exist_ok=True)
        if final.exists():
            tmp.unlink()
        else:
            os.replace(tmp, final)
        return final

    def put_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if not self.exists(sha):
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            self.commit(Path(tmp), sha)
        return sha

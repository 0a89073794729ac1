"""Secrets generated into the data dir on first start; never committed, overridable by env."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def read_or_create_secret(path: Path, nbytes: int = 32) -> bytes:
    """Return the secret at `path`, creating it (mode 0600) if it does not exist yet.

    O_EXCL makes two processes starting at once agree on one secret.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as fh:
        value = secrets.token_bytes(nbytes)
        fh.write(value.hex())
    return value

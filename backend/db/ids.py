"""Time-ordered UUIDs (UUIDv7 layout) so new rows land at the right edge of B-tree indexes.

Within one process ids are strictly increasing (RFC 9562 §6.2, method 3: when the clock
has not moved, increment), so ordering by id gives creation order even inside one
millisecond — e.g. the files of one upload.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last = 0


def new_id() -> uuid.UUID:
    global _last
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version 7
    value |= (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62  # RFC 4122 variant
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF
    with _lock:
        if value <= _last:
            # Same millisecond: step past the previous id (carrying into rand_a is fine).
            value = _last + 1
        _last = value
    return uuid.UUID(int=value)

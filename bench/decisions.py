"""Request lists for `bench.run` runs in which every request differs (bench/walk.lua).

Visas: every request is a different approver's real visa.

Each line wrk sends is one open approval of an active route stage: the approver's own
access token (minted with the server's JWT key from the data dir, as a login would issue
it, to keep argon2 out of the measurement), the document and the sha256 of its current
main file. A visa is a full decision: idempotency record, the approval, the cabinet item
closed, stage completion and the next stage or the signatory asked when the last
approver answers, the audit record and the outbox event, all in one transaction.

Cold cards: every request is another document's card, asked by a user whose cabinet
holds it, so neither the card cache nor (mostly) the principal cache helps.

Cold queues: every request is another cabinet's folder (first page of 20), asked by the
cabinet's holder, so the queue page cache (cabinet/services.py, cached_queue) does not help.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from pathlib import Path

import asyncpg

from backend.domain.accounts.tokens import TokenCodec
from backend.secrets_store import read_or_create_secret

_PENDING = """
SELECT DISTINCT ON (a.id) h.user_id, a.document_id, a.position_id, f.sha256
FROM approvals a
JOIN route_stages s ON s.id = a.stage_id AND s.state = 'active'
JOIN position_holders h ON h.position_id = a.position_id
JOIN document_files f ON f.document_id = a.document_id AND f.is_current AND f.role = 'main'
WHERE a.decision IS NULL AND NOT a.stale
ORDER BY a.id, h.user_id
LIMIT $1
"""


async def pending_visas(
    db_url: str, limit: int
) -> list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, str]]:
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(_PENDING, limit)
    finally:
        await conn.close()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def spread(
    rows: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, str]], width: int
) -> list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, str]]:
    """Reorder visas so that concurrent ones are on different drafts, yet each stage is
    completed soon: blocks of `width` drafts, in each block first every draft's first
    approver, then every draft's second, and so on. The share of visas that complete a
    stage (and ask the next one) stays what it is in the list, as in real use; only the
    wait on one route's lock, which three approvers pressing at the same instant would
    meet, is taken out (see --visa-order grouped)."""
    by_document: dict[uuid.UUID, list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, str]]] = {}
    for row in rows:
        by_document.setdefault(row[1], []).append(row)
    documents = list(by_document.values())
    out = []
    for start in range(0, len(documents), width):
        block = documents[start : start + width]
        for turn in range(max(len(d) for d in block)):
            out.extend(d[turn] for d in block if turn < len(d))
    return out


class _Tokens:
    """Access tokens as a login would issue them, signed with the server's own key."""

    def __init__(self, data_dir: Path) -> None:
        self._codec = TokenCodec(read_or_create_secret(data_dir / "keys" / "jwt.key"), 3600)
        self._now = dt.datetime.now(dt.UTC)
        self._issued: dict[uuid.UUID, str] = {}

    def __call__(self, user_id: uuid.UUID) -> str:
        if user_id not in self._issued:
            self._issued[user_id] = self._codec.issue(user_id, uuid.uuid4(), self._now)
        return self._issued[user_id]


def write_requests(
    rows: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, str]], data_dir: Path, out: Path
) -> int:
    """One line per visa for bench/walk.lua: POST, token, path, JSON body."""
    token = _Tokens(data_dir)
    with out.open("w") as f:
        for user_id, document_id, position_id, sha in rows:
            body = json.dumps(
                {"position_id": str(position_id), "decision": "approved", "file_sha256": sha}
            )
            f.write(f"POST\t{token(user_id)}\t/api/v1/documents/{document_id}/visas\t{body}\n")
    return len(rows)


_CARDS = """
SELECT DISTINCT ON (ci.document_id) h.user_id, ci.document_id
FROM cabinet_items ci
JOIN position_holders h ON h.position_id = ci.position_id
ORDER BY ci.document_id, h.user_id
LIMIT $1
"""


async def visible_cards(db_url: str, limit: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(user, document) pairs: each document once, with a user whose cabinet holds it."""
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(_CARDS, limit)
    finally:
        await conn.close()
    pairs = [(r[0], r[1]) for r in rows]
    random.Random(1).shuffle(pairs)
    return pairs


def write_card_requests(pairs: list[tuple[uuid.UUID, uuid.UUID]], data_dir: Path, out: Path) -> int:
    """One line per card for bench/walk.lua: GET, token, path."""
    token = _Tokens(data_dir)
    with out.open("w") as f:
        for user_id, document_id in pairs:
            f.write(f"GET\t{token(user_id)}\t/api/v1/documents/{document_id}\n")
    return len(pairs)


_QUEUES = """
SELECT DISTINCT ON (ci.position_id, ci.folder) h.user_id, ci.position_id, ci.folder
FROM cabinet_items ci
JOIN position_holders h ON h.position_id = ci.position_id
WHERE ci.state = 'open'
ORDER BY ci.position_id, ci.folder, h.user_id
"""


async def cabinet_folders(db_url: str) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
    """(user, position, folder) for every folder with open items, with its holder."""
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(_QUEUES)
    finally:
        await conn.close()
    found = [(r[0], r[1], r[2]) for r in rows]
    random.Random(1).shuffle(found)
    return found


def write_queue_requests(
    found: list[tuple[uuid.UUID, uuid.UUID, str]], data_dir: Path, out: Path
) -> int:
    """One line per queue page for bench/walk.lua: GET, token, path."""
    token = _Tokens(data_dir)
    with out.open("w") as f:
        for user_id, position_id, folder in found:
            path = f"/api/v1/cabinets/{position_id}/queue?folder={folder}&limit=20"
            f.write(f"GET\t{token(user_id)}\t{path}\n")
    return len(found)

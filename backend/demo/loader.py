"""`kabinet demo`: build the demo region and its documents with bulk inserts.

Small runs (the default) get one real PDF per document; region-scale runs
(`--documents 1000000`) reuse a pool of generated PDFs, since the bytes are
content-addressed and only the database rows matter for scale.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.db.ids import new_id
from backend.db.models import (
    Approval,
    Assignment,
    AuditEvent,
    CabinetAccess,
    CabinetItem,
    Correspondent,
    Document,
    DocumentAddressee,
    DocumentFile,
    Journal,
    Organization,
    Position,
    PositionHolder,
    Resolution,
    Route,
    RouteApprover,
    RouteSignatory,
    RouteStage,
    User,
)
from backend.demo import region, texts
from backend.demo.names import Person, person
from backend.demo.pdfs import letter_pdf
from backend.domain.accounts.passwords import hash_password
from backend.domain.calendar.services import end_of_day
from backend.domain.files.storage import BlobStore
from backend.settings import Settings

DEMO_PASSWORD = "demo"
UNIQUE_PDF_LIMIT = 120
PDF_POOL = 24
BATCH = 5000


@dataclass
class Pos:
    id: uuid.UUID
    title: str
    org_id: uuid.UUID
    org_name: str
    holder: Person
    user_id: uuid.UUID
    clerk: bool = False


@dataclass
class Rows:
    orgs: list[dict[str, Any]] = field(default_factory=list)
    positions: list[dict[str, Any]] = field(default_factory=list)
    users: list[dict[str, Any]] = field(default_factory=list)
    holders: list[dict[str, Any]] = field(default_factory=list)
    access: list[dict[str, Any]] = field(default_factory=list)
    journals: list[dict[str, Any]] = field(default_factory=list)
    correspondents: list[dict[str, Any]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    addressees: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    routes: list[dict[str, Any]] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)
    route_approvers: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    signatories: list[dict[str, Any]] = field(default_factory=list)
    resolutions: list[dict[str, Any]] = field(default_factory=list)
    assignments: list[dict[str, Any]] = field(default_factory=list)

    def tables(self) -> Iterable[tuple[Table, list[dict[str, Any]]]]:
        yield from (
            (Organization.__table__, self.orgs),
            (Position.__table__, self.positions),
            (User.__table__, self.users),
            (PositionHolder.__table__, self.holders),
            (CabinetAccess.__table__, self.access),
            (Journal.__table__, self.journals),
            (Correspondent.__table__, self.correspondents),
            (Document.__table__, self.documents),
            (DocumentFile.__table__, self.files),
            (DocumentAddressee.__table__, self.addressees),
            (CabinetItem.__table__, self.items),
            (AuditEvent.__table__, self.audit),
            (Route.__table__, self.routes),
            (RouteStage.__table__, self.stages),
            (RouteApprover.__table__, self.route_approvers),
            (Approval.__table__, self.approvals),
            (RouteSignatory.__table__, self.signatories),
            (Resolution.__table__, self.resolutions),
            (Assignment.__table__, self.assignments),
        )  # type: ignore[misc]

    def clear_documents(self) -> None:
        for rows in (
            self.correspondents,
            self.documents,
            self.files,
            self.addressees,
            self.items,
            self.audit,
            self.routes,
            self.stages,
            self.route_approvers,
            self.approvals,
            self.signatories,
            self.resolutions,
            self.assignments,
        ):
            rows.clear()


@dataclass
class JournalState:
    id: uuid.UUID
    fmt: str
    seq: int = 0


# Documents a day in the seed's region, times the days the random recent scenarios span.
DOCUMENTS_PER_DAY = 5_000
RECENT_DAYS = 45
RECENT_DOCUMENTS_CAP = DOCUMENTS_PER_DAY * RECENT_DAYS


class RegionBuilder:
    def __init__(self, seed: int, now: dt.datetime, blobs: BlobStore) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.today = now.date()
        self.blobs = blobs
        self.rows = Rows()
        self.password_hash = hash_password(DEMO_PASSWORD)
        self.named: dict[str, Pos] = {}
        self.clerks: dict[uuid.UUID, Pos] = {}
        self.journals: dict[tuple[uuid.UUID, str], JournalState] = {}
        self.ministers: list[Pos] = []
        self.municipal_heads: list[Pos] = []
        self.specialists: dict[uuid.UUID, list[Pos]] = {}  # by organisation
        self.vice: list[Pos] = []
        self.all_positions: list[Pos] = []
        self._login_seq = 0
        self._pdf_pool: list[tuple[str, int, int]] = []
        self.documents_made = 0
        self.recent_made = 0  # random documents inside the last RECENT_DAYS
        self.journal_rows_written = False

    # --- structure ------------------------------------------------------------------------

    def org(self, name: str, short: str, kind: str, parent: uuid.UUID | None) -> uuid.UUID:
        oid = new_id()
        self.rows.orgs.append(
            {"id": oid, "parent_id": parent, "name": name, "short_name": short, "kind": kind}
        )
        return oid

    def position(
        self,
        org_id: uuid.UUID,
        org_name: str,
        title: str,
        parent: Pos | None,
        *,
        login: str | None = None,
        executive: bool = False,
        dsp: bool = False,
        clerk: bool = False,
    ) -> Pos:
        pid = new_id()
        holder = person(self.rng)
        if login is None:
            self._login_seq += 1
            login = f"user{self._login_seq:05d}"
        uid = new_id()
        self.rows.positions.append(
            {
                "id": pid,
                "organization_id": org_id,
                "parent_id": parent.id if parent else None,
                "title": title,
                "is_executive": executive,
                "dsp_cleared": dsp,
                "is_clerk": clerk,
            }
        )
        self.rows.users.append(
            {
                "id": uid,
                "login": login,
                "full_name": holder.full_name,
                "password_hash": self.password_hash,
                "is_active": True,
                "created_at": self.now,
            }
        )
        self.rows.holders.append({"user_id": uid, "position_id": pid})
        pos = Pos(pid, title, org_id, org_name, holder, uid, clerk)
        self.all_positions.append(pos)
        if clerk:
            self.clerks[org_id] = pos
        return pos

    def journal(self, org_id: uuid.UUID, kind: str, name: str, fmt: str) -> None:
        jid = new_id()
        self.journals[(org_id, kind)] = JournalState(jid, fmt)
        self.rows.journals.append(
            {
                "id": jid,
                "organization_id": org_id,
                "name": name,
                "kind": kind,
                "number_format": fmt,
                "year": self.today.year,
                "last_seq": 0,
            }
        )

    def build_structure(self) -> None:
        gov_name = f"Правительство {region.REGION_GEN}"
        gov = self.org(gov_name, "Правительство", "government", None)
        adm_name = f"Администрация Губернатора {region.REGION_GEN}"
        adm = self.org(adm_name, "Администрация Губернатора", "administration", gov)
        governor = self.position(
            gov,
            gov_name,
            f"Губернатор {region.REGION_GEN}",
            None,
            login="governor",
            executive=True,
            dsp=True,
        )
        first = self.position(
            gov,
            gov_name,
            f"Первый вице-губернатор {region.REGION_GEN}",
            governor,
            login="first.deputy",
            executive=True,
            dsp=True,
        )
        self.vice = [
            self.position(gov, gov_name, t, governor, executive=True, dsp=True)
            for t in region.VICE_GOVERNORS
        ]
        head_adm = self.position(
            adm,
            adm_name,
            "Руководитель Администрации Губернатора",
            governor,
            executive=True,
            dsp=True,
        )
        assistant = self.position(
            adm, adm_name, "Помощник Губернатора", head_adm, login="assistant", dsp=True
        )
        lawyer = self.position(
            adm,
            adm_name,
            "Начальник Главного правового управления",
            head_adm,
            login="lawyer",
            executive=True,
            dsp=True,
        )
        # The Government's registry office registers the governor's and Government's mail.
        clerk = self.position(
            gov,
            gov_name,
            "Консультант отдела документационного обеспечения",
            head_adm,
            login="clerk",
            dsp=True,
            clerk=True,
        )
        self.clerks[gov] = clerk
        self.named.update(
            governor=governor,
            first=first,
            assistant=assistant,
            lawyer=lawyer,
            clerk=clerk,
            head_adm=head_adm,
        )
        self.journal(
            gov, "incoming", "Входящие документы Губернатора и Правительства", "01-12/{seq}"
        )
        self.journal(gov, "citizen_appeal", "Обращения граждан", "ОГ-{seq}")
        self.journal(gov, "outgoing", "Исходящие документы", "01-15/{seq}")
        self.journal(gov, "npa", "Постановления Правительства", "{seq}-П")
        self.rows.access.append(
            {
                "id": new_id(),
                "position_id": governor.id,
                "user_id": assistant.user_id,
                "role": "assistant",
                "rights": ["read", "prepare_resolutions"],
                "valid_from": None,
                "valid_to": None,
                "created_at": self.now,
            }
        )
        for code, name, short, login in region.MINISTRIES:
            full = f"{name} {region.REGION_GEN}"
            oid = self.org(full, short, "ministry", gov)
            curator = self.vice[region.CURATORS[code]]
            minister = self.position(
                oid,
                full,
                f"Министр {name.removeprefix('Министерство ')} {region.REGION_GEN}",
                curator,
                login=login,
                executive=True,
                dsp=True,
            )
            self.ministers.append(minister)
            if login:
                self.named[login] = minister
            deputy = self.position(
                oid, full, f"Заместитель министра ({short})", minister, executive=True, dsp=True
            )
            mclerk = self.position(
                oid,
                full,
                f"Главный специалист-делопроизводитель ({short})",
                deputy,
                dsp=True,
                clerk=True,
            )
            del mclerk
            self.journal(oid, "incoming", f"Входящие документы ({short})", f"{short}-вх-{{seq}}")
            staff: list[Pos] = []
            for d_index, dep in enumerate(region.DEPARTMENTS.get(code, region.DEFAULT_DEPARTMENTS)):
                head = self.position(oid, full, f"Начальник отдела: {dep}", deputy, executive=True)
                staff.append(head)
                for k in range(2):
                    spec_login = (
                        "executor" if (code == "sport" and d_index == 0 and k == 0) else None
                    )
                    spec = self.position(
                        oid, full, f"Главный специалист: {dep}", head, login=spec_login
                    )
                    staff.append(spec)
                    if spec_login:
                        self.named["executor"] = spec
            self.specialists[oid] = staff
            ma = self.position(oid, full, f"Помощник министра ({short})", minister)
            self.rows.access.append(
                {
                    "id": new_id(),
                    "position_id": minister.id,
                    "user_id": ma.user_id,
                    "role": "assistant",
                    "rights": ["read", "prepare_resolutions"],
                    "valid_from": None,
                    "valid_to": None,
                    "created_at": self.now,
                }
            )
        # A vice-governor acts for the minister of health during the minister's leave.
        health = self.ministers[3]
        self.rows.access.append(
            {
                "id": new_id(),
                "position_id": health.id,
                "user_id": self.vice[0].user_id,
                "role": "acting",
                "rights": ["read", "decide", "sign"],
                "valid_from": self.now - dt.timedelta(days=3),
                "valid_to": self.now + dt.timedelta(days=11),
                "created_at": self.now,
            }
        )
        for name in region.MUNICIPALITIES:
            oid = self.org(f"Администрация: {name}", name, "municipality", gov)
            head = self.position(oid, name, f"Глава — {name}", governor, executive=True, dsp=True)
            self.municipal_heads.append(head)
            self.position(oid, name, f"Управляющий делами — {name}", head, dsp=True, clerk=True)
            self.journal(oid, "incoming", f"Входящие ({name})", "вх-{seq}")

    def add_staff(self, total_users: int) -> None:
        """Grow the region to `total_users` with specialists spread over ministries."""
        orgs = list(self.specialists)
        while len(self.rows.users) < total_users:
            oid = self.rng.choice(orgs)
            head = self.specialists[oid][0]
            spec = self.position(oid, head.org_name, "Ведущий специалист", head)
            self.specialists[oid].append(spec)

    # --- documents ------------------------------------------------------------------------

    def _pdf(
        self, header: str, number: str, date: dt.date, addressee: str, title: str, signer: str
    ) -> tuple[str, int, int]:
        pages = self.rng.choice((1, 1, 2, 2, 3, 4))
        if self.documents_made >= UNIQUE_PDF_LIMIT:
            if len(self._pdf_pool) < PDF_POOL:
                self._pdf_pool.append(
                    self._pdf_unique(header, number, date, addressee, title, signer, pages)
                )
            return self.rng.choice(self._pdf_pool)
        return self._pdf_unique(header, number, date, addressee, title, signer, pages)

    def _pdf_unique(
        self,
        header: str,
        number: str,
        date: dt.date,
        addressee: str,
        title: str,
        signer: str,
        pages: int,
    ) -> tuple[str, int, int]:
        data = letter_pdf(
            header,
            number,
            date.strftime("%d.%m.%Y"),
            addressee,
            title,
            texts.body(self.rng, 4),
            signer,
            pages,
        )
        return self.blobs.put_bytes(data), len(data), pages

    def document(
        self,
        *,
        kind: str,
        author: Pos,
        title: str,
        state: str,
        created: dt.datetime,
        correspondent: str | None = None,
        corr_kind: str = "organization",
        register_in: uuid.UUID | None = None,
        deadline: dt.date | None = None,
        urgent: bool = False,
        dsp: bool = False,
        addressee: Pos | None = None,
        history: bool = True,
    ) -> uuid.UUID:
        did = new_id()
        self.documents_made += 1
        corr_id = None
        if correspondent:
            corr_id = new_id()
            self.rows.correspondents.append(
                {"id": corr_id, "name": correspondent, "kind": corr_kind}
            )
        reg_number = reg_seq = journal_id = reg_date = None
        if register_in is not None:
            jkind = (
                "citizen_appeal"
                if kind == "citizen_appeal" and (register_in, kind) in self.journals
                else "incoming"
            )
            journal = (
                self.journals.get((register_in, jkind)) or self.journals[(register_in, "incoming")]
            )
            journal.seq += 1
            reg_seq = journal.seq
            reg_number = journal.fmt.replace("{seq}", str(journal.seq))
            journal_id = journal.id
            reg_date = created.date()
        header = correspondent if correspondent and corr_kind != "citizen" else author.org_name
        to = f"{addressee.title} {addressee.holder.short}" if addressee else ""
        sha, size, pages = self._pdf(
            header,
            reg_number or "проект",
            created.date(),
            to,
            title,
            author.holder.short if not correspondent else "Руководитель",
        )
        self.rows.documents.append(
            {
                "id": did,
                "kind": kind,
                "title": title,
                "summary": None,
                "access_level": "dsp" if dsp else "open",
                "state": state,
                "organization_id": author.org_id,
                "author_position_id": author.id,
                "created_by_id": author.user_id,
                "correspondent_id": corr_id,
                "journal_id": journal_id,
                "reg_number": reg_number,
                "reg_seq": reg_seq,
                "reg_date": reg_date,
                "outgoing_number": None,
                "outgoing_date": None,
                "deadline": deadline,
                "urgent": urgent,
                "created_at": created,
            }
        )
        self.rows.files.append(
            {
                "id": new_id(),
                "document_id": did,
                "slot_id": new_id(),
                "role": "main",
                "name": f"{(reg_number or 'проект').replace('/', '-')}.pdf",
                "mime": "application/pdf",
                "size": size,
                "sha256": sha,
                "version": 1,
                "pages": pages,
                "is_current": True,
                "created_at": created,
                "created_by_id": author.user_id,
            }
        )
        if history:
            self.rows.audit.append(
                {
                    "id": new_id(),
                    "at": created,
                    "user_id": author.user_id,
                    "position_id": author.id,
                    "actor_role": "own",
                    "action": "document.registered" if reg_number else "document.created",
                    "document_id": did,
                    "object_type": "document",
                    "object_id": did,
                    "details": {"reg_number": reg_number},
                }
            )
        return did

    def item(
        self,
        pos: Pos,
        folder: str,
        doc: uuid.UUID,
        action: str,
        received: dt.datetime,
        deadline: dt.date | None = None,
        urgent: bool = False,
        done: bool = False,
        ref: uuid.UUID | None = None,
    ) -> None:
        self.rows.items.append(
            {
                "id": new_id(),
                "position_id": pos.id,
                "folder": folder,
                "document_id": doc,
                "ref_id": ref,
                "state": "done" if done else "open",
                "expected_action": action,
                "deadline": deadline,
                "urgent": urgent,
                "unread": not done and self.rng.random() < 0.4,
                "received_at": received,
                "done_at": received + dt.timedelta(days=2) if done else None,
            }
        )

    # Scenarios: each makes one document and the cabinet items that make it visible.

    def _when(self, max_days: int = 45) -> dt.datetime:
        return self.now - dt.timedelta(minutes=self.rng.randint(30, max_days * 24 * 60))

    def _deadline(self, received: dt.datetime) -> dt.date:
        return received.date() + dt.timedelta(days=self.rng.choice((3, 5, 10, 10, 15, 30)))

    def incoming(self, to: Pos, folder: str = "resolve") -> None:
        at = self._when()
        gov_org = self.named["governor"].org_id
        reg_org = to.org_id if (to.org_id, "incoming") in self.journals else gov_org
        clerk = self.clerks.get(reg_org, self.named["clerk"])
        sender = self.rng.choice(region.FEDERAL_SENDERS + region.COMPANIES)
        deadline = self._deadline(at) if folder == "resolve" else None
        urgent = self.rng.random() < 0.1
        doc = self.document(
            kind="incoming",
            author=clerk,
            title=texts.title(self.rng, "incoming"),
            state="registered",
            created=at,
            correspondent=sender,
            register_in=reg_org,
            deadline=deadline,
            urgent=urgent,
            addressee=to,
        )
        self.rows.addressees.append({"document_id": doc, "position_id": to.id, "mode": folder})
        self.item(
            to, folder, doc, "resolve" if folder == "resolve" else "read", at, deadline, urgent
        )

    def appeal(self, to: Pos) -> None:
        at = self._when(25)
        gov_org = self.named["governor"].org_id
        citizen = person(self.rng)
        deadline = at.date() + dt.timedelta(days=30)  # 59-FZ: answer within 30 days
        doc = self.document(
            kind="citizen_appeal",
            author=self.named["clerk"],
            title=texts.title(self.rng, "citizen_appeal"),
            state="registered",
            created=at,
            correspondent=citizen.full_name,
            corr_kind="citizen",
            register_in=gov_org,
            deadline=deadline,
            dsp=self.rng.random() < 0.3,
            addressee=to,
        )
        self.rows.addressees.append({"document_id": doc, "position_id": to.id, "mode": "resolve"})
        self.item(to, "resolve", doc, "resolve", at, deadline)

    def draft_on_route(
        self, approvers: list[Pos], signer: Pos, author: Pos, stage_done: bool = False
    ) -> None:
        # A stage still open was asked recently and is not yet due: an overdue one would be
        # auto-visaed by the first run of the jobs, emptying the approvers' `visa` folders.
        at = self._when(20) if stage_done else self._when(1)
        kind = self.rng.choice(("outgoing", "internal", "npa"))
        doc = self.document(
            kind=kind,
            author=author,
            title=texts.title(self.rng, kind),
            state="on_route",
            created=at,
        )
        self.item(author, "info", doc, "track", at, done=True)
        sha = self.rows.files[-1]["sha256"]
        gov_org = self.named["governor"].org_id
        route_id, stage_id, sign_id = new_id(), new_id(), new_id()
        days = self.rng.choice((2, 3, 5)) if not stage_done else self.rng.choice((1, 2, 3))
        deadline = at.date() + dt.timedelta(days=days)
        self.rows.routes.append(
            {
                "id": route_id,
                "document_id": doc,
                "state": "signing" if stage_done else "active",
                "version": 1,
                "current_stage": None if stage_done else 0,
                "journal_id": self.journals[(gov_org, "outgoing")].id,
                "created_at": at,
                "created_by_id": author.user_id,
                "started_at": at,
                "finished_at": None,
            }
        )
        self.rows.stages.append(
            {
                "id": stage_id,
                "route_id": route_id,
                "index": 0,
                "deadline_days": days,
                "state": "done" if stage_done else "active",
                "started_at": at,
                "deadline": deadline,
                "due_at": end_of_day(deadline, Settings.timezone),
                "finished_at": at + dt.timedelta(hours=4) if stage_done else None,
            }
        )
        for a in approvers:
            approval_id = new_id()
            self.rows.route_approvers.append({"stage_id": stage_id, "position_id": a.id})
            decided = at + dt.timedelta(hours=4) if stage_done else None
            self.rows.approvals.append(
                {
                    "id": approval_id,
                    "route_id": route_id,
                    "stage_id": stage_id,
                    "document_id": doc,
                    "position_id": a.id,
                    "decision": "approved" if stage_done else None,
                    "comment": None,
                    "asked_at": at,
                    "decided_at": decided,
                    "decided_by_id": a.user_id if stage_done else None,
                    "actor_role": "own" if stage_done else None,
                    "auto": False,
                    "file_sha256": sha if stage_done else None,
                    "file_version": 1 if stage_done else None,
                    "stale": False,
                }
            )
            self.item(
                a,
                "visa",
                doc,
                "visa",
                at + dt.timedelta(minutes=5),
                deadline,
                done=stage_done,
                ref=approval_id,
            )
        self.rows.signatories.append(
            {
                "id": sign_id,
                "route_id": route_id,
                "order": 0,
                "position_id": signer.id,
                "state": "waiting" if stage_done else "pending",
                "signed_at": None,
                "signed_by_id": None,
                "actor_role": None,
                "file_sha256": None,
                "signature_id": None,
            }
        )
        if stage_done:
            self.item(
                signer,
                "sign",
                doc,
                "sign",
                at + dt.timedelta(hours=5),
                self._deadline(at),
                ref=sign_id,
            )

    def resolution(
        self,
        doc: uuid.UUID,
        author: Pos,
        executors: list[Pos],
        at: dt.datetime,
        deadline: dt.date | None,
        *,
        draft: bool = False,
        prepared_by: uuid.UUID | None = None,
    ) -> tuple[uuid.UUID, list[uuid.UUID]]:
        rid = new_id()
        plan = [{"position_id": str(p.id), "responsible": i == 0} for i, p in enumerate(executors)]
        self.rows.resolutions.append(
            {
                "id": rid,
                "document_id": doc,
                "parent_id": None,
                "author_position_id": author.id,
                "prepared_by_id": prepared_by,
                "created_by_id": prepared_by or author.user_id,
                "decided_by_id": None if draft else author.user_id,
                "actor_role": None if draft else "own",
                "state": "draft" if draft else "issued",
                "text": self.rng.choice(texts.RESOLUTIONS),
                "deadline": deadline,
                "on_control": not draft,
                "controller_position_id": None,
                "planned_executors": plan,
                "comment": None,
                "created_at": at,
                "issued_at": None if draft else at,
                "closed_at": None,
            }
        )
        ids = []
        if not draft:
            for i, p in enumerate(executors):
                aid = new_id()
                ids.append(aid)
                self.rows.assignments.append(
                    {
                        "id": aid,
                        "resolution_id": rid,
                        "document_id": doc,
                        "executor_position_id": p.id,
                        "responsible": i == 0,
                        "state": "open",
                        "deadline": deadline,
                        "on_control": True,
                        "controller_position_id": author.id,
                        "report_text": None,
                        "reported_at": None,
                        "reported_by_id": None,
                        "accepted": None,
                        "review_comment": None,
                        "accepted_at": None,
                        "removed_from_control_at": None,
                        "created_at": at,
                    }
                )
        return rid, ids

    def assignment(self, executor: Pos, controller: Pos) -> None:
        at = self._when(40)
        reg_org = (
            controller.org_id
            if (controller.org_id, "incoming") in self.journals
            else self.named["governor"].org_id
        )
        clerk = self.clerks.get(reg_org, self.named["clerk"])
        kind = self.rng.choice(("incoming", "instruction"))
        deadline = self._deadline(at)
        doc = self.document(
            kind=kind,
            author=clerk,
            title=texts.title(self.rng, kind),
            state="registered",
            created=at,
            correspondent=self.rng.choice(region.FEDERAL_SENDERS),
            register_in=reg_org,
            deadline=deadline,
            addressee=controller,
        )
        self.rows.addressees.append(
            {"document_id": doc, "position_id": controller.id, "mode": "resolve"}
        )
        self.item(controller, "resolve", doc, "resolve", at, deadline, done=True)
        given = at + dt.timedelta(hours=self.rng.randint(2, 30))
        _, (aid,) = self.resolution(doc, controller, [executor], given, deadline)
        self.item(executor, "execute", doc, "execute", given, deadline, ref=aid)
        self.item(controller, "control", doc, "control", given, deadline, ref=aid)

    def resolution_draft(self, executive: Pos) -> None:
        """An incoming document waiting in `resolve`, with a draft resolution in `drafts`."""
        at = self._when(10)
        self.incoming(executive)
        doc = self.rows.documents[-1]["id"]
        deadline = self.rows.documents[-1]["deadline"]
        staff = self.specialists.get(executive.org_id) or self.ministers
        assistant = self.named["assistant"] if executive is self.named["governor"] else None
        rid, _ = self.resolution(
            doc,
            executive,
            self.rng.sample(staff, 2),
            at + dt.timedelta(hours=1),
            deadline,
            draft=True,
            prepared_by=assistant.user_id if assistant else executive.user_id,
        )
        self.item(
            executive,
            "drafts",
            doc,
            "issue_resolution",
            at + dt.timedelta(hours=1),
            deadline,
            ref=rid,
        )

    def history_doc(self, to: Pos) -> None:
        at = self.now - dt.timedelta(days=self.rng.randint(46, 5 * 365))
        gov_org = self.named["governor"].org_id
        reg_org = to.org_id if (to.org_id, "incoming") in self.journals else gov_org
        doc = self.document(
            kind="incoming",
            author=self.clerks.get(reg_org, self.named["clerk"]),
            title=texts.title(self.rng, "incoming"),
            state="registered",
            created=at,
            correspondent=self.rng.choice(region.FEDERAL_SENDERS + region.COMPANIES),
            register_in=reg_org,
            addressee=to,
        )
        self.rows.addressees.append({"document_id": doc, "position_id": to.id, "mode": "resolve"})
        self.item(to, "resolve", doc, "resolve", at, done=True)

    def guaranteed(self) -> list[Callable[[], None]]:
        """Enough documents that every folder of the named cabinets is non-empty."""
        n = self.named
        gov, first, lawyer = n["governor"], n["first"], n["lawyer"]
        digital, finance, executor = n["minister.digital"], n["minister.finance"], n["executor"]
        sport = self.ministers[13]
        sport_staff = self.specialists[sport.org_id]
        plan: list[Callable[[], None]] = []
        for _ in range(3):
            for who in (gov, first, digital, finance):
                signer = gov if who is not gov else first
                plan += [
                    partial(self.incoming, who),
                    partial(self.incoming, who, "info"),
                    partial(
                        self.draft_on_route, [who, lawyer], signer, self.rng.choice(sport_staff)
                    ),
                    partial(self.draft_on_route, [lawyer], who, self.rng.choice(sport_staff), True),
                    partial(self.resolution_draft, who),
                ]
            plan += [
                partial(self.assignment, first, gov),
                partial(self.assignment, digital, gov),
                partial(self.assignment, finance, first),
                partial(self.assignment, gov, gov),
                partial(self.assignment, executor, sport),
                partial(self.assignment, digital, digital),
                partial(self.assignment, finance, finance),
                partial(self.appeal, gov),
            ]
        return plan

    def random_scenario(self) -> None:
        r = self.rng.random()
        if r < 0.70:
            # The seed's region takes ~5,000 documents a day; recent work beyond that rate
            # goes to history instead, so a large region has years of history, not a
            # month of impossible intake (which filled every cabinet with open items).
            if self.recent_made >= RECENT_DOCUMENTS_CAP:
                r = 0.70
            else:
                self.recent_made += 1
        executives = [
            self.named["governor"],
            self.named["first"],
            *self.vice,
            *self.ministers,
            *self.municipal_heads,
        ]
        who = self.rng.choice(executives)
        if r < 0.30:
            self.incoming(who)
        elif r < 0.36:
            self.appeal(self.rng.choice([self.named["governor"], *self.ministers]))
        elif r < 0.42:
            self.incoming(who, "info")
        elif r < 0.55:
            author_org = self.rng.choice(list(self.specialists))
            approvers = [*self.rng.sample(executives, 2), self.named["lawyer"]]
            self.draft_on_route(
                approvers,
                who,
                self.rng.choice(self.specialists[author_org]),
                stage_done=self.rng.random() < 0.3,
            )
        elif r < 0.70:
            org = self.rng.choice(list(self.specialists))
            self.assignment(self.rng.choice(self.specialists[org]), self.rng.choice(executives))
        else:
            self.history_doc(who)


async def _insert(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "asyncpg":
        columns = list(rows[0])
        # COPY bypasses SQLAlchemy's Python-side column defaults: use it only when the rows
        # name every column that has one, so the stored rows are the same as with INSERT.
        if all(c.name in rows[0] for c in table.columns if c.default is not None):
            await _copy(conn, table, columns, rows)
            return
    for i in range(0, len(rows), BATCH):
        await conn.execute(insert(table), rows[i : i + BATCH])


async def _copy(
    conn: AsyncConnection, table: Table, columns: list[str], rows: list[dict[str, Any]]
) -> None:
    """PostgreSQL bulk path: binary COPY through asyncpg instead of multi-row INSERTs.

    Values go through each column type's bind processor (UTC datetimes, JSON text), the
    same conversion SQLAlchemy applies before it hands parameters to asyncpg.
    """
    dialect = conn.dialect
    procs = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in columns]
    records = [
        tuple(
            p(row[name]) if p is not None else row[name]
            for name, p in zip(columns, procs, strict=True)
        )
        for row in rows
    ]
    # Any statement makes SQLAlchemy open the transaction on the driver connection, so the
    # COPY belongs to the load's one transaction (a failed load leaves nothing behind).
    await conn.exec_driver_sql("SELECT 1")
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.copy_records_to_table(table.name, records=records, columns=columns)


@dataclass
class DemoResult:
    users: int
    documents: int
    items: int
    seconds: float
    skipped: bool = False


async def load_demo(
    engine: AsyncEngine,
    blobs: BlobStore,
    *,
    users: int = 0,
    documents: int = 300,
    seed: int = 1,
    now: dt.datetime | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> DemoResult:
    started = time.perf_counter()
    async with engine.connect() as conn:
        existing = await conn.scalar(select(func.count()).select_from(User.__table__))
    if existing:
        return DemoResult(int(existing), 0, 0, 0.0, skipped=True)
    b = RegionBuilder(seed, now or dt.datetime.now(dt.UTC), blobs)
    b.build_structure()
    if users:
        b.add_staff(users)
    plan = b.guaranteed()
    total_users = len(b.rows.users)
    items = 0
    async with engine.begin() as conn:
        for table, rows in list(b.rows.tables())[:6]:
            await _insert(conn, table, rows)
        b.rows.orgs.clear()
        made = 0
        chunk = 20_000
        while made < max(documents, len(plan)):
            target = min(max(documents, len(plan)), made + chunk)
            while made < target:
                if made < len(plan):
                    plan[made]()
                else:
                    b.random_scenario()
                made += 1
            items += len(b.rows.items)
            for table, rows in list(b.rows.tables())[6:]:
                await _insert(conn, table, rows)
            b.rows.clear_documents()
            progress(f"{made} documents")
        # Journals continue after the demo's numbers.
        for state in b.journals.values():
            await conn.execute(
                update(Journal).where(Journal.id == state.id).values(last_seq=state.seq)
            )
    return DemoResult(total_users, made, items, time.perf_counter() - started)

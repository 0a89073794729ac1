"""What notifies whom, and how: one entry per outbox event kind that becomes a push.

Texts are Russian; a ДСП document's title never leaves the server in a push (the push
service cannot read it, but the lock screen can).
"""

from __future__ import annotations

from dataclasses import dataclass

from push import Urgency

HOUR = 3600
DAY = 24 * HOUR


@dataclass(frozen=True)
class Kind:
    title: str
    urgency: Urgency
    ttl: int
    folder: str | None
    # The setting a user switches off; several event kinds can share one.
    setting: str


KINDS: dict[str, Kind] = {
    "visa.requested": Kind("Проект на визу", Urgency.HIGH, DAY, "visa", "visa"),
    "sign.requested": Kind("Документ на подпись", Urgency.HIGH, DAY, "sign", "sign"),
    "document.delivered": Kind(
        "Документ на рассмотрение", Urgency.NORMAL, 3 * DAY, "resolve", "resolve"
    ),
    "document.forwarded": Kind(
        "Документ переадресован вам", Urgency.NORMAL, 3 * DAY, "resolve", "resolve"
    ),
    "resolution.drafted": Kind(
        "Проект резолюции ждёт решения", Urgency.NORMAL, DAY, "drafts", "drafts"
    ),
    "assignment.given": Kind("Новое поручение", Urgency.NORMAL, 3 * DAY, "execute", "execute"),
    "assignment.reported": Kind(
        "Отчёт об исполнении", Urgency.NORMAL, 3 * DAY, "control", "control"
    ),
    "reminder.deadline_tomorrow": Kind(
        "Срок истекает завтра", Urgency.HIGH, 12 * HOUR, None, "deadline"
    ),
    "assignment.overdue": Kind("Поручение просрочено", Urgency.HIGH, DAY, "execute", "overdue"),
    "visa.auto_approved": Kind(
        "Поставлена автоматическая виза", Urgency.LOW, 3 * DAY, None, "auto_visa"
    ),
    "resolution.returned": Kind(
        "Проект резолюции возвращён на доработку", Urgency.NORMAL, DAY, "drafts", "returned"
    ),
    "resolution.cancelled": Kind("Резолюция отменена", Urgency.NORMAL, 3 * DAY, None, "execute"),
    "route.returned": Kind(
        "Проект возвращён на доработку", Urgency.NORMAL, 3 * DAY, None, "returned"
    ),
}

SETTINGS = sorted({k.setting for k in KINDS.values()})


def document_url(document_id: str, folder: str | None) -> str:
    """The PWA's route to the document (hash routing: works offline from the shell)."""
    return f"/#/d/{document_id}" + (f"?f={folder}" if folder else "")

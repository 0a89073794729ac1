"""Shipped production calendars: the exceptions to the Monday–Friday week, per year.

A year loaded into the database (`calendar_days`) by an administrator replaces the shipped
data for that year entirely.

2026: Labour Code art. 112 holidays with the transfers of Government decree of 24.09.2025
(Jan 3 → Jan 9, Jan 4 → Dec 31); 247 working days.
2027: PRELIMINARY — the statutory holidays with art. 112 weekend shifts and the November
transfer announced in the draft decree (Nov 5 off, Saturday Nov 13 working). The decree for
2027 also moves the January 2–3 weekend holidays; load the final calendar when published.
"""

from __future__ import annotations

import datetime as dt

D = dt.date

# day → (working, note)
CALENDARS: dict[int, dict[dt.date, tuple[bool, str]]] = {
    2026: {
        D(2026, 1, 1): (False, "Новогодние каникулы"),
        D(2026, 1, 2): (False, "Новогодние каникулы"),
        D(2026, 1, 5): (False, "Новогодние каникулы"),
        D(2026, 1, 6): (False, "Новогодние каникулы"),
        D(2026, 1, 7): (False, "Рождество Христово"),
        D(2026, 1, 8): (False, "Новогодние каникулы"),
        D(2026, 1, 9): (False, "перенос с 3 января"),
        D(2026, 2, 23): (False, "День защитника Отечества"),
        D(2026, 3, 9): (False, "перенос с 8 марта"),
        D(2026, 5, 1): (False, "Праздник Весны и Труда"),
        D(2026, 5, 11): (False, "перенос с 9 мая"),
        D(2026, 6, 12): (False, "День России"),
        D(2026, 11, 4): (False, "День народного единства"),
        D(2026, 12, 31): (False, "перенос с 4 января"),
    },
    2027: {
        D(2027, 1, 1): (False, "Новогодние каникулы"),
        D(2027, 1, 4): (False, "Новогодние каникулы"),
        D(2027, 1, 5): (False, "Новогодние каникулы"),
        D(2027, 1, 6): (False, "Новогодние каникулы"),
        D(2027, 1, 7): (False, "Рождество Христово"),
        D(2027, 1, 8): (False, "Новогодние каникулы"),
        D(2027, 2, 23): (False, "День защитника Отечества"),
        D(2027, 3, 8): (False, "Международный женский день"),
        D(2027, 5, 3): (False, "перенос с 1 мая"),
        D(2027, 5, 10): (False, "перенос с 9 мая"),
        D(2027, 6, 14): (False, "перенос с 12 июня"),
        D(2027, 11, 4): (False, "День народного единства"),
        D(2027, 11, 5): (False, "перенос с 13 ноября (проект)"),
        D(2027, 11, 13): (True, "рабочая суббота (проект)"),
    },
}

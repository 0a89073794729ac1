"""msgspec structs for the production calendar."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec


class DayIn(msgspec.Struct, forbid_unknown_fields=True):
    date: dt.date
    working: bool
    note: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class YearIn(msgspec.Struct, forbid_unknown_fields=True):
    """A year's exceptions to the Monday–Friday week, as `kabinet calendar` loads them."""

    days: list[DayIn]


class DayOut(msgspec.Struct):
    date: dt.date
    working: bool
    note: str | None


class YearOut(msgspec.Struct):
    year: int
    days: list[DayOut]

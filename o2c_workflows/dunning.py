"""Dunning: what happens, and when, to an invoice that is not paid on time.

The levels are configuration (passed to each order when it starts): each
fires a number of days after an instalment fell due, unless it was paid by
then. The last level usually escalates, putting the customer on hold in CRM
for new orders.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel, Field, field_validator


class DunningLevel(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    days_past_due: int = Field(ge=0, le=365)
    escalate: bool = False
    """Put the customer on hold for new orders."""


class DunningPolicy(BaseModel):
    levels: list[DunningLevel] = Field(
        default_factory=lambda: [
            DunningLevel(name="first_reminder", days_past_due=1),
            DunningLevel(name="second_reminder", days_past_due=10),
            DunningLevel(name="escalation", days_past_due=30, escalate=True),
        ]
    )

    @field_validator("levels")
    @classmethod
    def _in_order(cls, levels: list[DunningLevel]) -> list[DunningLevel]:
        days = [level.days_past_due for level in levels]
        if days != sorted(set(days)):
            raise ValueError("levels must fire on increasing days past due")
        return levels


def fires_at(due_date: date, level: DunningLevel) -> datetime:
    """Midnight UTC, `days_past_due` days after the due date."""
    return datetime.combine(due_date, time.min, UTC) + timedelta(days=level.days_past_due)


def days_past_due(due_date: date, today: date) -> int:
    return max(0, (today - due_date).days)

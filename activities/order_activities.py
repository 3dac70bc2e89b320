"""The order's side effects, one activity per adapter call, as one class.

Each system's activities live in a module of their own, as the adapters are
packaged per system (`crm.py`, `billing.py`, `logistics.py`, `payments.py`);
the rules they share (error translation, the look-up by key before a retry,
`Undo`) are in `calls.py`. `OrderActivities` composes the four, so that the
workflows name every activity the same way (`OrderActivities.confirm_shipment`)
and a worker registers them all with `all()`. The worker injects the adapters,
so the same activities drive local and real systems.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from activities.billing import BillingActivities
from activities.calls import CustomerCheck, Undo, UndoResult
from activities.crm import CrmActivities
from activities.logistics import LogisticsActivities
from activities.payments import PaymentsActivities
from adapters.billing.protocol import BillingAdapter
from adapters.crm.protocol import CrmAdapter
from adapters.logistics.protocol import LogisticsAdapter
from adapters.payments.protocol import PaymentsAdapter

__all__ = [
    "CustomerCheck",
    "OrderActivities",
    "Undo",
    "UndoResult",
    "activities_of",
    "activity_name",
    "of_system",
    "system_of",
]

_DEFINITION = "__temporal_activity_definition"
"""Where `@activity.defn` leaves an activity's definition (the SDK has no public reader)."""


def activities_of(owner: object) -> list[Callable[..., Any]]:
    """Every `@activity.defn` method of `owner`'s class and its bases, bound to `owner`.

    In method resolution order, each class's in the order it defines them.
    """
    names = dict.fromkeys(
        name
        for cls in type(owner).__mro__
        for name, member in vars(cls).items()
        if hasattr(member, _DEFINITION)
    )
    return [getattr(owner, name) for name in names]


def activity_name(activity: Callable[..., Any]) -> str:
    """The name `activity` is registered under (the one recorded in histories)."""
    name: str = getattr(activity, _DEFINITION).name
    return name


def system_of(activity: Callable[..., Any]) -> str:
    """The system `activity` calls: the start of its name (`billing` of `billing.issue_invoice`)."""
    return activity_name(activity).partition(".")[0]


def of_system(activities: Iterable[Callable[..., Any]], system: str) -> list[Callable[..., Any]]:
    """Those of `activities` that call `system`: what a worker on its task queue registers."""
    return [activity for activity in activities if system_of(activity) == system]


@dataclass(frozen=True)
class OrderActivities(CrmActivities, BillingActivities, LogisticsActivities, PaymentsActivities):
    """Activities bound to the adapters a worker was started with."""

    # The adapters are fields here rather than in each system's class, so the
    # constructor keeps this order (a dataclass puts its bases' fields first, in
    # reverse method resolution order).
    crm: CrmAdapter
    billing: BillingAdapter
    logistics: LogisticsAdapter
    payments: PaymentsAdapter

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of the four systems (each `@activity.defn` method), bound to `self`."""
        return activities_of(self)

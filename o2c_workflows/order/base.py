"""What every layer of an order run shares: its input, its state, what is in flight."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from temporalio.common import SearchAttributeUpdate

from o2c_domain.systems import LocalCalls
from o2c_workflows.dunning import DunningPolicy
from o2c_workflows.keys import OrderKeys
from o2c_workflows.messages import SupportAction
from o2c_workflows.models import OrderRequest, OrderStatus
from o2c_workflows.state import OrderState, UndoKind, UndoRecord

WORKFLOW_NAME = "Order"

COMPENSATION_FAILED = "compensation_failed"
"""HoldReason of a cancelled order whose compensation could not undo everything."""

FINISHED = frozenset({OrderStatus.PAID, OrderStatus.CLOSED, OrderStatus.CANCELLED})

WORKFLOW_ID_MISMATCH = "workflow_id_mismatch"

# Patches: each guards a change of the command sequence, so orders started on
# earlier code replay and go on as they began.
PATCH_EXECUTION_KEYS = "execution-scoped-keys"
"""Idempotency keys carry the first run's id, so another execution under the same
workflow id (restarted from the CLI after the first closed) never shares them."""
PATCH_PAYMENTS_IN_FLIGHT = "payments-in-flight-keep-the-order-open"
"""The order does not settle while a payment is still being recorded."""
PATCH_PUBLISH_PER_WAIT = "status-published-per-wait"
"""Search attributes are upserted once, when the order waits (on the outside world or a
timer), not at every step. An order started with this patch has the two above as well:
it records this one marker (`OrderState.process_version` 2), not three."""


class OrderInput(BaseModel):
    """The workflow's input: the order, the dunning rules, and a long-lived order's state."""

    order: OrderRequest
    dunning: DunningPolicy = Field(default_factory=DunningPolicy)
    carried: OrderState | None = Field(
        default=None, description="The state of the previous run, when continuing as new."
    )
    local_activities: LocalCalls = Field(
        default=False,
        description="Run the adapter calls as local activities (fewer events): all, none, "
        "or those of the systems listed.",
    )
    system_queues: bool = Field(
        default=False,
        description="Send each normal activity to its system's task queue "
        "(`<task queue>.<system>`); false (orders started before there were such queues): "
        "to the workflow's own.",
    )
    actor: str | None = Field(
        default=None, description="Who created the order: the API key's `name (key_id)`."
    )


class Resolution(StrEnum):
    """What support decided for a parked step."""

    RETRY = "retry"
    RELEASE = "release"


class Applying(StrEnum):
    """Events applied one at a time per kind; a copy of the one in flight waits for it."""

    SHIPMENT = "shipment"
    AMENDMENT = "amendment"
    RETURN = "return"


@dataclass
class InFlight:
    """What the order is in the middle of, beside its state: guards read it, handlers and
    loops set it, and continue-as-new waits until nothing is in flight."""

    applying: dict[Applying, str] = field(default_factory=dict)
    """The event of each kind being applied, by its id (tracking number, return id, ...)."""
    pending_payments: dict[str, Decimal] = field(default_factory=dict)
    """Payments being recorded: they count against the order, so two payments at once
    cannot both be taken as the last one."""
    loop_calls: int = 0
    """Activities in flight in the cash and dunning loops."""
    calls: int = 0
    """Activities in flight anywhere: search attributes wait until none is."""
    stopping: bool = False
    """Cancelled (or abandoned): the lifecycle stops and compensation runs."""
    resolution: Resolution | None = None
    """Support's answer to the current hold, until the parked step takes it."""
    resolved_with: SupportAction | None = None
    """The retry or release that gave `resolution`: its note and who sent it."""

    @property
    def idle(self) -> bool:
        return not self.applying and not self.pending_payments and not self.loop_calls


class OrderBase:
    """The attributes the layers share; `OrderWorkflow.__init__` sets them."""

    _state: OrderState
    _dunning: DunningPolicy
    _local_activities: LocalCalls
    _system_queues: bool
    _in_flight: InFlight
    _lifecycle: asyncio.Task[None] | None
    _cancelled_in_temporal: bool
    _dunning_tasks: dict[str, asyncio.Task[None]]
    _unpublished: dict[str, SearchAttributeUpdate[Any]]
    """Search attribute changes not yet upserted, by attribute (process version 2)."""
    _spare_timers: list[asyncio.Task[None]]
    """Due-date timers whose invoice was paid: cancelled when the order next waits."""

    def _will_undo(self, step: str, undo: UndoKind, forward_key: str) -> None:
        """Register how to undo a forward step, before it runs: if the order is cancelled,
        its effect (found by `forward_key`) is undone, newest first."""
        self._state.undo.append(UndoRecord(step=step, undo=undo, forward_key=forward_key))

    @property
    def _keys(self) -> OrderKeys:
        """This order execution's idempotency keys (`o2c_workflows.keys`)."""
        return OrderKeys(self._state.key_scope or self._state.order_id)

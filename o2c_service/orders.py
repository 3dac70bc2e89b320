"""Order operations over Temporal, in the terms the API and CLI speak: reading an
order, listing orders, sending it outside events and acting on many at once;
starting one is `o2c_service/creating.py`. Temporal's errors become outcomes in
`o2c_service/outcomes.py`.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from o2c_domain.systems import LocalCalls
from o2c_service.closed_returns import ClosedReturns
from o2c_service.creating import BOOKING_WAIT, OrderCreation, PaymentsSource
from o2c_service.events import CANCEL, RELEASE, RETRY, DuplicateContradicts, OrderEvent
from o2c_service.listing import OrderListItem, OrderPage, decode_page_token, quotable
from o2c_service.observability.business import count_rejected
from o2c_service.outcomes import (
    NO_ANSWER,
    RPC_TIMEOUT,
    EventNotTaken,
    EventRejected,
    EventStillApplying,
    FinalStateUnreadable,
    InvalidParameter,
    OrderConflict,
    OrderError,
    TemporalUnavailable,
)
from o2c_workflows.dunning import DunningPolicy
from o2c_workflows.messages import (
    BookingOutcome,
    CancelRequest,
    OutsideEventNote,
    ReturnReceived,
    SupportAck,
    SupportAction,
)
from o2c_workflows.models import Identifier, OrderStatus
from o2c_workflows.order.base import WORKFLOW_NAME
from o2c_workflows.order.workflow import OrderWorkflow
from o2c_workflows.search_attributes import CUSTOMER_ID, HOLD_REASON, ORDER_STATUS
from o2c_workflows.state import OrderState

ACCEPT_WAIT = timedelta(seconds=10)
"""How long an event may wait for the order to accept it (a worker to pick it up)."""
EVENT_WAIT = timedelta(seconds=60)
"""How long an accepted event is waited for before answering 202 (O2C_EVENT_WAIT_SECONDS)."""


SupportVerb = Literal["retry", "release", "cancel"]
BULK_CONCURRENCY = 10
BULK_SUPPORT = {"retry": RETRY, "release": RELEASE}
M = TypeVar("M", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)
H = TypeVar("H")


class OrderSelection(BaseModel):
    """Which orders a bulk action applies to (all given conditions must hold)."""

    model_config = ConfigDict(extra="forbid")

    status: OrderStatus | None = OrderStatus.ON_HOLD
    customer_id: Identifier | None = None
    hold_reason: Identifier | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class BulkOutcome(BaseModel):
    order_id: str
    ok: bool
    status: OrderStatus | None = None
    message: str


Clock = Callable[[], Awaitable[datetime]]
"""Today for the caller; a test environment passes its own (skipped) clock."""


async def _utc_now() -> datetime:
    return datetime.now(UTC)


class OrderService(OrderCreation, ClosedReturns):
    """Orders over Temporal: start, read, list, send events, act on many at once."""

    def __init__(
        self,
        client: Client,
        task_queue: str,
        dunning: DunningPolicy | None = None,
        clock: Clock | None = None,
        local_activities: LocalCalls = False,
        *,
        system_queues: bool = False,
        accept_wait: timedelta = ACCEPT_WAIT,
        event_wait: timedelta = EVENT_WAIT,
        booking_wait: timedelta = BOOKING_WAIT,
        task_timeout: timedelta | None = None,
        payments: PaymentsSource | None = None,
    ) -> None:
        """`payments` stores the cards of orders paid by card (without it, such an order
        is refused as `PaymentsUnavailable`)."""
        super().__init__(
            client,
            task_queue,
            local_activities=local_activities,
            system_queues=system_queues,
            task_timeout=task_timeout,
        )
        self._dunning = dunning or DunningPolicy()
        self._payments = payments
        self._clock = clock or _utc_now
        self._accept_wait = accept_wait
        self._event_wait = event_wait
        self._booking_wait = booking_wait
        self._booking_reads: dict[str, asyncio.Task[BookingOutcome]] = {}

    @property
    def clock(self) -> Clock:
        return self._clock

    async def get(self, order_id: str) -> OrderState:
        """The order's state, with days past due counted to today."""
        async with self.translated(order_id):
            state = await self._handle(order_id).query(OrderWorkflow.state, rpc_timeout=RPC_TIMEOUT)
        # Returns after close are workflows of their own: shown as the order's returns.
        state = await self.closed_order_state(state)
        return state.as_of((await self._clock()).date())

    async def search(
        self,
        *,
        status: OrderStatus | None = None,
        customer_id: str | None = None,
        hold_reason: str | None = None,
        limit: int = 100,
        page_token: str | None = None,
    ) -> OrderPage:
        """One page of orders by business state, from Temporal visibility (eventually
        consistent), with the total that match and the token for the next page.

        `status` is an enum; `customer_id` and `hold_reason` are validated as
        Identifiers (no quotes) by the API and CLI, so nothing can break out of
        the query string.
        """
        # A long-lived order's earlier runs ended in ContinuedAsNew: list each order once.
        clauses = [f"WorkflowType = '{WORKFLOW_NAME}'", "ExecutionStatus != 'ContinuedAsNew'"]
        if status is not None:
            clauses.append(f"{ORDER_STATUS.name} = '{status.value}'")
        if customer_id is not None:
            clauses.append(f"{CUSTOMER_ID.name} = '{quotable(customer_id)}'")
        if hold_reason is not None:
            clauses.append(f"{HOLD_REASON.name} = '{quotable(hold_reason)}'")
        query = " AND ".join(clauses)
        token = decode_page_token(page_token)
        async with self.translated(None):
            pages = self._client.list_workflows(
                query, page_size=limit, next_page_token=token, rpc_timeout=RPC_TIMEOUT
            )
            try:
                await pages.fetch_next_page()
            except RPCError as error:
                if token is not None and error.status == RPCStatusCode.INVALID_ARGUMENT:
                    raise InvalidParameter("page_token", "page_token is not valid") from error
                raise
            counted = await self._client.count_workflows(query, rpc_timeout=RPC_TIMEOUT)
        items: list[OrderListItem] = []
        for execution in pages.current_page or []:
            attributes = execution.typed_search_attributes
            found_status = attributes.get(ORDER_STATUS)
            items.append(
                OrderListItem(
                    order_id=execution.id,
                    status=OrderStatus(found_status) if found_status else None,
                    customer_id=attributes.get(CUSTOMER_ID),
                    hold_reason=attributes.get(HOLD_REASON),
                    execution_status=(execution.status or WorkflowExecutionStatus.RUNNING).name,
                    started_at=execution.start_time,
                    closed_at=execution.close_time,
                )
            )
        next_token = pages.next_page_token
        return OrderPage(
            orders=items,
            next_page_token=base64.urlsafe_b64encode(next_token).decode() if next_token else None,
            total=counted.count,
        )

    async def send(self, event: OrderEvent[M, R], order_id: str, message: M) -> R:
        """Send one outside event (`o2c_service.events`) to the order, and its answer."""
        applied = event.applied

        def finished_applied(state: OrderState) -> R | None:
            assert applied is not None
            try:
                return applied(state, message)
            except DuplicateContradicts as refused:
                raise EventRejected(str(refused), invalid=True) from refused

        try:
            try:
                return await self._update(
                    order_id,
                    event.update,
                    message,
                    finished_applied if applied is not None else None,
                    recognised=event.recognised(message),
                )
            except OrderConflict:
                if not isinstance(message, ReturnReceived):
                    raise
                # A closed order takes a return as a workflow of its own (`closed_returns`).
                state = await self._finished_state(order_id)
                if state.status is not OrderStatus.CLOSED:
                    raise
                return cast(R, await self.return_after_close(state, message))
        except EventRejected as refused:
            count_rejected(event.name, refused)
            raise

    async def note_outside_event(self, order_id: str, note: OutsideEventNote) -> bool:
        """Keep a note of an outside event on the order (its Signal: durable once Temporal
        has it, a copy noted once). False when the order is finished and takes no more
        notes; `OrderNotFound` when there is no such order."""
        try:
            async with self.translated(order_id):
                await self._handle(order_id).signal(
                    OrderWorkflow.outside_event_noted, note, rpc_timeout=RPC_TIMEOUT
                )
        except OrderConflict:
            return False
        return True

    async def act_on_matching(
        self,
        action: SupportVerb,
        selection: OrderSelection,
        argument: SupportAction | CancelRequest,
    ) -> list[BulkOutcome]:
        """Retry, release or cancel every order the selection matches, each on its own.

        One order refusing (already moved on, say) does not stop the others;
        every order gets a line saying what happened to it.
        """
        matching = (
            await self.search(
                status=selection.status,
                customer_id=selection.customer_id,
                hold_reason=selection.hold_reason,
                limit=selection.limit,
            )
        ).orders
        if action == "cancel":
            assert isinstance(argument, CancelRequest)
            return await self.act_on_each([item.order_id for item in matching], CANCEL, argument)
        assert isinstance(argument, SupportAction)
        return await self.act_on_each(
            [item.order_id for item in matching], BULK_SUPPORT[action], argument
        )

    async def act_on_each(
        self, order_ids: Sequence[str], event: OrderEvent[M, SupportAck], argument: M
    ) -> list[BulkOutcome]:
        """Send `event` to each order on its own, `BULK_CONCURRENCY` at a time: one order
        refusing does not stop the others, and each gets a line saying what happened."""
        limit = asyncio.Semaphore(BULK_CONCURRENCY)

        async def one(order_id: str) -> BulkOutcome:
            async with limit:
                try:
                    ack = await self.send(event, order_id, argument)
                except EventStillApplying as accepted:
                    return BulkOutcome(order_id=order_id, ok=True, message=str(accepted))
                except OrderError as error:
                    return BulkOutcome(order_id=order_id, ok=False, message=str(error))
                return BulkOutcome(
                    order_id=order_id, ok=True, status=ack.status, message=ack.message
                )

        return list(await asyncio.gather(*(one(order_id) for order_id in order_ids)))

    async def _update(
        self,
        order_id: str,
        update: UpdateMethodMultiParam[[OrderWorkflow, M], R],
        argument: M,
        applied: Callable[[OrderState], R | None] | None = None,
        *,
        recognised: bool = True,
    ) -> R:
        """Send an Update, so the answer says applied, refused and why, or still applying.

        An accepted Update is durable: once the order has accepted the event it
        will be applied whatever happens to this request, so running longer than
        `event_wait` is answered as accepted (202), not as a failure. `applied`
        finds the event in a finished order's final state: a copy of an event it
        applied is answered as a duplicate, as the open order would have.
        `recognised` is False for an event without an id: a copy of it is not
        recognised, so no answer may call sending it again safe.
        """
        handle = self._handle(order_id)
        resend = (
            "sending the same event again is safe: a copy is answered as a duplicate"
            if recognised
            else f"it has no event_id, so a copy would be applied again: check /orders/{order_id} "
            "before sending it again"
        )
        try:
            async with self.translated(order_id):
                try:
                    async with asyncio.timeout(self._accept_wait.total_seconds()):
                        pending = await handle.start_update(
                            update,
                            argument,
                            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                            rpc_timeout=self._accept_wait,
                        )
                except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as error:
                    if (broken := await self._broken(order_id)) is not None:
                        raise broken from error
                    raise EventNotTaken(
                        f"order {order_id} did not take the event within "
                        f"{self._accept_wait.total_seconds():g} s (is a worker running?): "
                        "nothing was applied (it may still be, once a worker picks the order "
                        f"up); {resend}"
                    ) from error
                except RPCError as error:
                    if error.status != RPCStatusCode.NOT_FOUND or applied is None:
                        raise
                    # The order may have finished: a copy of an event it applied is no refusal.
                    ack = await self._applied_to_finished(order_id, applied)
                    if ack is None:
                        raise
                    return ack
        except (EventNotTaken, FinalStateUnreadable):
            raise
        except TemporalUnavailable as error:
            raise TemporalUnavailable(f"{error}; the event was not accepted; {resend}") from error
        async with self.translated(order_id):
            try:
                async with asyncio.timeout(self._event_wait.total_seconds()):
                    result: R = await pending.result(rpc_timeout=self._event_wait)
            except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError, RPCError) as error:
                if isinstance(error, RPCError) and error.status not in NO_ANSWER:
                    raise
                # Accepted is durable: the event will be applied, whoever waits for it.
                raise EventStillApplying(
                    f"order {order_id} accepted the event but has not finished applying it "
                    f"within {self._event_wait.total_seconds():g} s; it will be applied: see "
                    f"/orders/{order_id}",
                    order_id=order_id,
                ) from error
        return result

    async def _finished_state(self, order_id: str) -> OrderState:
        """The final state of a finished order; `FinalStateUnreadable` (503) when it cannot
        be read now: whether the order takes the event cannot be told, nothing was done."""
        try:
            return await self._handle(order_id).query(OrderWorkflow.state, rpc_timeout=RPC_TIMEOUT)
        except (RPCError, WorkflowQueryFailedError) as error:
            raise FinalStateUnreadable(
                f"order {order_id} is finished, and its final state could not be read to tell "
                "whether it takes this event; nothing was done, sending it again is safe"
            ) from error

    async def _applied_to_finished(
        self, order_id: str, applied: Callable[[OrderState], R | None]
    ) -> R | None:
        """`applied` on the final state of a finished order; None when it is no order, is
        not finished, or did not apply the event. A finished order whose final state cannot
        be read now is `TemporalUnavailable`: a refusal would be a guess."""
        try:
            description = await self._handle(order_id).describe(rpc_timeout=RPC_TIMEOUT)
        except RPCError:
            return None
        if description.workflow_type != WORKFLOW_NAME or description.status in (
            None,
            WorkflowExecutionStatus.RUNNING,
        ):
            return None
        try:
            state = await self._handle(order_id).query(OrderWorkflow.state, rpc_timeout=RPC_TIMEOUT)
        except (RPCError, WorkflowQueryFailedError) as error:
            raise FinalStateUnreadable(
                f"order {order_id} is finished, and its final state could not be read to tell "
                "whether it applied this event; sending it again is safe"
            ) from error
        return applied(state)

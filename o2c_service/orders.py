"""Order operations over Temporal, in the terms the API and CLI speak: starting an
order once, reading it, listing orders, sending it outside events and acting on
many at once. Temporal's errors become outcomes in `o2c_service/outcomes.py`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypedDict, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from o2c_service.credit_refunds import CreditRefunds
from o2c_service.events import CANCEL, RELEASE, RETRY, DuplicateContradicts, OrderEvent
from o2c_service.listing import OrderListItem, OrderPage, decode_page_token, quotable
from o2c_service.outcomes import (
    NO_ANSWER,
    REQUEST_HASH_MEMO,
    RPC_TIMEOUT,
    EventNotTaken,
    EventRejected,
    EventStillApplying,
    FinalStateUnreadable,
    InvalidParameter,
    OrderError,
    TemporalUnavailable,
    same_request,
)
from o2c_workflows import presentation
from o2c_workflows.calls import LocalCalls
from o2c_workflows.dunning import DunningPolicy
from o2c_workflows.messages import BookingOutcome, CancelRequest, SupportAction
from o2c_workflows.models import Identifier, OrderRequest, OrderStatus
from o2c_workflows.order.base import WORKFLOW_NAME, OrderInput
from o2c_workflows.order.workflow import OrderWorkflow
from o2c_workflows.search_attributes import CUSTOMER_ID, HOLD_REASON, ORDER_STATUS
from o2c_workflows.state import OrderState

BOOKING_WAIT = timedelta(seconds=10)
"""How long `POST /orders` waits for the booking's outcome before answering 202, the order
Entered and booking going on (O2C_BOOKING_WAIT_SECONDS)."""
ACCEPT_WAIT = timedelta(seconds=10)
"""How long an event may wait for the order to accept it (a worker to pick it up)."""
EVENT_WAIT = timedelta(seconds=60)
"""How long an accepted event is waited for before answering 202 (O2C_EVENT_WAIT_SECONDS)."""


class CreatedOrder(BaseModel):
    """An order as `POST /orders` answers it: how its booking ended, or Entered while
    booking goes on (the answer did not come in time, or was not asked for)."""

    order_id: str
    status: OrderStatus = Field(
        description="Booked (or later), OnHold or Cancelled: how booking ended; Entered: "
        "started, booking goes on"
    )
    created: bool = Field(description="True for the request that started the order.")
    hold_reason: str | None = Field(
        default=None, description="OnHold: the reason's code, e.g. credit_limit_exceeded."
    )
    hold_message: str | None = Field(default=None, description="OnHold: the reason, for people.")
    cancellation_reason: str | None = Field(default=None, description="Cancelled: why.")


class _StartOptions(TypedDict):
    """How an order's workflow starts, by plain start or update-with-start alike."""

    id: str
    task_queue: str
    id_conflict_policy: WorkflowIDConflictPolicy
    id_reuse_policy: WorkflowIDReusePolicy
    search_attributes: TypedSearchAttributes
    memo: dict[str, Any]
    static_summary: str
    static_details: str
    task_timeout: timedelta | None


def _conflict(order: OrderRequest) -> str:
    return (
        f"order {order.order_id} already exists with different content; "
        "send a new source_order_id for a new order"
    )


def _as_shown(order_id: str, description: WorkflowExecutionDescription) -> CreatedOrder:
    """The order found, as its search attributes show it (no call to its worker)."""
    attributes = description.typed_search_attributes
    status = attributes.get(ORDER_STATUS)
    shown = OrderStatus(status) if status else OrderStatus.ENTERED
    held = shown is OrderStatus.ON_HOLD
    return CreatedOrder(
        order_id=order_id,
        status=shown,
        created=False,
        hold_reason=attributes.get(HOLD_REASON) if held else None,
    )


def _started(operation: WithStartWorkflowOperation[Any, Any]) -> bool:
    """Whether Temporal answered the start of an update-with-start that has returned.
    Looked at, not waited for: a call that failed before reaching Temporal never settles
    it. Reading a failed start keeps asyncio from logging it as never retrieved."""
    start = operation._workflow_handle  # the SDK offers only a wait on it
    if not start.done() or start.cancelled():
        return False
    return start.exception() is None


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


def request_hash(order: OrderRequest) -> str:
    return hashlib.sha256(order.model_dump_json().encode()).hexdigest()


class OrderService(CreditRefunds):
    """Orders over Temporal: start, read, list, send events, act on many at once."""

    def __init__(
        self,
        client: Client,
        task_queue: str,
        dunning: DunningPolicy | None = None,
        clock: Clock | None = None,
        local_activities: LocalCalls = False,
        *,
        accept_wait: timedelta = ACCEPT_WAIT,
        event_wait: timedelta = EVENT_WAIT,
        booking_wait: timedelta = BOOKING_WAIT,
        task_timeout: timedelta | None = None,
    ) -> None:
        super().__init__(
            client, task_queue, local_activities=local_activities, task_timeout=task_timeout
        )
        self._dunning = dunning or DunningPolicy()
        self._clock = clock or _utc_now
        self._accept_wait = accept_wait
        self._event_wait = event_wait
        self._booking_wait = booking_wait
        self._booking_reads: dict[str, asyncio.Task[BookingOutcome]] = {}

    @property
    def clock(self) -> Clock:
        return self._clock

    async def create(self, order: OrderRequest, *, wait: bool = True) -> CreatedOrder:
        """Start the order, or find it if the caller sent it before; answer how booking ended.

        The workflow id is the order id and a start never joins an existing run (`FAIL`), so
        of any number of identical POSTs, even at once, exactly one starts the order and is
        told `created`; the others find it. The same id holding another request is
        `OrderConflict`, and nothing starts.

        With `wait`, the order starts with the `booking` Update (update-with-start, one
        round trip) and the answer is the booking's outcome: Booked, OnHold with the reason,
        or Cancelled; a caller who finds the order running asks it the same, and one who
        finds it finished gets its final status. Booking that takes longer than
        `booking_wait` is answered Entered: the order is started and booking goes on.
        Without `wait` (`Prefer: respond-async`) it is a plain start, answered Entered.
        """
        sha = request_hash(order)
        async with self.translated(order.order_id):
            found = await self.start_once(
                order.order_id,
                WORKFLOW_NAME,
                sha,
                _conflict(order),
                (lambda: self._start_and_book(order, sha))
                if wait
                else (lambda: self._start(order, sha)),
            )
            if isinstance(found, CreatedOrder):
                return found
            return await self._found(order.order_id, found, wait=wait)

    def _start_options(self, order: OrderRequest, sha: str) -> _StartOptions:
        return _StartOptions(
            id=order.order_id,
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(ORDER_STATUS, OrderStatus.ENTERED.value),
                    SearchAttributePair(CUSTOMER_ID, order.customer_id),
                ]
            ),
            memo={REQUEST_HASH_MEMO: sha},
            static_summary=presentation.static_summary(order),
            static_details=presentation.static_details(order),
            task_timeout=self._task_timeout,
        )

    def _input(self, order: OrderRequest) -> OrderInput:
        return OrderInput(
            order=order, dunning=self._dunning, local_activities=self._local_activities
        )

    async def _start(self, order: OrderRequest, sha: str) -> CreatedOrder:
        """Start the order without waiting for anything (one billable Action fewer)."""
        await self._client.start_workflow(
            OrderWorkflow.run,
            self._input(order),
            **self._start_options(order, sha),
            rpc_timeout=RPC_TIMEOUT,
        )
        return CreatedOrder(order_id=order.order_id, status=OrderStatus.ENTERED, created=True)

    async def _start_and_book(self, order: OrderRequest, sha: str) -> CreatedOrder:
        """Start the order and wait, in the same call, for how booking ended."""
        operation = WithStartWorkflowOperation(
            OrderWorkflow.run, self._input(order), **self._start_options(order, sha)
        )
        entered = CreatedOrder(order_id=order.order_id, status=OrderStatus.ENTERED, created=True)
        try:
            async with asyncio.timeout(self._booking_wait.total_seconds()):
                outcome = await self._client.execute_update_with_start_workflow(
                    OrderWorkflow.booking,
                    start_workflow_operation=operation,
                    rpc_timeout=self._booking_wait,
                )
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as error:
            if not _started(operation):
                # No answer at all: the start may or may not have reached Temporal.
                await self._started_by_this_request(order, sha, error)
            if (broken := await self._broken(order.order_id)) is not None:
                raise broken from error
            return entered
        except WorkflowUpdateFailedError:
            # Started, but not answered: a worker on code without `booking` refused the read.
            return entered
        except Exception:
            _started(operation)  # reads the start's error, which is raised here already
            raise
        return CreatedOrder(**outcome.model_dump(), created=True)

    async def _started_by_this_request(
        self, order: OrderRequest, sha: str, error: BaseException
    ) -> None:
        """After a start that got no answer: the order holds this request, or the caller is
        told nothing was started (`TemporalUnavailable`) or that the id is another order's."""
        try:
            description = await self._handle(order.order_id).describe(rpc_timeout=RPC_TIMEOUT)
        except RPCError as missing:
            if missing.status != RPCStatusCode.NOT_FOUND:
                raise
            raise TemporalUnavailable(
                f"Temporal did not answer within {self._booking_wait.total_seconds():g} s: "
                f"order {order.order_id} was not started; sending it again is safe"
            ) from error
        await same_request(description, WORKFLOW_NAME, sha, _conflict(order))

    async def _found(
        self, order_id: str, description: WorkflowExecutionDescription, *, wait: bool
    ) -> CreatedOrder:
        """An order an identical request started: with `wait`, how its booking ended, waited
        for as its first caller waits; a finished order's final status."""
        if description.status not in (None, WorkflowExecutionStatus.RUNNING):
            return await self._finished(order_id, description)
        if not wait:
            return _as_shown(order_id, description)
        try:
            async with asyncio.timeout(self._booking_wait.total_seconds()):
                outcome = await self._read_booking(order_id)
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as error:
            if (broken := await self._broken(order_id)) is not None:
                raise broken from error
            return _as_shown(order_id, description)
        except WorkflowUpdateFailedError:
            return _as_shown(order_id, description)
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            # It finished in between.
            finished = await self._handle(order_id).describe(rpc_timeout=RPC_TIMEOUT)
            return await self._finished(order_id, finished)
        return CreatedOrder(**outcome.model_dump(), created=False)

    async def _read_booking(self, order_id: str) -> BookingOutcome:
        """The order's `booking` read. Callers in this process at once (a client resending
        in a burst) share one Update: a workflow takes only a few Updates in flight."""
        reading = self._booking_reads.get(order_id)
        if reading is None:
            reading = asyncio.create_task(
                self._handle(order_id).execute_update(
                    OrderWorkflow.booking, rpc_timeout=self._booking_wait
                )
            )
            self._booking_reads[order_id] = reading

            def done(task: asyncio.Task[BookingOutcome]) -> None:
                del self._booking_reads[order_id]
                if not task.cancelled():
                    task.exception()  # each caller has its own; none is left unread

            reading.add_done_callback(done)
        return await asyncio.shield(reading)

    async def _finished(
        self, order_id: str, description: WorkflowExecutionDescription
    ) -> CreatedOrder:
        """A finished order's final status: its result when it completed (Closed, or
        Cancelled with the reason), else the status it showed last."""
        if description.status is WorkflowExecutionStatus.COMPLETED:
            try:
                handle = self._client.get_workflow_handle_for(OrderWorkflow.run, order_id)
                summary = await handle.result(rpc_timeout=RPC_TIMEOUT)
            except (RPCError, WorkflowFailureError):
                pass
            else:
                return CreatedOrder(
                    order_id=order_id,
                    status=summary.status,
                    created=False,
                    cancellation_reason=summary.cancellation_reason,
                )
        return _as_shown(order_id, description)

    async def get(self, order_id: str) -> OrderState:
        """The order's state, with days past due counted to today."""
        async with self.translated(order_id):
            state = await self._handle(order_id).query(OrderWorkflow.state, rpc_timeout=RPC_TIMEOUT)
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

        return await self._update(
            order_id,
            event.update,
            message,
            finished_applied if applied is not None else None,
            recognised=event.recognised(message),
        )

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
        limit = asyncio.Semaphore(BULK_CONCURRENCY)

        async def one(order_id: str) -> BulkOutcome:
            async with limit:
                try:
                    if action == "cancel":
                        assert isinstance(argument, CancelRequest)
                        ack = await self.send(CANCEL, order_id, argument)
                    else:
                        assert isinstance(argument, SupportAction)
                        ack = await self.send(BULK_SUPPORT[action], order_id, argument)
                except EventStillApplying as accepted:
                    return BulkOutcome(order_id=order_id, ok=True, message=str(accepted))
                except OrderError as error:
                    return BulkOutcome(order_id=order_id, ok=False, message=str(error))
                return BulkOutcome(
                    order_id=order_id, ok=True, status=ack.status, message=ack.message
                )

        return list(await asyncio.gather(*(one(item.order_id) for item in matching)))

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

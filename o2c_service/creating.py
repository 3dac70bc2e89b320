"""Starting an order once, and answering how its booking ended.

`POST /orders` starts the order and asks it the read-only `booking` Update in one
call (update-with-start); identical requests, even at once, start one order and get
the same answer; another request under the same id is a conflict and starts nothing;
`Prefer: respond-async` is a plain start. An order paid by card starts carrying the
payments system's reference to the card, never the token the caller sent.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypedDict

from pydantic import BaseModel, Field
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from adapters.errors import BusinessError
from adapters.payments.models import StoreCard
from adapters.payments.protocol import PaymentsAdapter
from o2c_service.credit_refunds import CreditRefunds
from o2c_service.outcomes import (
    REQUEST_HASH_MEMO,
    RPC_TIMEOUT,
    InvalidOrder,
    PaymentsUnavailable,
    TemporalUnavailable,
    same_request,
)
from o2c_workflows import presentation
from o2c_workflows.dunning import DunningPolicy
from o2c_workflows.messages import BookingOutcome
from o2c_workflows.models import CardPayment, OrderRequest, OrderStatus
from o2c_workflows.order.base import WORKFLOW_NAME, OrderInput
from o2c_workflows.order.workflow import OrderWorkflow
from o2c_workflows.search_attributes import CUSTOMER_ID, HOLD_REASON, ORDER_STATUS

BOOKING_WAIT = timedelta(seconds=10)
"""How long `POST /orders` waits for the booking's outcome before answering 202, the order
Entered and booking going on (O2C_BOOKING_WAIT_SECONDS)."""


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


def request_hash(order: OrderRequest) -> str:
    """The request as the caller sent it. Callers send no `card_ref`: left out, a card
    order hashes as it did before the vault, so an order sent again across the upgrade
    is found, not a conflict."""
    method = order.payment_method
    leave_out = {"payment_method": {"card_ref"}} if method and method.card_ref is None else None
    return hashlib.sha256(order.model_dump_json(exclude=leave_out).encode()).hexdigest()


PaymentsSource = Callable[[], Awaitable[PaymentsAdapter]]
"""The payments system, opened when an order first needs it."""


def store_card_request(order_id: str, card_token: str) -> StoreCard:
    """Keyed by the order and the token: the same order sent again stores nothing new and
    gets the same reference; another card for an order never started gets its own."""
    token_digest = hashlib.sha256(card_token.encode()).hexdigest()[:16]
    return StoreCard(
        idempotency_key=f"{order_id}:store_card:{token_digest}",
        order_id=order_id,
        card_token=card_token,
    )


class OrderCreation(CreditRefunds):
    """`create`, for `OrderService`; the attributes below are set by its `__init__`."""

    _dunning: DunningPolicy
    _payments: PaymentsSource | None
    _booking_wait: timedelta
    _booking_reads: dict[str, asyncio.Task[BookingOutcome]]

    async def create(
        self, order: OrderRequest, *, wait: bool = True, actor: str | None = None
    ) -> CreatedOrder:
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
        `actor` (who sends it, e.g. an API key's `name (key_id)`) is recorded as the order's
        creator; it is no part of the request, so the same order from another caller is the
        same order.

        A `card_token` is stored in the payments system first and the order starts with its
        `card_ref` (`InvalidOrder` if payments refuses the token, `PaymentsUnavailable`
        if it cannot answer); the request is told apart from others as it was sent.
        """
        sha = request_hash(order)

        async def start() -> CreatedOrder:
            carried = await self._with_stored_card(order)
            if wait:
                return await self._start_and_book(carried, sha, actor)
            return await self._start(carried, sha, actor)

        async with self.translated(order.order_id):
            found = await self.start_once(
                order.order_id, WORKFLOW_NAME, sha, _conflict(order), start
            )
            if isinstance(found, CreatedOrder):
                return found
            return await self._found(order.order_id, found, wait=wait)

    async def _with_stored_card(self, order: OrderRequest) -> OrderRequest:
        """The order as its workflow takes it: a card token swapped for the vault's
        reference, so the token is in no payload of the order's history."""
        method = order.payment_method
        if method is None or method.card_token is None:
            return order
        if await self._exists(order.order_id):
            # Sent again, or another request under its id: found, no card stored for it.
            raise WorkflowAlreadyStartedError(order.order_id, WORKFLOW_NAME)
        if self._payments is None:
            raise PaymentsUnavailable(
                "this service has no payments system to store the card in: "
                f"order {order.order_id} was not started"
            )
        request = store_card_request(order.order_id, method.card_token)
        try:
            stored = await (await self._payments()).store_card(request)
        except BusinessError as error:
            raise InvalidOrder(
                ("body", "payment_method", "card_token"), f"{error.code}: {error.message}"
            ) from error
        except Exception as error:  # whatever the payments system's failure, nothing started
            raise PaymentsUnavailable(
                f"payments could not store the card ({error}): order {order.order_id} was "
                "not started; sending it again is safe"
            ) from error
        carried = CardPayment(card_ref=stored.card_ref)
        return order.model_copy(update={"payment_method": carried})

    async def _exists(self, workflow_id: str) -> bool:
        try:
            await self._handle(workflow_id).describe(rpc_timeout=RPC_TIMEOUT)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

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

    def _input(self, order: OrderRequest, actor: str | None) -> OrderInput:
        return OrderInput(
            order=order,
            dunning=self._dunning,
            local_activities=self._local_activities,
            system_queues=self._system_queues,
            actor=actor,
        )

    async def _start(self, order: OrderRequest, sha: str, actor: str | None) -> CreatedOrder:
        """Start the order without waiting for anything (one billable Action fewer)."""
        await self._client.start_workflow(
            OrderWorkflow.run,
            self._input(order, actor),
            **self._start_options(order, sha),
            rpc_timeout=RPC_TIMEOUT,
        )
        return CreatedOrder(order_id=order.order_id, status=OrderStatus.ENTERED, created=True)

    async def _start_and_book(
        self, order: OrderRequest, sha: str, actor: str | None
    ) -> CreatedOrder:
        """Start the order and wait, in the same call, for how booking ended."""
        operation = WithStartWorkflowOperation(
            OrderWorkflow.run, self._input(order, actor), **self._start_options(order, sha)
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

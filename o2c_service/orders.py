"""Order operations over Temporal, in the terms the API and CLI speak.

Temporal's errors are translated here, once, into the few outcomes a caller
can act on: not found, conflict, rejected (and why), Temporal unavailable.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from o2c_workflows import credit_refund, presentation, rejections
from o2c_workflows.credit_refund import (
    CreditRefundInput,
    CreditRefundRequest,
    CreditRefundResult,
    CreditRefundWorkflow,
)
from o2c_workflows.dunning import DunningPolicy
from o2c_workflows.messages import (
    Amendment,
    AmendmentAck,
    CancelRequest,
    EventAck,
    PaymentReceived,
    ReturnReceived,
    ShipmentConfirmed,
    SupportAck,
    SupportAction,
)
from o2c_workflows.models import Identifier, OrderRequest, OrderStatus
from o2c_workflows.order_workflow import WORKFLOW_NAME, OrderInput, OrderWorkflow
from o2c_workflows.search_attributes import CUSTOMER_ID, HOLD_REASON, ORDER_STATUS
from o2c_workflows.state import OrderState

RPC_TIMEOUT = timedelta(seconds=10)
REFUND_WAIT = timedelta(seconds=30)
"""How long `refund_credit` waits for its workflow's outcome before answering 503."""
REQUEST_HASH_MEMO = "request_sha256"


class OrderError(Exception):
    """Base for the outcomes a caller can act on; the message is for people."""


class OrderNotFound(OrderError):
    pass


class OrderConflict(OrderError):
    """The request contradicts the order as it exists (HTTP 409)."""


class EventRejected(OrderError):
    def __init__(self, message: str, *, invalid: bool) -> None:
        super().__init__(message)
        # True when the event contradicts the order (422), False when it is
        # merely too early or too late for it (409).
        self.invalid = invalid


class TemporalUnavailable(OrderError):
    pass


class CreatedOrder(BaseModel):
    order_id: str
    status: OrderStatus
    created: bool


class OrderListItem(BaseModel):
    order_id: str
    status: OrderStatus | None
    customer_id: str | None
    hold_reason: str | None
    execution_status: str
    started_at: datetime | None
    closed_at: datetime | None


SupportVerb = Literal["retry", "release", "cancel"]
BULK_CONCURRENCY = 10
R = TypeVar("R", bound=BaseModel)


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


def _quotable(value: str) -> str:
    if "'" in value or "\\" in value:
        raise ValueError(f"{value!r} cannot be used in a search")
    return value


Clock = Callable[[], Awaitable[datetime]]
"""Today for the caller; a test environment passes its own (skipped) clock."""


async def _utc_now() -> datetime:
    return datetime.now(UTC)


def request_hash(order: OrderRequest) -> str:
    return hashlib.sha256(order.model_dump_json().encode()).hexdigest()


class OrderService:
    def __init__(
        self,
        client: Client,
        task_queue: str,
        dunning: DunningPolicy | None = None,
        clock: Clock | None = None,
        local_activities: bool = False,
        task_timeout: timedelta | None = None,
    ) -> None:
        """`task_timeout` is each started workflow's task timeout (None: Temporal's 10 s)."""
        self._client = client
        self._task_queue = task_queue
        self._dunning = dunning or DunningPolicy()
        self._clock = clock or _utc_now
        self._local_activities = local_activities
        self._task_timeout = task_timeout

    @property
    def client(self) -> Client:
        return self._client

    @property
    def clock(self) -> Clock:
        return self._clock

    async def create(self, order: OrderRequest) -> CreatedOrder:
        """Start the order, or find it if the caller sent it before.

        The workflow id is the order id, so a retried POST cannot start a second
        workflow: a running one is reused, a finished one is never reused.
        """
        async with self.translated(order.order_id):
            existing = await self._existing(order)
            if existing is not None:
                return existing
            try:
                await self._client.start_workflow(
                    OrderWorkflow.run,
                    OrderInput(
                        order=order, dunning=self._dunning, local_activities=self._local_activities
                    ),
                    id=order.order_id,
                    task_queue=self._task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    search_attributes=TypedSearchAttributes(
                        [
                            SearchAttributePair(ORDER_STATUS, OrderStatus.ENTERED.value),
                            SearchAttributePair(CUSTOMER_ID, order.customer_id),
                        ]
                    ),
                    memo={REQUEST_HASH_MEMO: request_hash(order)},
                    static_summary=presentation.static_summary(order),
                    static_details=presentation.static_details(order),
                    task_timeout=self._task_timeout,
                    rpc_timeout=RPC_TIMEOUT,
                )
            except WorkflowAlreadyStartedError:
                # Finished between our look and our start: it is the same order.
                existing = await self._existing(order)
                assert existing is not None
                return existing
            return CreatedOrder(order_id=order.order_id, status=OrderStatus.ENTERED, created=True)

    async def _existing(self, order: OrderRequest) -> CreatedOrder | None:
        try:
            description = await self._handle(order.order_id).describe(rpc_timeout=RPC_TIMEOUT)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        memo = await description.memo()
        if memo.get(REQUEST_HASH_MEMO) != request_hash(order):
            raise OrderConflict(
                f"order {order.order_id} already exists with different content; "
                "send a new source_order_id for a new order"
            )
        status = description.typed_search_attributes.get(ORDER_STATUS)
        return CreatedOrder(
            order_id=order.order_id,
            status=OrderStatus(status) if status else OrderStatus.ENTERED,
            created=False,
        )

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
    ) -> list[OrderListItem]:
        """Orders by business state, from Temporal visibility (eventually consistent).

        `status` is an enum; `customer_id` and `hold_reason` are validated as
        Identifiers (no quotes) by the API and CLI, so nothing can break out of
        the query string.
        """
        # A long-lived order's earlier runs ended in ContinuedAsNew: list each order once.
        clauses = [f"WorkflowType = '{WORKFLOW_NAME}'", "ExecutionStatus != 'ContinuedAsNew'"]
        if status is not None:
            clauses.append(f"{ORDER_STATUS.name} = '{status.value}'")
        if customer_id is not None:
            clauses.append(f"{CUSTOMER_ID.name} = '{_quotable(customer_id)}'")
        if hold_reason is not None:
            clauses.append(f"{HOLD_REASON.name} = '{_quotable(hold_reason)}'")
        items: list[OrderListItem] = []
        async with self.translated(None):
            async for execution in self._client.list_workflows(
                " AND ".join(clauses), limit=limit, rpc_timeout=RPC_TIMEOUT
            ):
                found_status = execution.typed_search_attributes.get(ORDER_STATUS)
                items.append(
                    OrderListItem(
                        order_id=execution.id,
                        status=OrderStatus(found_status) if found_status else None,
                        customer_id=execution.typed_search_attributes.get(CUSTOMER_ID),
                        hold_reason=execution.typed_search_attributes.get(HOLD_REASON),
                        execution_status=(execution.status or WorkflowExecutionStatus.RUNNING).name,
                        started_at=execution.start_time,
                        closed_at=execution.close_time,
                    )
                )
        return items

    async def confirm_shipment(self, order_id: str, event: ShipmentConfirmed) -> EventAck:
        return await self._update(order_id, "confirm_shipment", event, EventAck)

    async def receive_payment(self, order_id: str, event: PaymentReceived) -> EventAck:
        return await self._update(order_id, "receive_payment", event, EventAck)

    async def amend(self, order_id: str, amendment: Amendment) -> AmendmentAck:
        return await self._update(order_id, "amend", amendment, AmendmentAck)

    async def record_return(self, order_id: str, returned: ReturnReceived) -> EventAck:
        return await self._update(order_id, "record_return", returned, EventAck)

    async def retry(self, order_id: str, action: SupportAction) -> SupportAck:
        return await self._update(order_id, "retry", action, SupportAck)

    async def release(self, order_id: str, action: SupportAction) -> SupportAck:
        return await self._update(order_id, "release_hold", action, SupportAck)

    async def cancel(self, order_id: str, request: CancelRequest) -> SupportAck:
        return await self._update(order_id, "cancel", request, SupportAck)

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
        matching = await self.search(
            status=selection.status,
            customer_id=selection.customer_id,
            hold_reason=selection.hold_reason,
            limit=selection.limit,
        )
        limit = asyncio.Semaphore(BULK_CONCURRENCY)

        async def one(order_id: str) -> BulkOutcome:
            async with limit:
                try:
                    if action == "cancel":
                        assert isinstance(argument, CancelRequest)
                        ack = await self.cancel(order_id, argument)
                    else:
                        assert isinstance(argument, SupportAction)
                        act = self.retry if action == "retry" else self.release
                        ack = await act(order_id, argument)
                except OrderError as error:
                    return BulkOutcome(order_id=order_id, ok=False, message=str(error))
                return BulkOutcome(
                    order_id=order_id, ok=True, status=ack.status, message=ack.message
                )

        return list(await asyncio.gather(*(one(item.order_id) for item in matching)))

    # -- customer credit refunds (o2c_workflows/credit_refund.py) ---------------

    async def refund_credit(self, request: CreditRefundRequest) -> CreditRefundResult:
        """Pay customer credit back to a payment, and wait for the outcome.

        The workflow id derives from `refund_id`: the same request again (say, a
        retried POST) finds the first refund and answers with its outcome; the
        same id with other content is a conflict. A refund refused by billing or
        payments is `EventRejected` with the reason (409, or 422 when the request
        names what does not exist or does not match).
        """
        refund_id = credit_refund.workflow_id(request.refund_id)
        request_sha = hashlib.sha256(request.model_dump_json().encode()).hexdigest()

        async def refuse_another_request() -> None:
            try:
                description = await self._client.get_workflow_handle(refund_id).describe(
                    rpc_timeout=RPC_TIMEOUT
                )
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:
                    return
                raise
            if (await description.memo()).get(REQUEST_HASH_MEMO) != request_sha:
                raise OrderConflict(
                    f"refund {request.refund_id} already exists for another request; "
                    "send a new refund_id for a new refund"
                )

        async with self.translated(None):
            await refuse_another_request()
            try:
                handle = await self._client.start_workflow(
                    CreditRefundWorkflow.run,
                    CreditRefundInput(request=request, local_activities=self._local_activities),
                    id=refund_id,
                    task_queue=self._task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    memo={REQUEST_HASH_MEMO: request_sha},
                    static_summary=credit_refund.summary(request),
                    task_timeout=self._task_timeout,
                    rpc_timeout=RPC_TIMEOUT,
                )
            except WorkflowAlreadyStartedError:
                # Finished between our look and our start: the same refund.
                await refuse_another_request()
                handle = self._client.get_workflow_handle_for(CreditRefundWorkflow.run, refund_id)
            try:
                async with asyncio.timeout(REFUND_WAIT.total_seconds()):
                    return await handle.result()
            except TimeoutError as error:
                raise TemporalUnavailable(
                    f"refund {request.refund_id} has not finished yet (is a worker running?); "
                    "sending the same request again is safe and answers with its outcome"
                ) from error
            except WorkflowFailureError as error:
                cause = error.cause
                if isinstance(cause, ApplicationError):
                    raise EventRejected(
                        cause.message, invalid=cause.type in credit_refund.INVALID_REFUND
                    ) from error
                raise EventRejected(
                    f"refund {request.refund_id} did not complete: {cause}", invalid=False
                ) from error

    async def _update(
        self, order_id: str, update: str, argument: BaseModel, result_type: type[R]
    ) -> R:
        """Send an Update, so the answer says accepted or why not."""
        async with self.translated(order_id):
            # By name: the SDK's typing does not accept async update methods here.
            result: R = await self._handle(order_id).execute_update(
                update, argument, result_type=result_type, rpc_timeout=RPC_TIMEOUT
            )
        return result

    def _handle(self, order_id: str) -> WorkflowHandle[OrderWorkflow, object]:
        return self._client.get_workflow_handle_for(OrderWorkflow.run, order_id)

    @asynccontextmanager
    async def translated(self, order_id: str | None) -> AsyncIterator[None]:
        """Turn Temporal's errors inside the block into the outcomes callers act on."""
        try:
            yield
        except WorkflowUpdateFailedError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError) and cause.type in (
                rejections.EVENT_NOT_ALLOWED,
                rejections.INVALID_EVENT,
            ):
                raise EventRejected(
                    cause.message, invalid=cause.type == rejections.INVALID_EVENT
                ) from error
            raise EventRejected(
                f"the event could not be applied: {cause}", invalid=False
            ) from error
        except WorkflowUpdateRPCTimeoutOrCancelledError as error:
            raise TemporalUnavailable(
                f"order {order_id} did not answer in time: is a worker running?"
            ) from error
        except WorkflowQueryFailedError as error:
            raise TemporalUnavailable(f"order {order_id} could not be read: {error}") from error
        except RPCError as error:
            raise await self._rpc_outcome(order_id, error) from error
        except RuntimeError as error:
            # A lazy client reports a failed (re)connection this way.
            if "Failed client connect" not in str(error):
                raise
            address = self._client.service_client.config.target_host
            raise TemporalUnavailable(
                f"Temporal is unavailable: cannot connect to {address}"
            ) from error

    async def _rpc_outcome(self, order_id: str | None, error: RPCError) -> OrderError:
        if error.status == RPCStatusCode.NOT_FOUND and order_id is not None:
            if await self._is_closed(order_id):
                return OrderConflict(f"order {order_id} is finished and takes no more events")
            return OrderNotFound(f"order {order_id} not found")
        if error.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            return TemporalUnavailable(
                f"order {order_id} did not answer in time: is a worker running?"
            )
        return TemporalUnavailable(f"Temporal is unavailable: {error.message}")

    async def _is_closed(self, order_id: str) -> bool:
        try:
            description = await self._handle(order_id).describe(rpc_timeout=RPC_TIMEOUT)
        except RPCError:
            return False
        return description.status not in (None, WorkflowExecutionStatus.RUNNING)

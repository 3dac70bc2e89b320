"""Order operations over Temporal, in the terms the API and CLI speak.

Temporal's errors are translated here, once, into the few outcomes a caller
can act on: not found, conflict, rejected (and why), accepted but still
applying, not taken (Temporal or the worker unavailable), and broken (a bug).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
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
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from o2c_service.events import CANCEL, RELEASE, RETRY, DuplicateContradicts, OrderEvent
from o2c_workflows import credit_refund, presentation, rejections
from o2c_workflows.credit_refund import (
    CreditRefundInput,
    CreditRefundRequest,
    CreditRefundResult,
    CreditRefundWorkflow,
)
from o2c_workflows.dunning import DunningPolicy
from o2c_workflows.messages import CancelRequest, SupportAction
from o2c_workflows.models import Identifier, OrderRequest, OrderStatus
from o2c_workflows.order.base import WORKFLOW_NAME, OrderInput
from o2c_workflows.order.workflow import OrderWorkflow
from o2c_workflows.search_attributes import CUSTOMER_ID, HOLD_REASON, ORDER_STATUS
from o2c_workflows.state import OrderState

RPC_TIMEOUT = timedelta(seconds=10)
ACCEPT_WAIT = timedelta(seconds=10)
"""How long an event may wait for the order to accept it (a worker to pick it up)."""
EVENT_WAIT = timedelta(seconds=60)
"""How long an accepted event is waited for before answering 202 (O2C_EVENT_WAIT_SECONDS)."""
REFUND_WAIT = timedelta(seconds=30)
"""How long `refund_credit` waits for its workflow's outcome before answering 503."""
REQUEST_HASH_MEMO = "request_sha256"
_NO_ANSWER = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)
"""Temporal did not answer: no outcome, neither success nor refusal."""


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


class FinalStateUnreadable(TemporalUnavailable):
    """A finished order whose final state cannot be read now (HTTP 503): whether it applied
    an event cannot be told, so the event is neither confirmed nor refused."""


class EventNotTaken(TemporalUnavailable):
    """No worker accepted the event in time (HTTP 503): nothing was applied."""


class OrderBroken(OrderError):
    """Temporal is up but cannot answer for the order: its workflow task or query fails,
    or Temporal refused the request as malformed. A bug, not an outage (HTTP 500)."""


class EventStillApplying(OrderError):
    """The order accepted the event (durably) but has not finished applying it (HTTP 202)."""

    def __init__(self, message: str, *, order_id: str) -> None:
        super().__init__(message)
        self.order_id = order_id


class InvalidParameter(OrderError):
    """A request parameter Temporal cannot use; `field` names it (HTTP 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


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


class OrderPage(BaseModel):
    """One page of a listing; send `next_page_token` back as `page_token` for the next."""

    orders: list[OrderListItem]
    next_page_token: str | None = Field(description="None on the last page.")
    total: int = Field(description="Orders matching the filters, on every page together.")


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
        *,
        accept_wait: timedelta = ACCEPT_WAIT,
        event_wait: timedelta = EVENT_WAIT,
        task_timeout: timedelta | None = None,
    ) -> None:
        """`task_timeout` is each started workflow's task timeout (None: Temporal's 10 s)."""
        self._client = client
        self._task_queue = task_queue
        self._dunning = dunning or DunningPolicy()
        self._clock = clock or _utc_now
        self._local_activities = local_activities
        self._accept_wait = accept_wait
        self._event_wait = event_wait
        self._task_timeout = task_timeout

    @property
    def client(self) -> Client:
        return self._client

    @property
    def clock(self) -> Clock:
        return self._clock

    async def create(self, order: OrderRequest) -> CreatedOrder:
        """Start the order, or find it if the caller sent it before.

        The workflow id is the order id and a start never joins an existing run
        (`FAIL`), so of any number of identical POSTs, even at once, exactly one
        starts the order and is told `created`; the others find it.
        """
        sha = request_hash(order)
        async with self.translated(order.order_id):
            existing = await self._start_once(
                order.order_id,
                WORKFLOW_NAME,
                sha,
                f"order {order.order_id} already exists with different content; "
                "send a new source_order_id for a new order",
                lambda: self._client.start_workflow(
                    OrderWorkflow.run,
                    OrderInput(
                        order=order, dunning=self._dunning, local_activities=self._local_activities
                    ),
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
                    rpc_timeout=RPC_TIMEOUT,
                ),
            )
        if not isinstance(existing, WorkflowExecutionDescription):
            return CreatedOrder(order_id=order.order_id, status=OrderStatus.ENTERED, created=True)
        status = existing.typed_search_attributes.get(ORDER_STATUS)
        return CreatedOrder(
            order_id=order.order_id,
            status=OrderStatus(status) if status else OrderStatus.ENTERED,
            created=False,
        )

    async def _start_once(
        self,
        workflow_id: str,
        workflow_type: str,
        sha: str,
        conflict: str,
        start: Callable[[], Awaitable[H]],
    ) -> H | WorkflowExecutionDescription:
        """Start a workflow whose id is its business key, at most once.

        `start` must start it with `WorkflowIDConflictPolicy.FAIL` and the request's
        hash in the memo: of any number of identical requests, even at once, exactly one
        starts it (and gets the handle `start` returns); the others find it, running or
        finished, and get its description. The same id holding another request (or
        another kind of workflow) is `OrderConflict` with `conflict` as the reason.
        """
        try:
            return await start()
        except WorkflowAlreadyStartedError:
            handle = self._client.get_workflow_handle(workflow_id)
            description = await handle.describe(rpc_timeout=RPC_TIMEOUT)
        memo = await description.memo()
        if description.workflow_type != workflow_type or memo.get(REQUEST_HASH_MEMO) != sha:
            raise OrderConflict(conflict)
        return description

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
            clauses.append(f"{CUSTOMER_ID.name} = '{_quotable(customer_id)}'")
        if hold_reason is not None:
            clauses.append(f"{HOLD_REASON.name} = '{_quotable(hold_reason)}'")
        query = " AND ".join(clauses)
        token = _decode_page_token(page_token)
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

    async def send(self, order_id: str, event: OrderEvent[M, R], message: M) -> R:
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
                        ack = await self.send(order_id, CANCEL, argument)
                    else:
                        assert isinstance(argument, SupportAction)
                        ack = await self.send(order_id, BULK_SUPPORT[action], argument)
                except EventStillApplying as accepted:
                    return BulkOutcome(order_id=order_id, ok=True, message=str(accepted))
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

        async with self.translated(None):
            started = await self._start_once(
                refund_id,
                credit_refund.WORKFLOW_NAME,
                request_sha,
                f"refund {request.refund_id} already exists for another request; "
                "send a new refund_id for a new refund",
                lambda: self._client.start_workflow(
                    CreditRefundWorkflow.run,
                    CreditRefundInput(request=request, local_activities=self._local_activities),
                    id=refund_id,
                    task_queue=self._task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    memo={REQUEST_HASH_MEMO: request_sha},
                    static_summary=credit_refund.summary(request),
                    task_timeout=self._task_timeout,
                    rpc_timeout=RPC_TIMEOUT,
                ),
            )
            handle = (
                self._client.get_workflow_handle_for(CreditRefundWorkflow.run, refund_id)
                if isinstance(started, WorkflowExecutionDescription)
                else started
            )
            try:
                async with asyncio.timeout(REFUND_WAIT.total_seconds()):
                    result = await handle.result()
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
            if not result.refunded:
                code = result.refusal_code or "refused"
                raise EventRejected(
                    f"{code}: {result.refusal}", invalid=code in credit_refund.INVALID_REFUND
                )
            return result

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
                if isinstance(error, RPCError) and error.status not in _NO_ANSWER:
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

    def _handle(self, order_id: str) -> WorkflowHandle[OrderWorkflow, object]:
        return self._client.get_workflow_handle_for(OrderWorkflow.run, order_id)

    @asynccontextmanager
    async def translated(self, order_id: str | None) -> AsyncIterator[None]:
        """Turn Temporal's errors inside the block into the outcomes callers act on."""
        try:
            yield
        except WorkflowUpdateFailedError as error:
            failure = business_failure(error)
            if failure is not None and failure.type in (
                rejections.EVENT_NOT_ALLOWED,
                rejections.INVALID_EVENT,
            ):
                raise EventRejected(
                    failure.message, invalid=failure.type == rejections.INVALID_EVENT
                ) from error
            if order_id is not None and not await self._is_order(order_id):
                raise OrderNotFound(f"order {order_id} not found") from error
            if failure is not None:
                raise EventRejected(
                    f"{failure.type or 'failed'}: {failure.message}", invalid=False
                ) from error
            raise EventRejected(
                f"the event could not be applied: {error.cause}", invalid=False
            ) from error
        except WorkflowUpdateRPCTimeoutOrCancelledError as error:
            if order_id is not None and (broken := await self._broken(order_id)) is not None:
                raise broken from error
            raise TemporalUnavailable(
                f"order {order_id} did not answer in time: is a worker running?"
            ) from error
        except WorkflowQueryFailedError as error:
            if order_id is not None and not await self._is_order(order_id):
                raise OrderNotFound(f"order {order_id} not found") from error
            raise OrderBroken(f"order {order_id} could not be read: {error}") from error
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
            if not await self._is_order(order_id):
                return OrderNotFound(f"order {order_id} not found")
            if await self._is_closed(order_id):
                return OrderConflict(f"order {order_id} is finished and takes no more events")
            return OrderNotFound(f"order {order_id} not found")
        if error.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            if order_id is not None and (broken := await self._broken(order_id)) is not None:
                return broken
            return TemporalUnavailable(
                f"order {order_id} did not answer in time: is a worker running?"
            )
        if error.status == RPCStatusCode.FAILED_PRECONDITION or (
            "workflow task in failed state" in error.message.lower()
        ):
            return OrderBroken(
                f"order {order_id} cannot answer: its workflow task is failing (a bug in the "
                f"workflow or worker; see the worker log and the Temporal UI): {error.message}"
            )
        if error.status == RPCStatusCode.INVALID_ARGUMENT:
            return OrderBroken(f"Temporal refused the request: {error.message}")
        return TemporalUnavailable(f"Temporal is unavailable: {error.message}")

    async def _broken(self, order_id: str) -> OrderBroken | None:
        """Why an order did not answer when Temporal is up and its workflow task keeps
        failing (a bug, not an outage); None when that is not the reason."""
        try:
            description = await self._handle(order_id).describe(rpc_timeout=RPC_TIMEOUT)
        except RPCError:
            return None
        attempt = description.raw_description.pending_workflow_task.attempt
        if attempt <= 1:
            return None
        return OrderBroken(
            f"order {order_id} cannot answer: its workflow task is failing (attempt {attempt}; "
            "a bug in the workflow or worker, see the worker log and the Temporal UI)"
        )

    async def _is_order(self, order_id: str) -> bool:
        """False when no workflow has this id or it is not an `Order` (say, a refund)."""
        try:
            description = await self._handle(order_id).describe(rpc_timeout=RPC_TIMEOUT)
        except RPCError as error:
            return error.status != RPCStatusCode.NOT_FOUND
        return description.workflow_type == WORKFLOW_NAME

    async def _is_closed(self, order_id: str) -> bool:
        try:
            description = await self._handle(order_id).describe(rpc_timeout=RPC_TIMEOUT)
        except RPCError:
            return False
        return description.status not in (None, WorkflowExecutionStatus.RUNNING)


def business_failure(error: BaseException) -> ApplicationError | None:
    """The first ApplicationError down the failure's cause chain: its `type` is the
    business code (an activity's failure wraps the adapter's refusal in an
    ActivityError, whose own message says only that the activity failed)."""
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, ApplicationError):
            return current
        current = current.__cause__
    return None


def _decode_page_token(token: str | None) -> bytes | None:
    if token is None:
        return None
    try:
        return base64.urlsafe_b64decode(token.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError) as error:
        raise InvalidParameter("page_token", "page_token is not valid") from error

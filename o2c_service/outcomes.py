"""Temporal's errors, translated once into the few outcomes a caller can act on: not
found, conflict, rejected (and why), accepted but still applying, not taken
(Temporal or the worker unavailable), and broken (a bug). `TemporalCalls` is
what every service over Temporal shares: the client, where its workflows run,
starting a workflow at most once, and that translation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TypeVar

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from o2c_domain.systems import LocalCalls
from o2c_workflows import rejections
from o2c_workflows.order.base import WORKFLOW_NAME
from o2c_workflows.order.workflow import OrderWorkflow

RPC_TIMEOUT = timedelta(seconds=10)
REQUEST_HASH_MEMO = "request_sha256"
NO_ANSWER = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)
"""Temporal did not answer: no outcome, neither success nor refusal."""


H = TypeVar("H")


class OrderError(Exception):
    """Base for the outcomes a caller can act on; the message is for people."""


class OrderNotFound(OrderError):
    pass


class OrderConflict(OrderError):
    """The request contradicts the order as it exists (HTTP 409)."""


class EventRejected(OrderError):
    def __init__(self, message: str, *, invalid: bool, code: str | None = None) -> None:
        super().__init__(message)
        # True when the event contradicts the order (422), False when it is
        # merely too early or too late for it (409).
        self.invalid = invalid
        self.code = code
        """The business code of the refusal (`payment_conflict`), where there is one."""


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


class InvalidOrder(OrderError):
    """The order's content refused by a system it needs before it starts (HTTP 422);
    `loc` is the field's path in the request, e.g. `("body", "payment_method", ...)`."""

    def __init__(self, loc: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class PaymentsUnavailable(OrderError):
    """The payments system could not store the order's card (HTTP 503): the order was not
    started, and sending it again is safe."""


class InvalidParameter(OrderError):
    """A request parameter Temporal cannot use; `field` names it (HTTP 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class TemporalCalls:
    """The client and where workflows run; Temporal's errors as `OrderError`s."""

    def __init__(
        self,
        client: Client,
        task_queue: str,
        *,
        local_activities: LocalCalls = False,
        system_queues: bool = False,
        task_timeout: timedelta | None = None,
    ) -> None:
        """`local_activities` and `system_queues` are how the workflows started make their
        calls (`o2c_workflows.calls`); `task_timeout` is each started workflow's task timeout
        (None: Temporal's 10 s)."""
        self._client = client
        self._task_queue = task_queue
        self._local_activities = local_activities
        self._system_queues = system_queues
        self._task_timeout = task_timeout

    @property
    def client(self) -> Client:
        return self._client

    async def start_once(
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
        await same_request(description, workflow_type, sha, conflict)
        return description

    def _handle(self, order_id: str) -> WorkflowHandle[OrderWorkflow, object]:
        return self._client.get_workflow_handle_for(OrderWorkflow.run, order_id)

    @asynccontextmanager
    async def translated(self, order_id: str | None) -> AsyncIterator[None]:
        """Turn Temporal's errors inside the block into the outcomes callers act on."""
        try:
            yield
        except WorkflowUpdateFailedError as error:
            failure = business_failure(error)
            if (refused := order_refusal(failure)) is not None:
                raise refused from error
            if order_id is not None and not await self._is_order(order_id):
                raise OrderNotFound(f"order {order_id} not found") from error
            if failure is not None:
                raise EventRejected(
                    f"{failure.type or 'failed'}: {failure.message}",
                    invalid=False,
                    code=failure.type or None,
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


async def same_request(
    description: WorkflowExecutionDescription, workflow_type: str, sha: str, conflict: str
) -> None:
    """The workflow found under a business key holds this very request, or `OrderConflict`
    with `conflict` as the reason (another request, or another kind of workflow)."""
    memo = await description.memo()
    if description.workflow_type != workflow_type or memo.get(REQUEST_HASH_MEMO) != sha:
        raise OrderConflict(conflict)


def order_refusal(failure: ApplicationError | None) -> EventRejected | None:
    """The order's own refusal of an event, if `failure` is one: not allowed now (409)
    or contradicting the order (422)."""
    if failure is None or failure.type not in (
        rejections.EVENT_NOT_ALLOWED,
        rejections.INVALID_EVENT,
    ):
        return None
    return EventRejected(failure.message, invalid=failure.type == rejections.INVALID_EVENT)


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

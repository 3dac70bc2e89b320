"""Returns after an order closed: one `ClosedOrderReturn` workflow per return
(`o2c_workflows/closed_return.py`), started at most once and waited for.

`POST /orders/{order_id}/returns` on a closed order lands here (`OrderService.send`):
the return is checked against the closed order's final state with its earlier
returns after close folded in, exactly as the open order checks it, so an invalid
return is refused with the same reason and nothing starts.

The earlier returns are found in Temporal's visibility, which trails a workflow's
close by a moment, and one still running refuses the next; two returns with
different ids sent in the same instant can both pass the check (the open order
applies returns one at a time; this is the one place they are not serialised).
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

from temporalio.client import (
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from o2c_service.listing import quotable
from o2c_service.outcomes import (
    REQUEST_HASH_MEMO,
    RPC_TIMEOUT,
    EventRejected,
    EventStillApplying,
    TemporalCalls,
    business_failure,
    same_request,
)
from o2c_workflows import closed_return, rejections
from o2c_workflows.closed_return import (
    ClosedOrderReturnInput,
    ClosedOrderReturnResult,
    ClosedOrderReturnWorkflow,
)
from o2c_workflows.messages import EventAck, ReturnReceived
from o2c_workflows.models import OrderStatus
from o2c_workflows.state import OrderState

RETURN_WAIT = timedelta(seconds=30)
"""How long a return after close is waited for before answering 202 (it goes on)."""


class ClosedReturns(TemporalCalls):
    async def return_after_close(self, state: OrderState, returned: ReturnReceived) -> EventAck:
        """Apply a return to the closed order `state` (its final state), and wait for it.

        The workflow id derives from the order and return ids: the same return again
        (a retried POST) finds the first and answers with its outcome as a duplicate;
        the same return id with other lines is a conflict. A return the order would
        refuse is `EventRejected` with the open order's reason, and nothing starts.
        """
        order_id = state.order_id
        return_id = closed_return.workflow_id(order_id, returned.return_id)
        # Who sent it is no part of the return: support resending it is the same return.
        request_sha = hashlib.sha256(
            returned.model_dump_json(exclude={"actor"}).encode()
        ).hexdigest()
        conflict = (
            f"return {returned.return_id} of order {order_id} was already recorded with other "
            "lines; send a new return_id for a new return"
        )
        handle = self._client.get_workflow_handle_for(ClosedOrderReturnWorkflow.run, return_id)
        async with self.translated(None):
            try:
                found = await handle.describe(rpc_timeout=RPC_TIMEOUT)
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
            else:
                await same_request(found, closed_return.WORKFLOW_NAME, request_sha, conflict)
                return await self._outcome(order_id, returned, handle, duplicate=True)
            order = await self._with_returns_after_close(state)
            try:
                closed_return.check(order, returned)
            except ApplicationError as refused:
                raise EventRejected(
                    refused.message, invalid=refused.type == rejections.INVALID_EVENT
                ) from refused
            started = await self.start_once(
                return_id,
                closed_return.WORKFLOW_NAME,
                request_sha,
                conflict,
                lambda: self._client.start_workflow(
                    ClosedOrderReturnWorkflow.run,
                    ClosedOrderReturnInput(
                        closed_order=order,
                        returned=returned,
                        local_activities=self._local_activities,
                        system_queues=self._system_queues,
                    ),
                    id=return_id,
                    task_queue=self._task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    memo={REQUEST_HASH_MEMO: request_sha},
                    static_summary=closed_return.summary(order_id, returned),
                    task_timeout=self._task_timeout,
                    rpc_timeout=RPC_TIMEOUT,
                ),
            )
            duplicate = isinstance(started, WorkflowExecutionDescription)
            return await self._outcome(order_id, returned, handle, duplicate=duplicate)

    async def closed_order_state(self, state: OrderState) -> OrderState:
        """`state` of a finished order, with its returns after close (if Closed) shown."""
        if state.status is not OrderStatus.CLOSED:
            return state
        async with self.translated(None):
            return await self._with_returns_after_close(state, wait=False)

    async def _with_returns_after_close(
        self, state: OrderState, *, wait: bool = True
    ) -> OrderState:
        """A copy of the closed order's state with every completed return after close in it.

        Listed from Temporal's visibility by workflow id. With `wait`, a return after
        close still running refuses the next one, as the open order refuses a return while
        another is being applied."""
        order = state.model_copy(deep=True)
        query = (
            f"WorkflowType = '{closed_return.WORKFLOW_NAME}' AND WorkflowId STARTS_WITH "
            f"'{quotable(closed_return.order_ids_prefix(state.order_id))}'"
        )
        results: list[ClosedOrderReturnResult] = []
        async for execution in self._client.list_workflows(query, rpc_timeout=RPC_TIMEOUT):
            if execution.status == WorkflowExecutionStatus.RUNNING:
                if not wait:
                    continue
                raise EventRejected(
                    f"another return for order {state.order_id} is being applied", invalid=False
                )
            if execution.status != WorkflowExecutionStatus.COMPLETED:
                continue  # refused (before any step) or stopped by hand: nothing to count
            one = self._client.get_workflow_handle_for(ClosedOrderReturnWorkflow.run, execution.id)
            results.append(await one.result(rpc_timeout=RPC_TIMEOUT))
        for result in sorted(results, key=lambda r: r.returned.received_at):
            closed_return.fold(order, result)
        return order

    async def _outcome(
        self,
        order_id: str,
        returned: ReturnReceived,
        handle: WorkflowHandle[ClosedOrderReturnWorkflow, ClosedOrderReturnResult],
        *,
        duplicate: bool,
    ) -> EventAck:
        try:
            async with asyncio.timeout(RETURN_WAIT.total_seconds()):
                result = await handle.result()
        except TimeoutError as error:
            raise EventStillApplying(
                f"return {returned.return_id} of closed order {order_id} has started but not "
                f"finished within {RETURN_WAIT.total_seconds():g} s; it will be applied: see "
                f"/orders/{order_id}",
                order_id=order_id,
            ) from error
        except WorkflowFailureError as error:
            failure = business_failure(error)
            if failure is not None and failure.type in (
                rejections.EVENT_NOT_ALLOWED,
                rejections.INVALID_EVENT,
            ):
                raise EventRejected(
                    failure.message, invalid=failure.type == rejections.INVALID_EVENT
                ) from error
            raise EventRejected(
                f"return {returned.return_id} did not complete: {error.cause}", invalid=False
            ) from error
        what = "already recorded" if duplicate else "recorded after close"
        return EventAck(
            order_id=order_id,
            status=OrderStatus.CLOSED,
            duplicate=duplicate,
            message=f"return {returned.return_id} {what}: {result.outcome}",
        )

"""Returns after an order closed: one `ClosedOrderReturn` workflow per return
(`o2c_workflows/closed_return.py`), started at most once and waited for.

`POST /orders/{order_id}/returns` on a closed order lands here (`OrderService.send`):
the return is checked against the closed order's final state with its earlier
returns after close folded in, exactly as the open order checks it, so an invalid
return is refused with the same reason and nothing starts.

They are applied one at a time, as the open order applies them: the n-th return
after close runs under `closed-return/<order>/<n>`, the first number not taken.
Two returns sent in the same instant both compute the same id and only one
starts; the other is refused as "being applied" (or is the same return, a
duplicate), as is one sent while an earlier one still runs.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from o2c_service.outcomes import (
    REQUEST_HASH_MEMO,
    RPC_TIMEOUT,
    EventRejected,
    EventStillApplying,
    TemporalCalls,
    business_failure,
    order_refusal,
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


@dataclass(frozen=True)
class _Listed:
    """One return after close, as its workflow describes it."""

    workflow_id: str
    return_id: str
    status: WorkflowExecutionStatus | None


class ClosedReturns(TemporalCalls):
    async def return_after_close(self, state: OrderState, returned: ReturnReceived) -> EventAck:
        """Apply a return to the closed order `state` (its final state), and wait for it.

        The same return again (a retried POST) finds the first and answers with its
        outcome as a duplicate; the same return id with other lines is a conflict. A
        return the order would refuse is `EventRejected` with the open order's reason,
        and nothing starts; so is one sent while another is being applied.
        """
        order_id = state.order_id
        # Who sent it is no part of the return: support resending it is the same return.
        request_sha = hashlib.sha256(
            returned.model_dump_json(exclude={"actor"}).encode()
        ).hexdigest()
        conflict = (
            f"return {returned.return_id} of order {order_id} was already recorded with other "
            "lines; send a new return_id for a new return"
        )
        busy = EventRejected(
            f"another return for order {order_id} is being applied; send this one again "
            "when it has finished",
            invalid=False,
        )
        async with self.translated(None):
            listed = await self._listed(order_id)
            for earlier in listed:
                if earlier.return_id == returned.return_id:
                    return await self._duplicate(
                        order_id, returned, earlier.workflow_id, request_sha, conflict
                    )
            if any(e.status == WorkflowExecutionStatus.RUNNING for e in listed):
                raise busy
            order = await self._folded(state, listed)
            try:
                closed_return.check(order, returned)
            except ApplicationError as refused:
                raise EventRejected(
                    refused.message, invalid=refused.type == rejections.INVALID_EVENT
                ) from refused
            workflow_id = closed_return.workflow_id(order_id, len(listed) + 1)
            try:
                handle = await self._client.start_workflow(
                    ClosedOrderReturnWorkflow.run,
                    ClosedOrderReturnInput(
                        closed_order=order,
                        returned=returned,
                        local_activities=self._local_activities,
                        system_queues=self._system_queues,
                    ),
                    id=workflow_id,
                    task_queue=self._task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    memo={
                        REQUEST_HASH_MEMO: request_sha,
                        closed_return.RETURN_ID_MEMO: returned.return_id,
                    },
                    static_summary=closed_return.summary(order_id, returned),
                    task_timeout=self._task_timeout,
                    rpc_timeout=RPC_TIMEOUT,
                )
            except WorkflowAlreadyStartedError:
                # Another request took this number first.
                taken = await self._client.get_workflow_handle(workflow_id).describe(
                    rpc_timeout=RPC_TIMEOUT
                )
                if (await taken.memo()).get(closed_return.RETURN_ID_MEMO) != returned.return_id:
                    raise busy from None
                return await self._duplicate(order_id, returned, workflow_id, request_sha, conflict)
            return await self._outcome(order_id, returned, handle, duplicate=False)

    async def closed_order_state(self, state: OrderState) -> OrderState:
        """`state` of a finished order, with its returns after close (if Closed) shown."""
        if state.status is not OrderStatus.CLOSED:
            return state
        async with self.translated(None):
            return await self._folded(state, await self._listed(state.order_id))

    async def _duplicate(
        self, order_id: str, returned: ReturnReceived, workflow_id: str, sha: str, conflict: str
    ) -> EventAck:
        """The outcome of the return already under `workflow_id`, if it is this request."""
        handle = self._client.get_workflow_handle_for(ClosedOrderReturnWorkflow.run, workflow_id)
        found = await handle.describe(rpc_timeout=RPC_TIMEOUT)
        await same_request(found, closed_return.WORKFLOW_NAME, sha, conflict)
        return await self._outcome(order_id, returned, handle, duplicate=True)

    async def _listed(self, order_id: str) -> list[_Listed]:
        """Every return after close of `order_id`, in order: `closed-return/<order>/1`,
        `/2`, ... described one by one up to the first number not taken (a describe
        reads the workflow itself, where a visibility list may trail a start or close)."""
        listed: list[_Listed] = []
        while True:
            workflow_id = closed_return.workflow_id(order_id, len(listed) + 1)
            try:
                found = await self._client.get_workflow_handle(workflow_id).describe(
                    rpc_timeout=RPC_TIMEOUT
                )
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:
                    return listed
                raise
            return_id = (await found.memo()).get(closed_return.RETURN_ID_MEMO)
            listed.append(_Listed(workflow_id, str(return_id), found.status))

    async def _folded(self, state: OrderState, listed: list[_Listed]) -> OrderState:
        """A copy of the closed order's state with every completed return after close in it
        (one refused before any step, or stopped by hand, changed nothing)."""
        order = state.model_copy(deep=True)
        results: list[ClosedOrderReturnResult] = []
        for execution in listed:
            if execution.status == WorkflowExecutionStatus.COMPLETED:
                one = self._client.get_workflow_handle_for(
                    ClosedOrderReturnWorkflow.run, execution.workflow_id
                )
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
            if (refused := order_refusal(business_failure(error))) is not None:
                raise refused from error
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

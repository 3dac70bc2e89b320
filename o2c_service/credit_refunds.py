"""Paying customer credit back: one `CreditRefund` workflow per refund id
(`o2c_workflows/credit_refund.py`), started at most once and waited for.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

from temporalio.client import (
    WorkflowExecutionDescription,
    WorkflowFailureError,
)
from temporalio.common import (
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError

from o2c_service.outcomes import (
    REQUEST_HASH_MEMO,
    RPC_TIMEOUT,
    EventRejected,
    TemporalCalls,
    TemporalUnavailable,
)
from o2c_workflows import credit_refund
from o2c_workflows.credit_refund import (
    CreditRefundInput,
    CreditRefundRequest,
    CreditRefundResult,
    CreditRefundWorkflow,
)

REFUND_WAIT = timedelta(seconds=30)
"""How long `refund_credit` waits for its workflow's outcome before answering 503."""


class CreditRefunds(TemporalCalls):
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
            started = await self.start_once(
                refund_id,
                credit_refund.WORKFLOW_NAME,
                request_sha,
                f"refund {request.refund_id} already exists for another request; "
                "send a new refund_id for a new refund",
                lambda: self._client.start_workflow(
                    CreditRefundWorkflow.run,
                    CreditRefundInput(
                        request=request,
                        local_activities=self._local_activities,
                        system_queues=self._system_queues,
                    ),
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
                        cause.message,
                        invalid=cause.type in credit_refund.INVALID_REFUND,
                        code=cause.type or None,
                    ) from error
                raise EventRejected(
                    f"refund {request.refund_id} did not complete: {cause}", invalid=False
                ) from error
            if not result.refunded:
                code = result.refusal_code or "refused"
                raise EventRejected(
                    f"{code}: {result.refusal}",
                    invalid=code in credit_refund.INVALID_REFUND,
                    code=code,
                )
            return result

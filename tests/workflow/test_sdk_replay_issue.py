"""A history the server wrote that the SDK core cannot replay, kept so that the day an
upgrade replays it is noticed (this test then fails: remove the xfail here and on
`test_the_server_restarted_mid_batch_and_every_order_closes`).

`tests/sdk_histories/update-accepted-after-activity-scheduled.json` is an order of the
server-restart resilience test (tests/integration/test_resilience.py, remote mode): in
the workflow task that followed the restart, the slow reservation's result (event 27)
and a `confirm_shipment` Update (sequencing event 28) arrived together, and the server
recorded the task's outcome as `ActivityTaskScheduled` (31, `logistics.request_shipment`)
then `WorkflowExecutionUpdateAccepted` (32). The worker that ran it took the order on
to Closed; any replay, by a new worker or for a query of the closed order, applies the
Update first, as the Python SDK always orders an activation's jobs, expects the
acceptance before the schedule and fails: "[TMPRL1100] Nondeterminism error: Update
machine does not handle this event: HistoryEvent(id: 31, ActivityTaskScheduled)".
Nothing in the workflow's code orders these two (docs/operations.md, "An order that
cannot be replayed").
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from tests.support.codec import TEST_CONVERTER
from tests.workflow.test_replay import replay

HISTORY = (
    Path(__file__).parents[1] / "sdk_histories" / "update-accepted-after-activity-scheduled.json"
)
ORDER_ID = "resilience:SO-a2a2bfcd-06"


@pytest.mark.xfail(
    strict=True,
    reason="temporalio 1.35 / server 1.32: the update machine cannot replay an acceptance "
    "recorded after a command of the same workflow task",
)
async def test_an_update_accepted_after_an_activity_scheduled_in_one_task_replays() -> None:
    history = WorkflowHistory.from_json(ORDER_ID, HISTORY.read_text())

    result = await replay(history, TEST_CONVERTER)

    assert result.replay_failure is None, result.replay_failure

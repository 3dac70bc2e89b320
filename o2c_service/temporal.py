"""One way to build a Temporal client and a worker, shared by every process and test."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.order_activities import OrderActivities
from o2c_service.codec.converter import data_converter
from o2c_service.settings import Settings
from o2c_workflows.credit_refund import CreditRefundWorkflow
from o2c_workflows.order.workflow import OrderWorkflow


async def connect(settings: Settings, *, address: str | None = None, lazy: bool = False) -> Client:
    """A client speaking pydantic, so models cross Temporal exactly as they validate, and
    encrypting every payload with the codec keys of `settings` (docs/security.md).

    `address` overrides O2C_TEMPORAL_ADDRESS. `lazy` defers the connection to the first
    call: the API starts (and answers 503) while Temporal is still down.
    """
    return await Client.connect(
        address or settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings.codec()),
        lazy=lazy,
    )


PROJECT_MODULES = ("o2c_workflows", "o2c_domain", "activities", "adapters")
"""The project's packages workflow code imports: deterministic code, no state at import."""


def workflow_runner(sandbox: str) -> SandboxedWorkflowRunner:
    """The sandbox with the project's modules passed through (`passthrough`), or the SDK's
    default, which imports them afresh for every workflow started or replayed (`strict`).

    Passed through, a module is imported once per worker: profiled, the fresh imports
    were the largest cost of a workflow start. Workflow code is still checked: the
    sandbox's restrictions apply to it, and the replay tests run it under `strict`."""
    restrictions = SandboxRestrictions.default
    if sandbox == "passthrough":
        restrictions = restrictions.with_passthrough_modules(*PROJECT_MODULES)
    return SandboxedWorkflowRunner(restrictions=restrictions)


def build_worker(
    client: Client,
    task_queue: str,
    activities: OrderActivities,
    settings: Settings | None = None,
) -> Worker:
    """The order worker, sized by `settings` (the O2C_WORKER_* variables).

    Workflow task slots are bounded by the CPU count: a worker restarted with many
    orders in flight replays each from its history, and replays share one GIL. With
    few slots each replay finishes well within its task timeout while the rest wait
    on the server (no timeout runs there); with the SDK's 100 they all crawl, overrun
    the timeout and are retried with backoff.
    """
    settings = settings or Settings()
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[OrderWorkflow, CreditRefundWorkflow],
        workflow_runner=workflow_runner(settings.worker_workflow_sandbox),
        activities=activities.all(),
        max_concurrent_workflow_tasks=settings.workflow_task_slots(),
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(
            maximum=settings.workflow_task_pollers()
        ),
        max_cached_workflows=settings.max_cached_workflows(),
        sticky_queue_schedule_to_start_timeout=timedelta(
            seconds=settings.worker_sticky_queue_timeout
        ),
        max_concurrent_activities=settings.worker_activity_slots,
        graceful_shutdown_timeout=timedelta(seconds=5),
    )

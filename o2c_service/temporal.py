"""One way to build a Temporal client and the workers, shared by every process and test.

A worker process serves the order task queue (`orders`: the workflows and every
activity, local or not) and each system's queue beside it (`<task queue>.<system>`:
that system's activities only, at its rate limit and concurrency), one SDK `Worker`
per queue; `o2c worker --systems` picks which (docs/architecture.md, "Task queues").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import NoReturn

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.order_activities import OrderActivities, of_system
from adapters.http.pacing import paced_rate
from o2c_domain.systems import System
from o2c_service.codec.converter import data_converter
from o2c_service.observability.tracing import Tracing
from o2c_service.queues import ORDERS, SERVED, Served
from o2c_service.settings import Settings
from o2c_workflows.calls import system_queue
from o2c_workflows.closed_return import ClosedOrderReturnWorkflow
from o2c_workflows.credit_refund import CreditRefundWorkflow
from o2c_workflows.order.workflow import OrderWorkflow


async def connect(
    settings: Settings,
    *,
    address: str | None = None,
    lazy: bool = False,
    runtime: Runtime | None = None,
    tracing: Tracing | None = None,
) -> Client:
    """A client speaking pydantic, so models cross Temporal exactly as they validate, and
    encrypting every payload with the codec keys of `settings` (docs/security.md).

    `address` overrides O2C_TEMPORAL_ADDRESS. `lazy` defers the connection to the first
    call: the API starts (and answers 503) while Temporal is still down. `runtime`: where
    the SDK's metrics and core logs go (`observability.runtime`; None: the SDK's default).
    `tracing`: spans for the client's calls and for every worker built on it.
    """
    return await Client.connect(
        address or settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings.codec()),
        lazy=lazy,
        runtime=runtime,
        interceptors=[tracing.interceptor()] if tracing is not None else [],
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
    """The order worker, sized by `settings` (the O2C_WORKER_* variables): the workflows
    and every activity, as local activities run here and orders started without system
    queues schedule their normal ones here too.

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
        workflows=[OrderWorkflow, CreditRefundWorkflow, ClosedOrderReturnWorkflow],
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


def build_system_worker(
    client: Client,
    task_queue: str,
    activities: OrderActivities,
    system: System,
    settings: Settings | None = None,
) -> Worker:
    """The worker of one system's queue beside the order task queue `task_queue`: only that
    system's activities, with its rate limit (enforced by the server, across every worker
    of the queue, at the rate each process's HTTP client paces its calls to: `paced_rate`)
    and its concurrency (O2C_<SYSTEM>_RATE_LIMIT, O2C_<SYSTEM>_CONCURRENCY)."""
    limits = (settings or Settings()).system_limits(system)
    rate = paced_rate(limits.rate_limit) if limits.rate_limit else None
    return Worker(
        client,
        task_queue=system_queue(task_queue, system),
        activities=of_system(activities.all(), system),
        max_concurrent_activities=limits.concurrency,
        max_task_queue_activities_per_second=rate,
        graceful_shutdown_timeout=timedelta(seconds=5),
    )


def build_workers(
    client: Client,
    task_queue: str,
    activities: OrderActivities,
    settings: Settings | None = None,
    served: Sequence[Served] = SERVED,
) -> list[Worker]:
    """One worker per queue in `served`: the order worker (`build_worker`) for `orders`,
    a system's worker (`build_system_worker`) for each system."""
    settings = settings or Settings()
    return [
        build_worker(client, task_queue, activities, settings)
        if queue == ORDERS
        else build_system_worker(client, task_queue, activities, queue, settings)
        for queue in served
    ]


@contextlib.asynccontextmanager
async def running(workers: Sequence[Worker]) -> AsyncIterator[Sequence[Worker]]:
    """Run `workers` for the block: all polling when it starts, all shut down together
    (each finishing its tasks in flight, up to its graceful timeout) when it ends."""
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        # Called first on the way out: at once rather than one worker after the other.
        stack.push_async_callback(_shut_down, workers)
        yield workers


async def _shut_down(workers: Sequence[Worker]) -> None:
    await asyncio.gather(*(worker.shutdown() for worker in workers))


def exit_at_once() -> NoReturn:
    """End a short-lived process that used a Temporal client, once it has said everything.

    The SDK core's threads can race the interpreter's finalization: an intermittent
    "PyGILState_Release" abort (SIGABRT) after the work is done (temporalio/sdk-python#300).
    Leaving without finalizing skips that race."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

"""One way to build a Temporal client and a worker, shared by every process and test."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities.order_activities import OrderActivities
from o2c_workflows.credit_refund import CreditRefundWorkflow
from o2c_workflows.order.workflow import OrderWorkflow


async def connect(address: str, namespace: str, *, lazy: bool = False) -> Client:
    """A client speaking pydantic, so models cross Temporal exactly as they validate.

    `lazy` defers the connection to the first call: the API starts (and answers
    503) while Temporal is still down.
    """
    return await Client.connect(
        address, namespace=namespace, data_converter=pydantic_data_converter, lazy=lazy
    )


def build_worker(client: Client, task_queue: str, activities: OrderActivities) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[OrderWorkflow, CreditRefundWorkflow],
        activities=activities.all(),
        graceful_shutdown_timeout=timedelta(seconds=5),
    )

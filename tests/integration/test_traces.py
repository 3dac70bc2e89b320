"""One order, one trace: its create request, the workflow start, the workflow run and every
call booking makes, across the API, Temporal and the worker (docs/operations.md, "Traces").

The worker and the API run as `o2c dev` runs them, traced into memory instead of to a
collector; CRM's calls are local activities and the others normal ones, on their
systems' task queues, so the trace is seen to cross both; and with CRM over HTTP, in the
sandbox, its call is a span of the activity that made it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.testing import WorkflowEnvironment

from o2c_service.dev_remote import sandbox_serving
from o2c_service.observability.tracing import Tracing
from o2c_service.settings import Settings
from tests.integration.test_end_to_end import demo_order
from tests.support.history import until
from tests.support.observed import observed_stack
from tests.support.stack import Stack, free_ports

BOOKING_CALLS = (
    "crm.validate_customer",
    "billing.ensure_account",
    "billing.open_balance",
    "logistics.reserve_stock",
    "logistics.request_shipment",
)


@dataclass
class Traced:
    stack: Stack
    spans: InMemorySpanExporter

    def runs(self, order_id: str) -> list[ReadableSpan]:
        """The spans of the order's workflow runs (one, unless it continued as new)."""
        return [
            span
            for span in self.spans.get_finished_spans()
            if span.name == "RunWorkflow:Order"
            and (span.attributes or {}).get("temporalWorkflowID") == order_id
        ]

    def trace_of(self, order_id: str) -> list[ReadableSpan]:
        """Every span of the trace the order's workflow run belongs to."""
        [run] = self.runs(order_id)
        assert run.context is not None
        trace_id = run.context.trace_id
        return [
            span
            for span in self.spans.get_finished_spans()
            if span.context is not None and span.context.trace_id == trace_id
        ]


@pytest_asyncio.fixture(scope="module")
async def traced(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Traced]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    async with observed_stack(
        dev_env,
        tmp_path_factory.mktemp("traces"),
        tracing=Tracing(provider),
        local_activities=["crm"],
    ) as stack:
        yield Traced(stack, spans)
    provider.shutdown()


async def create(stack: Stack) -> str:
    created = await stack.http.post("/orders", json=demo_order())
    assert (created.status_code, created.json()["status"]) == (201, "Booked"), created.text
    order_id: str = created.json()["order_id"]
    return order_id


async def test_an_orders_create_request_workflow_and_calls_are_one_trace(
    traced: Traced,
) -> None:
    order_id = await create(traced.stack)
    expected = {
        "POST /orders",
        "StartUpdateWithStartWorkflow:Order",
        "RunWorkflow:Order",
        *(f"{side}Activity:{call}" for call in BOOKING_CALLS for side in ("Start", "Run")),
    }

    async def all_ended() -> bool:  # the request's span ends once its answer is sent
        if not traced.runs(order_id):
            return False
        return expected <= {span.name for span in traced.trace_of(order_id)}

    await until(all_ended, "every span of the order's booking ended")
    trace = traced.trace_of(order_id)
    by_id = {span.context.span_id: span for span in trace if span.context is not None}
    [root] = [span for span in trace if span.parent is None]
    assert (root.name, root.kind) == ("POST /orders", SpanKind.SERVER)
    # Every other span hangs, through its parents, from the request.
    for span in trace:
        if span.parent is not None:
            assert span.parent.span_id in by_id, f"{span.name}'s parent is outside the trace"
    start = next(span for span in trace if span.name == "StartUpdateWithStartWorkflow:Order")
    assert start.parent is not None and by_id[start.parent.span_id] is root
    for call in BOOKING_CALLS:
        run = next(span for span in trace if span.name == f"RunActivity:{call}")
        assert run.parent is not None
        assert by_id[run.parent.span_id].name == f"StartActivity:{call}"
        assert (run.attributes or {}).get("temporalWorkflowID") == order_id


async def test_each_order_is_a_trace_of_its_own_and_probes_make_none(traced: Traced) -> None:
    first, second = await create(traced.stack), await create(traced.stack)
    for probe in ("/healthz", "/metrics"):
        assert (await traced.stack.http.get(probe)).status_code == 200

    async def both_run() -> bool:
        return all(traced.runs(order_id) for order_id in (first, second))

    await until(both_run, "both orders' workflow runs traced")
    assert {span.context.trace_id for span in traced.trace_of(first) if span.context}.isdisjoint(
        {span.context.trace_id for span in traced.trace_of(second) if span.context}
    )
    names = {span.name for span in traced.spans.get_finished_spans()}
    assert not {"GET /healthz", "GET /metrics"} & names


async def test_a_call_to_a_remote_system_is_a_span_of_the_activity_that_made_it(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracing = Tracing(provider)
    # CRM over HTTP, in the sandbox, as `o2c dev --remote` serves it.
    sandbox = Settings(sandbox_port=free_ports(4), database_url=f"sqlite:///{tmp_path / 'o2c.db'}")
    tracing.instrument_http_clients()  # as `o2c worker` does, for the whole process
    try:
        async with (
            sandbox_serving(sandbox),
            observed_stack(
                dev_env, tmp_path, tracing=tracing, crm_url=sandbox.sandbox_urls()["crm"]
            ) as stack,
        ):
            order_id = await create(stack)
    finally:
        HTTPXClientInstrumentor().uninstrument()
        provider.shutdown()
    by_id = {span.context.span_id: span for span in spans.get_finished_spans() if span.context}
    [validate] = [
        span
        for span in spans.get_finished_spans()
        if span.name == "RunActivity:crm.validate_customer"
        and (span.attributes or {}).get("temporalWorkflowID") == order_id
    ]
    calls = [
        span
        for span in spans.get_finished_spans()
        if span.kind is SpanKind.CLIENT and span.parent is not None
        and by_id.get(span.parent.span_id) is validate
    ]  # fmt: skip
    assert [call.name for call in calls] == ["GET"]
    called = calls[0].attributes or {}
    # The older semantic conventions name it http.url, the stable ones url.full.
    url = called.get("url.full", called.get("http.url"))
    assert url == f"{sandbox.sandbox_urls()['crm']}/customers/CUST-ACME"

"""The Temporal Web UI shows an order the way engineers look for it, in a real browser.

A dev server of its own with the UI on, the real worker on the local adapters (a
tmp SQLite file), one order started through `OrderService.create` and booked;
payloads are encrypted with the test keys, so the UI is given a codec endpoint as
`o2c dev` gives it one: the codec server alone (`create_codec_app`) on a free port,
with a viewer key in the endpoint's path. Then headless Chromium opens what an
engineer would open:

- the workflow list filtered with `OrderStatus = "Booked"` lists the order, the
  same list filtered with `OrderStatus = "Closed"` does not;
- the order's page (the `temporal_ui` link the API hands out), tab "User
  Metadata", shows the static summary and the current details rendered from
  Markdown (`**Booked**` in bold, "Lines shipped: 0 of 2").

How the browser is driven: tests/support/browser.py. Locators use what an engineer
sees (link and tab names, text); the only UI internals relied on are the ids of the
Markdown iframes (`user-metadata-summary`, `user-metadata-current-details`).
tests/integration/test_temporal_ui_codec.py checks the same page under `o2c dev`
itself, decrypted and not.

Screenshots of every page (also when an assertion fails) are saved in the
pytest tmp dir, under `temporal-ui-screenshots*`.

Skipped, with the reason, when /usr/bin/chromium or `playwright` is missing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from adapters.local import open_local_adapters
from o2c_service.access.roles import Role
from o2c_service.codec.server import create_codec_app
from o2c_service.orders import OrderService
from o2c_service.runners import local_activities, serve_app
from o2c_service.settings import Settings
from o2c_service.temporal import build_worker
from o2c_workflows import presentation
from o2c_workflows.models import OrderRequest, OrderStatus
from o2c_workflows.order.workflow import OrderWorkflow
from o2c_workflows.search_attributes import ALL
from tests.support.api_keys import make_key
from tests.support.browser import UI_TIMEOUT_MS, Browser, Page, chromium, expect, new_page
from tests.support.codec import TEST_CONVERTER, TEST_KEYS, keys_setting
from tests.support.history import DEFAULT_TIMEOUT, wait_for_status
from tests.support.stack import free_port
from tests.support.temporal_env import binary

SEARCH_POLL_INTERVAL = 0.05


@dataclass(frozen=True)
class BookedOrder:
    order: OrderRequest
    ui_url: str
    namespace: str

    @property
    def order_id(self) -> str:
        return self.order.order_id

    def list_url(self, query: str) -> str:
        return f"{self.ui_url}/namespaces/{self.namespace}/workflows?query={quote(query)}"

    @property
    def order_link(self) -> str:
        """The order's page as the API links it (`links.temporal_ui`)."""
        settings = Settings(temporal_ui_url=self.ui_url, temporal_namespace=self.namespace)
        return settings.workflow_ui_link(self.order_id)


def acme_order() -> OrderRequest:
    return OrderRequest.model_validate(
        {
            "source_system": "webshop",
            "source_order_id": f"SO-UI-{uuid.uuid4().hex[:8]}",
            "customer_id": "CUST-ACME",
            "currency": "EUR",
            "lines": [
                {"sku": "SKU-WIDGET", "quantity": 4, "unit_price": "12.50"},
                {"sku": "SKU-GADGET", "quantity": 1, "unit_price": "99.99"},
            ],
            "payment_terms": {"kind": "net", "net_days": 30},
        }
    )


async def until_found_by(client: Client, query: str, workflow_id: str) -> None:
    """Wait until Temporal's search (what the UI list shows) finds the workflow."""
    deadline = asyncio.get_running_loop().time() + DEFAULT_TIMEOUT
    while True:
        if any([execution.id == workflow_id async for execution in client.list_workflows(query)]):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{workflow_id} not found by {query!r} after {DEFAULT_TIMEOUT}s")
        await asyncio.sleep(SEARCH_POLL_INTERVAL)


async def until_serving(url: str) -> None:
    """Wait until the UI answers (the dev server opens it after the frontend)."""
    deadline = asyncio.get_running_loop().time() + DEFAULT_TIMEOUT
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the Temporal UI at {url} did not answer")
            await asyncio.sleep(SEARCH_POLL_INTERVAL)


@asynccontextmanager
async def codec_server(data_dir: Path, ui_url: str) -> AsyncIterator[str]:
    """The codec server alone on a free port, decrypting with the test keys for the UI
    at `ui_url`; yields the UI's codec endpoint, a viewer key in its path."""
    settings = Settings(
        data_dir=data_dir,
        api_database_url=f"sqlite:///{data_dir / 'api.db'}",
        codec_keys=SecretStr(keys_setting(TEST_KEYS)),
        temporal_ui_url=ui_url,
    )
    viewer = make_key(settings, Role.VIEWER, name="temporal-ui")
    port = free_port()
    stop, listening = asyncio.Event(), asyncio.Event()
    serving = asyncio.create_task(
        serve_app(create_codec_app(settings), "127.0.0.1", port, stop, listening)
    )
    try:
        await asyncio.wait_for(listening.wait(), DEFAULT_TIMEOUT)
        yield f"http://127.0.0.1:{port}/codec/key/{viewer}"
    finally:
        stop.set()
        await serving


@pytest_asyncio.fixture(scope="module")
async def booked(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BookedOrder]:
    """One booked order on a dev server with its UI on, decrypting through a codec
    server; the worker keeps running."""
    data_dir = tmp_path_factory.mktemp("o2c-ui")
    ui_port = free_port()
    ui_url = f"http://127.0.0.1:{ui_port}"
    async with codec_server(data_dir, ui_url) as ui_codec:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=binary("temporal"),
            dev_server_startup_timeout=timedelta(seconds=60),
            data_converter=TEST_CONVERTER,
            search_attributes=ALL,
            dev_server_log_level="error",
            ip="127.0.0.1",
            port=free_port(),
            ui=True,
            ui_port=ui_port,
            dev_server_extra_args=["--ui-codec-endpoint", ui_codec],
        )
        adapters = open_local_adapters(f"sqlite:///{data_dir / 'o2c.db'}")
        task_queue = f"orders-{uuid.uuid4()}"
        try:
            async with env, build_worker(env.client, task_queue, local_activities(adapters)):
                order = acme_order()
                created = await OrderService(env.client, task_queue).create(order)
                assert created.created, created
                handle = env.client.get_workflow_handle_for(OrderWorkflow.run, order.order_id)
                await wait_for_status(handle, OrderStatus.BOOKED)
                await until_found_by(env.client, 'OrderStatus = "Booked"', order.order_id)
                await until_serving(ui_url)
                yield BookedOrder(order=order, ui_url=ui_url, namespace=env.client.namespace)
        finally:
            adapters.database.dispose()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("temporal-ui-screenshots")


@pytest_asyncio.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest_asyncio.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    async with new_page(browser) as opened:
        yield opened


async def test_the_workflow_list_finds_the_order_by_its_status(
    booked: BookedOrder, page: Page, screenshots: Path
) -> None:
    await page.goto(booked.list_url('OrderStatus = "Booked"'))
    try:
        filter_chip = page.get_by_text('OrderStatus = "Booked"')
        await expect(filter_chip).to_be_visible(timeout=UI_TIMEOUT_MS)
        row_link = page.get_by_role("link", name=booked.order_id, exact=True)
        await expect(row_link).to_be_visible(timeout=UI_TIMEOUT_MS)
    finally:
        await page.screenshot(path=screenshots / "list-booked.png")

    await page.goto(booked.list_url('OrderStatus = "Closed"'))
    try:
        filter_chip = page.get_by_text('OrderStatus = "Closed"')
        await expect(filter_chip).to_be_visible(timeout=UI_TIMEOUT_MS)
        empty = page.get_by_text("No Workflows Found")
        await expect(empty).to_be_visible(timeout=UI_TIMEOUT_MS)
        await expect(page.get_by_text(booked.order_id)).to_have_count(0, timeout=UI_TIMEOUT_MS)
    finally:
        await page.screenshot(path=screenshots / "list-closed.png")


async def test_the_order_page_shows_its_summary_and_current_details(
    booked: BookedOrder, page: Page, screenshots: Path
) -> None:
    await page.goto(booked.order_link)
    try:
        heading = page.get_by_role("heading", name=booked.order_id)
        await expect(heading).to_be_visible(timeout=UI_TIMEOUT_MS)
        await page.get_by_role("tab", name="User Metadata").click()

        summary = page.locator("iframe#user-metadata-summary").content_frame
        one_line = f"Order {booked.order_id} for CUST-ACME: EUR 149.99"
        assert presentation.static_summary(booked.order) == one_line
        await expect(summary.get_by_text(one_line)).to_be_visible(timeout=UI_TIMEOUT_MS)

        details = page.locator("iframe#user-metadata-current-details").content_frame
        # "**Booked**, total ..." is rendered: Booked in bold, no Markdown left over.
        bold_status = details.locator("strong", has_text="Booked")
        await expect(bold_status).to_be_visible(timeout=UI_TIMEOUT_MS)
        # Drawn as a list item, not as literal "- ..." text.
        lines_shipped = details.locator("li", has_text="Lines shipped: 0 of 2")
        await expect(lines_shipped).to_be_visible(timeout=UI_TIMEOUT_MS)
        shipment = details.get_by_text("awaiting confirmation")
        await expect(shipment).to_be_visible(timeout=UI_TIMEOUT_MS)
        await expect(details.locator("body")).not_to_contain_text("**", timeout=UI_TIMEOUT_MS)
    finally:
        await page.screenshot(path=screenshots / "order-user-metadata.png", full_page=True)

"""The support console in a real browser against the real stack (dev server, worker,
API): a support person works held orders and takes an order from Booked to Closed with
the console's forms only; a viewer reads and cannot act.

One headless Chromium for the module (tests/support/browser.py: Debian's
/usr/bin/chromium, nothing downloaded, skipped with the reason when missing), one
signed-in browser context per key. Each test makes its own customer and items
(tests/integration/test_support_flows.py's helpers), so what it finds in the queue is
its own. Pages that change as the order moves on are reloaded until they show the
change (`until_shown`), with Playwright's `expect` and its timeout.

Screenshots of every page land in `tests/artifacts/console/` (or `$O2C_ARTIFACTS`);
with `O2C_CONSOLE_DOC_IMAGES=1` the queue and the closed order are also written to
docs/images/ for the README (`scripts/console-screenshots`).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio

from o2c_service.access.roles import Role
from o2c_workflows.models import OrderStatus
from tests.integration.test_support_flows import (
    create,
    held_orders,
    new_customer,
    new_item,
    order,
    restock,
)
from tests.support.api_keys import make_key
from tests.support.browser import (
    UI_TIMEOUT_MS,
    Browser,
    BrowserContext,
    Locator,
    Page,
    chromium,
    expect,
)
from tests.support.history import DEFAULT_TIMEOUT
from tests.support.stack import Stack

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("O2C_ARTIFACTS") or REPO / "tests" / "artifacts") / "console"
DOC_IMAGES = REPO / "docs" / "images"
RELOAD_EXPECT_MS = 1_000
"""How long each look at a reloaded page waits before reloading it again."""


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{name}.png"


async def keep(page: Page, name: str, *, doc_image: str | None = None) -> None:
    """A screenshot of the whole page as a test artifact (and for the README if asked)."""
    path = screenshot_path(name)
    await page.screenshot(path=str(path), full_page=True)
    if doc_image is not None and os.environ.get("O2C_CONSOLE_DOC_IMAGES") == "1":
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        (DOC_IMAGES / doc_image).write_bytes(path.read_bytes())


async def until_shown(page: Page, locator: Locator, text: str | re.Pattern[str]) -> None:
    """Reload the page until `locator` shows `text`: the order moves on in the background."""
    deadline = asyncio.get_running_loop().time() + DEFAULT_TIMEOUT
    while True:
        try:
            await expect(locator).to_contain_text(text, timeout=RELOAD_EXPECT_MS)
            return
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await page.reload()


@pytest_asyncio.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


async def signed_in_context(browser: Browser, stack: Stack, key: str) -> BrowserContext:
    """A browser context signed in through the sign-in form with `key`."""
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id="UTC",
        base_url=stack.api_url,
    )  # fmt: skip
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = await context.new_page()
    await page.goto("/console/")
    await expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))
    await keep(page, "sign-in")
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Work queue", level=1)).to_be_visible()
    await page.close()
    return context


@pytest_asyncio.fixture(scope="module")
async def support(browser: Browser, stack: Stack) -> AsyncIterator[BrowserContext]:
    context = await signed_in_context(browser, stack, make_key(stack.settings, Role.SUPPORT))
    yield context
    await context.close()


@pytest_asyncio.fixture
async def page(support: BrowserContext) -> AsyncIterator[Page]:
    opened = await support.new_page()
    yield opened
    await opened.close()


async def booked_order(stack: Stack, quantities: tuple[int, ...] = (4, 1)) -> str:
    customer = new_customer(stack)
    skus = [new_item(stack, on_hand=100) for _ in quantities]
    lines = [
        {"sku": sku, "quantity": quantity, "unit_price": price}
        for sku, quantity, price in zip(skus, quantities, ("12.50", "99.99"), strict=False)
    ]
    body = {**order(customer, skus[0]), "lines": lines}
    order_id = await create(stack, body)
    await stack.wait_for_status(order_id, OrderStatus.BOOKED)
    return order_id


def order_url(order_id: str) -> str:
    return f"/console/orders/{order_id}"


def status_of(page: Page) -> Locator:
    return page.locator("#order-status")


async def ship(page: Page, carrier: str, tracking: str, **quantities: int) -> None:
    """Fill and send the shipment form: everything, or only the given SKUs' quantities."""
    form = page.locator("#action-ship")
    await form.get_by_label("Carrier").fill(carrier)
    await form.get_by_label("Tracking number").fill(tracking)
    if quantities:
        await form.get_by_label("Only these quantities").check()
        for label in await form.get_by_role("spinbutton").all():
            await label.fill("0")
        for sku, quantity in quantities.items():
            await form.get_by_label(re.compile(f"^{sku} ")).fill(str(quantity))
    await form.get_by_role("button", name="Record shipment").click()
    await expect(page.get_by_role("status")).to_contain_text("Record a shipment")


async def pay(page: Page, amount: str) -> None:
    form = page.locator("#action-pay")
    await form.get_by_label("Amount").fill(amount)
    await form.get_by_role("button", name="Record payment").click()


async def test_a_credit_held_order_is_found_in_the_queue_and_released_to_booked(
    page: Page, stack: Stack
) -> None:
    customer = new_customer(stack, credit_limit_minor=100_000)
    order_id = await create(stack, order(customer, new_item(stack, 100), 2, "600.00"))
    await held_orders(stack, customer, 1)

    await page.goto(f"/console/?customer={customer}")
    group = page.get_by_role("region", name=re.compile("^credit_limit_exceeded"))
    row = group.get_by_role("row").filter(has_text=order_id)
    await expect(row).to_contain_text("credit_check")
    await expect(row).to_contain_text("exceeds the credit limit 1000.00 EUR")
    await keep(page, "queue-credit-hold")

    await row.get_by_role("link", name=order_id).click()
    await expect(status_of(page)).to_have_text("OnHold")
    await page.get_by_label("Note for the timeline (optional)").fill("approved by AR")
    await page.get_by_role("button", name="Release the hold").click()
    await expect(page.get_by_role("status")).to_contain_text("Release the credit hold")
    await until_shown(page, status_of(page), "Booked")
    await expect(page.locator("#timeline")).to_contain_text("approved by AR")
    await keep(page, "order-released")


async def test_a_partial_shipment_and_a_payment_change_the_order_and_its_balances(
    page: Page, stack: Stack
) -> None:
    order_id = await booked_order(stack)
    await page.goto(order_url(order_id))
    await expect(status_of(page)).to_have_text("Booked")
    widget = (await stack.http.get(f"/orders/{order_id}")).json()["lines"][0]["sku"]

    await ship(page, "DHL", f"T-{order_id[-8:]}", **{widget: 2})
    lines = page.locator("#lines").get_by_role("row").filter(has_text=widget)
    await expect(lines).to_contain_text("2")
    invoices = page.locator("#invoices")
    await until_shown(page, invoices, "25.00 EUR")  # 2 x 12.50, invoiced for what shipped
    await expect(status_of(page)).to_have_text("Booked")  # one line is still to ship

    await pay(page, "10.00")
    await expect(page.get_by_role("status")).to_contain_text("Record a payment")
    await expect(page.locator("#order-paid")).to_have_text("10.00 EUR")
    await expect(invoices.get_by_role("row").nth(1)).to_contain_text("15.00 EUR")
    await expect(page.locator("#payments")).to_contain_text("10.00 to")
    await keep(page, "order-partly-shipped-and-paid")

    await ship(page, "DHL", f"T2-{order_id[-8:]}")
    await until_shown(page, status_of(page), "Invoiced")


async def test_a_bad_amount_is_shown_beside_the_field_and_nothing_is_paid(
    page: Page, stack: Stack
) -> None:
    order_id = await booked_order(stack, (1,))
    await page.goto(order_url(order_id))
    await pay(page, "12.345")
    amount = page.locator("#action-pay").get_by_label("Amount")
    await expect(amount).to_have_attribute("aria-invalid", "true")
    await expect(amount).to_have_value("12.345")
    error = page.locator("#pay-amount-error")
    await expect(error).to_contain_text("decimal places")
    await expect(amount).to_have_attribute("aria-describedby", re.compile("pay-amount-error"))
    await keep(page, "order-field-error")
    await page.goto(order_url(order_id))
    await expect(page.locator("#order-paid")).to_have_text("0.00 EUR")
    assert (await stack.http.get(f"/orders/{order_id}")).json()["payments"] == []


async def test_a_viewer_sees_no_actions_and_a_forged_post_is_refused(
    browser: Browser, stack: Stack
) -> None:
    order_id = await booked_order(stack, (1,))
    viewer = await signed_in_context(browser, stack, make_key(stack.settings, Role.VIEWER))
    try:
        page = await viewer.new_page()
        await page.goto(order_url(order_id))
        await expect(status_of(page)).to_have_text("Booked")
        await expect(page.get_by_role("heading", name="Actions")).to_have_count(0)
        await expect(page.get_by_role("button", name="Record payment")).to_have_count(0)
        await expect(page.get_by_role("button", name="Cancel order")).to_have_count(0)
        await keep(page, "order-viewer")
        token = await page.locator('input[name="csrf_token"]').first.input_value()
        payment: dict[str, str | float | bool] = {
            "amount": "1.00",
            "currency": "EUR",
            "payment_id": "PAY-FORGED",
        }
        for form in (payment, {**payment, "csrf_token": token}):
            forged = await page.request.post(f"{order_url(order_id)}/pay", form=form)
            assert forged.status == 403, await forged.text()
            assert "may look but not act" in await forged.text()
    finally:
        await viewer.close()
    assert (await stack.http.get(f"/orders/{order_id}")).json()["payments"] == []


async def test_three_out_of_stock_orders_are_retried_in_bulk_after_restocking(
    page: Page, stack: Stack
) -> None:
    customer, sku = new_customer(stack), new_item(stack, on_hand=0)
    order_ids = [await create(stack, order(customer, sku)) for _ in range(3)]
    await held_orders(stack, customer, 3)
    restock(stack, sku, on_hand=6)

    await page.goto(f"/console/?customer={customer}&reason=out_of_stock")
    await expect(page.locator("#queue-summary")).to_contain_text("3 orders: out_of_stock 3")
    await keep(page, "queue-out-of-stock")
    for order_id in order_ids:
        await page.get_by_label(f"Select {order_id}").check()
    await page.get_by_role("button", name="Retry…").click()
    await expect(page.get_by_role("heading", name="Retry 3 orders?")).to_be_visible()
    await keep(page, "bulk-retry-preview")
    await page.get_by_role("button", name="Retry 3 orders").click()
    await expect(page.get_by_role("heading", name="Retry: 3 of 3 done")).to_be_visible()
    for order_id in order_ids:
        await expect(page.get_by_role("row").filter(has_text=order_id)).to_contain_text("done")
    await keep(page, "bulk-retry-outcome")
    for order_id in order_ids:
        await stack.wait_for_status(order_id, OrderStatus.BOOKED)


async def test_bulk_cancel_previews_what_cancelling_undoes(page: Page, stack: Stack) -> None:
    customer, sku = new_customer(stack), new_item(stack, on_hand=100)
    order_id = await create(stack, order(customer, sku))
    await stack.wait_for_status(order_id, OrderStatus.BOOKED)
    await page.goto(f"/console/?customer={customer}&status=Booked")
    await page.get_by_label(f"Select {order_id}").check()
    await page.get_by_role("button", name="Cancel…").click()
    await expect(page.get_by_role("heading", name="Cancel 1 order?")).to_be_visible()
    await expect(page.get_by_role("row").filter(has_text=order_id)).to_contain_text(
        "release the stock reservation"
    )
    await page.get_by_role("button", name="Cancel 1 order").click()
    await expect(page.locator("#bulk-reason-error")).to_have_text("Required")
    await page.get_by_label("Reason for cancelling").fill("customer changed their mind")
    await page.get_by_role("button", name="Cancel 1 order").click()
    await expect(page.get_by_role("heading", name="Cancel: 1 of 1 done")).to_be_visible()
    await stack.wait_for_status(order_id, OrderStatus.CANCELLED)


async def test_an_order_goes_from_booked_to_closed_through_the_console_alone(
    page: Page, stack: Stack
) -> None:
    order_id = await booked_order(stack)
    await page.goto(order_url(order_id))
    await ship(page, "UPS", f"1Z-{order_id[-8:]}")
    await until_shown(page, status_of(page), "Invoiced")
    balance_cell = page.locator("#invoices tbody tr td").nth(1)
    balance = Decimal((await balance_cell.inner_text()).split()[0])
    assert balance == Decimal("149.99")
    await pay(page, str(balance))
    await until_shown(page, status_of(page), "Closed")
    await expect(page.locator("#order-paid")).to_have_text("149.99 EUR")
    await expect(page.get_by_role("heading", name="Actions")).to_be_visible()  # a return
    await keep(page, "order-closed", doc_image="console-order.png")


async def tab_to(page: Page, label: str, most: int = 80) -> None:
    """Press Tab until the field labelled `label` has the focus, as a keyboard user would."""
    target = page.get_by_label(label, exact=True)
    for _ in range(most):
        await page.keyboard.press("Tab")
        if await target.evaluate("field => field === document.activeElement"):
            return
    raise AssertionError(f"{most} presses of Tab never reached the field '{label}'")


async def test_a_shipment_is_recorded_with_the_keyboard_alone(page: Page, stack: Stack) -> None:
    order_id = await booked_order(stack, (1,))
    await page.goto(order_url(order_id))
    await expect(status_of(page)).to_have_text("Booked")

    await tab_to(page, "Carrier")
    await page.keyboard.type("UPS")
    await page.keyboard.press("Tab")
    await page.keyboard.type(f"K-{order_id[-8:]}")
    await page.keyboard.press("Enter")

    await expect(page.get_by_role("status")).to_contain_text("Record a shipment")
    await until_shown(page, status_of(page), "Invoiced")
    await expect(page.locator("#timeline")).to_contain_text(f"UPS K-{order_id[-8:]}")


async def test_the_queue_and_the_dashboard_at_a_phone_width_and_by_keyboard(
    page: Page, stack: Stack
) -> None:
    customer = new_customer(stack, credit_limit_minor=100)
    held = await create(stack, order(customer, new_item(stack, 100), 1, "50.00"))
    await create(stack, order(customer, new_item(stack, 0), 1, "0.50"))
    await held_orders(stack, customer, 2)
    await page.goto("/console/")
    await expect(page.get_by_role("heading", name="Work queue")).to_be_visible()
    await keep(page, "queue", doc_image="console-queue.png")

    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    await expect(skip).to_be_focused()
    await expect(skip).to_be_in_viewport()

    await page.goto("/console/dashboard")
    await expect(page.get_by_role("img", name="Orders by status")).to_be_visible()
    await expect(page.locator("#fallout-total")).to_contain_text("orders need a person")
    await keep(page, "dashboard")

    await page.set_viewport_size({"width": 390, "height": 844})
    for path, name in (
        ("/console/", "queue-phone"),
        ("/console/dashboard", "dashboard-phone"),
        (order_url(held), "order-phone"),
    ):
        await page.goto(path)
        await expect(page.get_by_role("heading", level=1)).to_be_visible()
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at 390px"
        await keep(page, name)


pytestmark = pytest.mark.timeout(300)

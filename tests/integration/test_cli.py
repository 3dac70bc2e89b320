"""The `o2c` command as support staff use it, against the running API."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from o2c_workflows.models import OrderStatus
from tests.integration.test_end_to_end import demo_order
from tests.support.api_keys import key_for
from tests.support.stack import Stack, free_port

O2C = [sys.executable, "-m", "o2c_service"]


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def o2c(*args: str, api_url: str) -> Run:
    """`o2c ... --api-url URL` with O2C_API_KEY set to the key made for that API, if any."""
    key = key_for(api_url)
    process = await asyncio.create_subprocess_exec(
        *O2C, *args, "--api-url", api_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"COLUMNS": "200", "PATH": ""} | ({"O2C_API_KEY": key} if key else {}),
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


async def test_support_staff_take_an_order_to_closed(stack: Stack, tmp_path: Path) -> None:
    order_file = tmp_path / "order.json"
    order_file.write_text(json.dumps(demo_order()))

    created = await o2c("orders", "create", "--file", str(order_file), api_url=stack.api_url)
    assert created.code == 0, created.err
    order_id = json.loads(order_file.read_text())["source_order_id"]
    order_id = f"webshop:{order_id}"
    assert order_id in created.out and "True" in created.out and "Booked" in created.out

    again = await o2c(
        "orders", "create", "-f", str(order_file), "-o", "json", api_url=stack.api_url
    )
    assert (again.json()["order_id"], again.json()["created"]) == (order_id, False)

    await stack.wait_for_status(order_id, OrderStatus.BOOKED)
    shipped = await o2c(
        "orders", "ship", order_id, "--carrier", "DHL", "--tracking", "JD01", "-o", "json",
        api_url=stack.api_url,
    )  # fmt: skip
    assert shipped.json()["status"] == "Shipped", shipped.err

    await stack.wait_for_status(order_id, OrderStatus.INVOICED)
    paid = await o2c(
        "orders", "pay", order_id, "--amount", "149.99", "--reference", "BANK-77",
        api_url=stack.api_url,
    )  # fmt: skip
    assert paid.code == 0, paid.err
    assert "Paid" in paid.out and "open balance 0.00" in paid.out

    await stack.wait_for_status(order_id, OrderStatus.CLOSED)
    shown = await o2c("orders", "show", order_id, api_url=stack.api_url)
    assert "Closed" in shown.out and "BANK-77" in shown.out and "JD01" in shown.out
    state = (await o2c("orders", "show", order_id, "-o", "json", api_url=stack.api_url)).json()
    assert state["payments"][0]["payment_id"] == "BANK-77"
    assert [entry["status"] for entry in state["timeline"]][-1] == "Closed"


async def test_listing_by_status(stack: Stack, tmp_path: Path) -> None:
    response = await stack.http.post("/orders", json=demo_order())
    order_id = response.json()["order_id"]
    await stack.wait_for_status(order_id, OrderStatus.BOOKED)

    deadline = asyncio.get_running_loop().time() + 30
    while True:  # search is eventually consistent: poll as a person would re-run it
        listed = await o2c("orders", "list", "--status", "Booked", "-o", "json",
                           api_url=stack.api_url)  # fmt: skip
        if order_id in [item["order_id"] for item in listed.json()["orders"]]:
            break
        assert asyncio.get_running_loop().time() < deadline, listed.out
    table = await o2c("orders", "list", "--status", "Booked", api_url=stack.api_url)
    assert order_id in table.out


def one_error_line(run: Run) -> str:
    """The message of a failed command: exactly one line on stderr, nothing on stdout."""
    assert run.out == "", run.out
    lines = run.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.err
    assert "Traceback" not in run.err and "\u256d" not in run.err  # no rich box
    return lines[0]


async def test_refusals_and_unreachable_services_exit_1_with_one_line(
    stack: Stack, tmp_path: Path
) -> None:
    unknown = await o2c("orders", "show", "webshop:missing", api_url=stack.api_url)
    assert unknown.code == 1
    assert "order webshop:missing not found" in one_error_line(unknown)

    order_file = tmp_path / "order.json"
    order = demo_order()
    order_file.write_text(json.dumps(order))
    assert (await o2c("orders", "create", "-f", str(order_file), api_url=stack.api_url)).code == 0
    order_file.write_text(json.dumps(order | {"currency": "USD"}))
    conflict = await o2c("orders", "create", "-f", str(order_file), api_url=stack.api_url)
    assert conflict.code == 1  # 409
    assert "already exists with different content" in one_error_line(conflict)

    order_file.write_text(json.dumps(demo_order() | {"currency": "EURO"}))
    invalid = await o2c("orders", "create", "--file", str(order_file), api_url=stack.api_url)
    assert invalid.code == 1  # 422
    assert "currency:" in one_error_line(invalid)

    order_file.write_text("{not json")
    broken = await o2c("orders", "create", "--file", str(order_file), api_url=stack.api_url)
    assert broken.code == 1 and "is not valid JSON" in one_error_line(broken)

    nowhere = await o2c("orders", "list", api_url=f"http://127.0.0.1:{free_port()}")
    assert nowhere.code == 1
    assert "cannot reach the o2c API" in one_error_line(nowhere)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("orders", "pay", "webshop:x", "--amount", "lots", "--reference", "R"),
         "'lots' is not an amount such as 120.50"),
        (("orders", "pay", "webshop:x", "--amount", "1e1", "--reference", "R"),
         "'1e1' is not an amount such as 120.50"),
        (("orders", "ship", "webshop:x", "--tracking", "T"), "Missing option '--carrier'"),
        (("orders", "ship-it", "webshop:x"), "No such command 'ship-it'"),
    ],
    ids=["amount-not-a-number", "amount-with-exponent", "missing-option", "unknown-command"],
)  # fmt: skip
async def test_usage_errors_exit_2_with_one_line(args: tuple[str, ...], expected: str) -> None:
    # Nothing listens at this address: a usage error is found before any call.
    usage = await o2c(*args, api_url=f"http://127.0.0.1:{free_port()}")
    assert usage.code == 2
    line = one_error_line(usage)
    assert expected in line and "--help" in line


async def test_a_bad_fault_profile_stops_the_worker_naming_the_field(tmp_path: Path) -> None:
    profile = '{"rules": [{"system": "billing", "operation": "bill", "error_rate": 1}]}'
    process = await asyncio.create_subprocess_exec(
        *O2C, "worker",
        env={"O2C_FAULTS": profile, "O2C_DATABASE_URL": f"sqlite:///{tmp_path / 'db'}",
             "PATH": ""},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await process.communicate()
    assert process.returncode == 1
    assert "rules[0].operation: unknown operation 'bill'" in err.decode()


async def test_listing_goes_on_from_the_page_token_it_prints(stack: Stack) -> None:
    for _ in range(3):
        assert (await stack.http.post("/orders", json=demo_order())).status_code == 201

    async def listing(*args: str) -> Any:
        run = await o2c("orders", "list", "--customer", "CUST-ACME", "--limit", "2", *args,
                        "-o", "json", api_url=stack.api_url)  # fmt: skip
        assert run.code == 0, run.err
        return run.json()

    deadline = asyncio.get_running_loop().time() + 30
    while (first := await listing())["total"] < 3:  # search is eventually consistent
        assert asyncio.get_running_loop().time() < deadline, first
    assert len(first["orders"]) == 2
    assert first["next_page_token"]
    second = await listing("--page-token", first["next_page_token"])
    assert second["orders"]
    assert not {o["order_id"] for o in first["orders"]} & {o["order_id"] for o in second["orders"]}

    table = await o2c("orders", "list", "--customer", "CUST-ACME", "--limit", "1",
                      api_url=stack.api_url)  # fmt: skip
    assert "1 shown of" in table.out
    assert "--page-token" in table.err


async def test_wait_returns_once_the_order_has_the_status_and_gives_up_after_the_timeout(
    stack: Stack,
) -> None:
    order_id = (await stack.http.post("/orders", json=demo_order())).json()["order_id"]
    booked = await o2c("orders", "wait", order_id, "--status", "Booked", "-o", "json",
                       api_url=stack.api_url)  # fmt: skip
    assert booked.code == 0, booked.err
    assert booked.json() == {"order_id": order_id, "status": "Booked"}
    assert (await stack.http.get(f"/orders/{order_id}")).json()["status"] == "Booked"

    started = asyncio.get_running_loop().time()
    never = await o2c("orders", "wait", order_id, "--status", "Closed", "--timeout", "1",
                      api_url=stack.api_url)  # fmt: skip
    assert never.code == 1
    assert f"order {order_id} is still Booked, not Closed, after 1 s" in one_error_line(never)
    assert asyncio.get_running_loop().time() - started < 15

    unknown = await o2c("orders", "wait", "webshop:missing", "--status", "Booked",
                        api_url=stack.api_url)  # fmt: skip
    assert unknown.code == 1 and "not found" in one_error_line(unknown)

    cancelled = await stack.http.post(f"/orders/{order_id}/cancel", json={"reason": "test"})
    assert cancelled.status_code == 200, cancelled.text
    await stack.wait_for_status(order_id, OrderStatus.CANCELLED)
    finished = await o2c("orders", "wait", order_id, "--status", "Shipped", "--timeout", "60",
                         api_url=stack.api_url)  # fmt: skip
    assert finished.code == 1
    assert f"order {order_id} is Cancelled; it will not become Shipped" in one_error_line(finished)


async def test_an_error_stays_one_line_in_a_narrow_terminal() -> None:
    process = await asyncio.create_subprocess_exec(
        *O2C, "orders", "list", "--api-url", f"http://127.0.0.1:{free_port()}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"COLUMNS": "40", "PATH": ""},
    )  # fmt: skip
    out, err = await process.communicate()
    run = Run(process.returncode or 0, out.decode(), err.decode())
    assert run.code == 1
    assert "is `o2c dev` or `o2c api` running?" in one_error_line(run)

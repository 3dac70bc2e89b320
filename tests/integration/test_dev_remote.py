"""`o2c dev --remote`: the README pasted against it, every system reached over HTTP."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from o2c_sandbox.routes import CALLS_PATH
from tests.integration.test_dev_command import STARTUP_TIMEOUT, DevProcess, dev_env, o2c_dev
from tests.integration.test_readme import check_the_orders_end_as_the_readme_says, paste_the_readme
from tests.support.resilience_processes import local_calls_recorded

CALLED = {
    "crm": {"get_customer"},
    "billing": {"ensure_account", "open_balance", "create_invoice", "apply_payment"},
    "logistics": {"reserve_stock", "request_shipment", "confirm_shipment"},
    "payments": {"record_payment"},
}
"""What the README's orders ask of each system, at the least (the sandbox's operation names)."""

SCHEDULED = {
    "crm.validate_customer",
    "billing.ensure_account",
    "billing.open_balance",
    "logistics.reserve_stock",
    "logistics.request_shipment",
    "logistics.confirm_shipment",
    "billing.create_invoice",
    "payments.record_payment",
    "billing.apply_payment",
}
"""The activities the quick start's first order runs, Entered to Closed."""


async def sandbox_calls(dev: DevProcess) -> dict[str, list[dict[str, Any]]]:
    async with httpx.AsyncClient(timeout=30) as http:
        return {
            system: (await http.get(f"{url}{CALLS_PATH}")).raise_for_status().json()
            for system, url in dev.sandbox.items()
        }


def log_line(call: dict[str, Any]) -> str:
    """How the sandbox logs `call` (the part before its duration)."""
    return f"o2c.sandbox: {call['system']} {call['method']} {call['path']} -> {call['status']} in"


async def printed_within(dev: DevProcess, wanted: list[str], seconds: float) -> list[str]:
    """Which of `wanted` it has still not printed after `seconds` (its output is read on)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        output = "".join(dev.printed)
        missing = [text for text in wanted if text not in output]
        if not missing or asyncio.get_running_loop().time() > deadline:
            return missing
        await asyncio.sleep(0.1)


async def scheduled_activities(client: Client, order_id: str) -> set[str]:
    return {
        event.activity_task_scheduled_event_attributes.activity_type.name
        async for event in client.get_workflow_handle(order_id).fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }


async def test_the_readme_runs_with_every_system_served_by_the_sandbox(tmp_path: Path) -> None:
    async with o2c_dev(tmp_path / "o2c", keep_stderr=True, remote=True) as dev:
        for system, url in dev.sandbox.items():
            assert f"{system:<12} {url}\n" in dev.banner
        assert "(logger o2c.sandbox) and listed at <url>/_sandbox/calls" in dev.banner

        walked = await paste_the_readme(dev, tmp_path)
        await check_the_orders_end_as_the_readme_says(dev, walked)

        calls = await sandbox_calls(dev)
        for system, operations in CALLED.items():
            assert operations - {call["operation"] for call in calls[system]} == set(), system
        # The quick start's invoice was raised in the sandbox, under the order's key.
        assert any(
            call["operation"] == "create_invoice"
            and call["idempotency_key"].startswith("webshop:SO-1001:")
            for call in calls["billing"]
        )
        every_call = [log_line(call) for listed in calls.values() for call in listed]
        assert await printed_within(dev, every_call, 10) == []
        # Logged once, by the sandbox: not also in the access log, as if the API had answered.
        output = "".join(dev.printed)
        assert '"POST /orders HTTP/1.1" 201' in output
        assert '"GET /customers/CUST-ACME HTTP/1.1"' not in output

        client = await Client.connect(dev.env["O2C_TEMPORAL_ADDRESS"])
        assert SCHEDULED - await scheduled_activities(client, "webshop:SO-1001") == set()
        assert await local_calls_recorded(client, "webshop:SO-1001") == 0

        dev.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(dev.process.wait(), 30) == 0


@contextmanager
def socket_listening(port: int) -> Iterator[None]:
    """Another process's server on `port`, for the length of the block."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        yield


def test_a_sandbox_port_in_use_is_named_before_anything_starts(tmp_path: Path) -> None:
    data = tmp_path / "o2c"
    env = dev_env(data)
    logistics = int(env["O2C_SANDBOX_PORT"]) + 2
    with socket_listening(logistics):
        finished = subprocess.run(
            [sys.executable, "-m", "o2c_service", "dev", "--remote"],
            env=env, capture_output=True, text=True, timeout=STARTUP_TIMEOUT,
        )  # fmt: skip
    assert finished.returncode == 1
    [line] = finished.stderr.splitlines()
    assert line.startswith(
        f"error: port {logistics} on 127.0.0.1 for the sandbox's logistics is in use"
    ), line
    assert "O2C_SANDBOX_PORT" in line
    assert not data.exists(), "nothing should have started, nor written its data"

"""`o2c sandbox` as a person starts it: four systems on consecutive ports, the demo data
seeded on the first start, every request in the log, Ctrl-C to stop; a fault profile it
cannot read stops it at once with the field to fix."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.support.stack import free_port

SANDBOX = [sys.executable, "-m", "o2c_service", "sandbox"]
STARTUP_TIMEOUT = 60
LAST_PORT = 65532
"""The highest O2C_SANDBOX_PORT: three more ports follow it."""


def four_free_ports() -> int:
    """The first of four consecutive ports that are free now."""
    while True:
        first = free_port()
        if first > LAST_PORT:
            continue
        try:
            with ExitStack() as probes:
                for port in range(first, first + 4):
                    probes.enter_context(socket.socket()).bind(("127.0.0.1", port))
        except OSError:
            continue
        return first


def sandbox_environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    """This environment without any o2c setting, plus the sandbox's own."""
    kept = {name: value for name, value in os.environ.items() if not name.startswith("O2C_")}
    return kept | {"O2C_DATABASE_URL": f"sqlite:///{tmp_path / 'o2c.db'}"} | settings


async def line_with(stream: asyncio.StreamReader, text: str, seen: list[str]) -> str:
    """Read log lines (kept in `seen`) until one holds `text`."""
    while True:
        line = (await stream.readline()).decode()
        if not line:
            raise AssertionError(f"the sandbox's log ended before {text!r}:\n{''.join(seen)}")
        seen.append(line)
        if text in line:
            return line


async def test_the_sandbox_serves_the_demo_customer_and_logs_the_request(tmp_path: Path) -> None:
    first = four_free_ports()
    process = await asyncio.create_subprocess_exec(
        *SANDBOX,
        env=sandbox_environment(tmp_path, O2C_SANDBOX_PORT=str(first)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    log: list[str] = []
    try:
        listening = await asyncio.wait_for(
            line_with(process.stderr, "sandbox payments listening", log), STARTUP_TIMEOUT
        )
        assert f"http://127.0.0.1:{first + 3}" in listening
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{first}") as crm:
            answer = await crm.get("/customers/CUST-ACME")
        assert answer.status_code == 200
        assert (answer.json()["customer_id"], answer.json()["currency"]) == ("CUST-ACME", "EUR")
        logged = await asyncio.wait_for(
            line_with(process.stderr, "GET /customers/CUST-ACME", log), STARTUP_TIMEOUT
        )
        assert "crm" in logged and "-> 200" in logged and "get_customer" in logged

        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), STARTUP_TIMEOUT) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize(
    ("given", "named"),
    [
        pytest.param(
            ["--faults", '{"rules": [{"system": "payments", "error_rate": 2}]}'],
            "--faults (inline JSON): rules[0].error_rate",
            id="out-of-range",
        ),
        pytest.param(
            ["--faults", '{"rules": [{"system": "crm", "operation": "bill", "error_rate": 1}]}'],
            "rules[0].operation: unknown operation 'bill'",
            id="unknown-operation",
        ),
        pytest.param(["--faults", '{"rules": ['], "not valid JSON", id="not-json"),
        pytest.param(
            ["--faults", "no-such-profile.json"],
            "--faults: no fault profile file no-such-profile.json",
            id="no-file",
        ),
        pytest.param(
            {"O2C_SANDBOX_FAULTS": '{"rules": [{"system": "crm", "eror_rate": 1}]}'},
            "O2C_SANDBOX_FAULTS (inline JSON): rules[0].eror_rate",
            id="in-the-setting",
        ),
    ],
)
async def test_a_fault_profile_it_cannot_read_stops_it_with_the_field_to_fix(
    tmp_path: Path, given: list[str] | dict[str, str], named: str
) -> None:
    options = given if isinstance(given, list) else []
    settings = given if isinstance(given, dict) else {}
    process = await asyncio.create_subprocess_exec(
        *SANDBOX,
        *options,
        env=sandbox_environment(tmp_path, O2C_SANDBOX_PORT=str(four_free_ports()), **settings),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), STARTUP_TIMEOUT)

    assert process.returncode == 1
    assert out == b""
    (line,) = err.decode().splitlines()
    assert line.startswith("error: ") and named in line, line

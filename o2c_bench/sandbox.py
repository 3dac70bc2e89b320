"""The sandbox `o2c bench --remote` calls: `python -m o2c_service sandbox` in a process
of its own, as a user runs it, on four free loopback ports over the bench's systems
database, with `--latency-ms` added to every request; and what its call log says
of the measured orders (`GET <url>/_sandbox/calls`).

Its own process keeps its CPU (FastAPI, the local adapters' SQLite, the latency's
timers) apart from the worker's and the bench's, where it can be read from /proc,
as a remote system's would be on another machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from o2c_bench.env import BenchError, cpu_seconds, process_memory, supervised, tail
from o2c_bench.report import OperationTime, SandboxFigures, percentile
from o2c_domain.systems import SYSTEMS
from o2c_sandbox.routes import CALLS_PATH, Call
from o2c_service.dev import _die_with_parent

T = TypeVar("T")

HOST = "127.0.0.1"
READY_TIMEOUT = 30.0
READY_POLL = 0.05
STOP_TIMEOUT = 10.0
STARTS = 3
"""Tries on fresh ports, should another process take one between the probe and the bind."""


def free_ports(count: int = len(SYSTEMS), host: str = HOST) -> int:
    """The first of `count` consecutive ports free on `host` now (the sandbox serves CRM on
    O2C_SANDBOX_PORT and the other systems on the next three)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind((host, 0))
            first: int = probe.getsockname()[1]
        if first + count - 1 <= 65535 and all(
            _free(host, port) for port in range(first, first + count)
        ):
            return first
    raise BenchError(f"found no {count} consecutive free ports on {host} for the sandbox")


def _free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@dataclass
class Sandbox:
    """The running sandbox process: each system's base URL, and its call log."""

    process: asyncio.subprocess.Process
    urls: dict[str, str]
    latency_ms: int
    log: Path

    def __post_init__(self) -> None:
        self.exited = asyncio.ensure_future(self.process.wait())

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float | None:
        return cpu_seconds(self.pid)

    async def calls(self) -> list[Call]:
        """Every request in its call log, the four systems' together, oldest first."""
        async with httpx.AsyncClient(timeout=30) as http:
            answers = await asyncio.gather(
                *(http.get(f"{url}{CALLS_PATH}") for url in self.urls.values())
            )
        calls = [Call(**call) for answer in answers for call in answer.raise_for_status().json()]
        return sorted(calls, key=lambda call: call.at)

    async def supervise(self, work: Awaitable[T]) -> T:
        """`work`, unless the sandbox dies first: then fail at once with its log."""
        return await supervised(work, {self.exited: self._died})

    def _died(self) -> BenchError:
        return BenchError(
            f"the sandbox (pid {self.pid}) exited with code {self.process.returncode}; "
            f"the end of its log:\n{tail(self.log)}"
        )

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self.exited), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
        await self.exited


@contextlib.asynccontextmanager
async def sandbox_process(database_url: str, latency_ms: int, log: Path) -> AsyncIterator[Sandbox]:
    """The sandbox over `database_url`, listening on all four ports, for the block; stopped
    (and waited for) at its end."""
    sandbox = await _started(database_url, latency_ms, log)
    try:
        yield sandbox
    finally:
        await sandbox.stop()


async def _started(database_url: str, latency_ms: int, log: Path) -> Sandbox:
    for _ in range(STARTS):
        first = free_ports()
        env = {
            **os.environ,
            "O2C_DATABASE_URL": database_url,
            "O2C_SANDBOX_HOST": HOST,
            "O2C_SANDBOX_PORT": str(first),
            "O2C_SANDBOX_LATENCY_MS": str(latency_ms),
        }
        env.pop("O2C_SANDBOX_FAULTS", None)  # the bench measures the happy path
        with log.open("ab") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "o2c_service", "sandbox",
                env=env, stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
            )  # fmt: skip
        urls: dict[str, str] = {
            system: f"http://{HOST}:{first + index}" for index, system in enumerate(SYSTEMS)
        }
        sandbox = Sandbox(process, urls, latency_ms, log)
        if await _listening(sandbox):
            return sandbox
        await sandbox.stop()
    raise BenchError(f"the sandbox did not start; the end of its log:\n{tail(log)}")


async def _listening(sandbox: Sandbox) -> bool:
    """Whether it answers on all four ports before it exits or READY_TIMEOUT passes."""
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT
    async with httpx.AsyncClient(timeout=READY_POLL * 20) as http:
        waiting = list(sandbox.urls.values())
        while waiting and not sandbox.exited.done():
            if asyncio.get_running_loop().time() > deadline:
                return False
            with contextlib.suppress(httpx.HTTPError):  # not listening yet, or not the sandbox
                (await http.get(f"{waiting[0]}{CALLS_PATH}")).raise_for_status()
                waiting.pop(0)
                continue
            await asyncio.sleep(READY_POLL)
    return not waiting


def sandbox_figures(
    sandbox: Sandbox, calls: Iterable[Call], orders: int, cpu_seconds: float | None
) -> SandboxFigures:
    """What the sandbox served for `orders` orders, by system and operation (the systems
    in their usual order, each one's operations as they were first called)."""
    measured = list(calls)
    by_operation: dict[tuple[str, str], list[Call]] = {}
    for call in sorted(measured, key=lambda call: SYSTEMS.index(call.system)):  # stable
        by_operation.setdefault((call.system, call.operation), []).append(call)
    memory = process_memory(sandbox.pid)
    return SandboxFigures(
        pid=sandbox.pid,
        urls=sandbox.urls,
        latency_ms=sandbox.latency_ms,
        calls=len(measured),
        calls_per_order=round(len(measured) / orders, 2) if orders else 0.0,
        calls_by_system={
            system: sum(1 for call in measured if call.system == system) for system in SYSTEMS
        },
        operations=[
            _operation_time(system, operation, served)
            for (system, operation), served in by_operation.items()
        ],
        cpu_ms_per_order=(
            round(cpu_seconds * 1000 / orders, 2) if cpu_seconds is not None and orders else None
        ),
        rss_bytes=memory.rss_bytes if memory is not None else None,
    )


def _operation_time(system: str, operation: str, calls: list[Call]) -> OperationTime:
    durations = sorted(call.duration_ms for call in calls)
    return OperationTime(
        system=system,
        operation=operation,
        calls=len(calls),
        mean_ms=round(sum(durations) / len(durations), 1),
        p95_ms=percentile(durations, 95),
        failed=sum(1 for call in calls if call.status >= 400),
    )

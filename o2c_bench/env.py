"""What `o2c bench` runs and reads: the Temporal server, the worker processes, /proc.

Each worker runs in a process of its own (`python -m o2c_bench.worker`)
so that its memory and CPU time can be read from /proc apart from the load
generator's; a dev server started by the bench is a child of this process,
found (and read) the same way. `--workers N` starts N of them on the same task
queue and the same local-systems database; only the first runs the floor's
worker, and only the first is profiled.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from adapters.crm.models import CustomerStatus
from adapters.local import open_local_adapters
from adapters.local.tables import CustomerRow, to_minor
from o2c_bench.report import CpuPerItem, ProcessMemory
from o2c_domain.systems import SYSTEMS, LocalCalls
from o2c_service.codec.converter import data_converter
from o2c_service.dev import _die_with_parent
from o2c_service.settings import Settings
from o2c_service.temporal import connect
from o2c_workflows.search_attributes import ALL

T = TypeVar("T")

BENCH_CUSTOMER = "CUST-BENCH"
"""Created by the bench in the worker's database, with a credit limit no run reaches."""
BENCH_CREDIT_LIMIT = Decimal("1000000000000.00")
WORKER_STOP_TIMEOUT = 15.0
# As `o2c dev` runs its server on SQLite: WAL, and no fsync per commit.
SQLITE_PRAGMAS = ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]


class BenchError(Exception):
    """The run could not finish; the message says where and why."""


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc (Linux)."""
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


def process_memory(pid: int | None) -> ProcessMemory | None:
    """Resident memory now (VmRSS) and at its peak (VmHWM), from /proc/<pid>/status."""
    if pid is None:
        return None
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    values: dict[str, int] = {}
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(value.split()[0]) * 1024  # reported in kB
    return ProcessMemory(pid=pid, rss_bytes=values.get("VmRSS"), peak_rss_bytes=values.get("VmHWM"))


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time a process has used so far, from /proc/<pid>/stat."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, fields 3 onwards
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSample:
    workers: tuple[float | None, ...]
    """Each worker process's CPU seconds so far, in the order they started."""
    server: float | None
    bench: float

    @classmethod
    def now(cls, worker_pids: Sequence[int], server_pid: int | None) -> CpuSample:
        return cls(
            tuple(cpu_seconds(pid) for pid in worker_pids),
            cpu_seconds(server_pid),
            time.process_time(),
        )

    @property
    def worker(self) -> float | None:
        """The worker processes' CPU seconds, summed; None if one could not be read."""
        if not self.workers or any(seconds is None for seconds in self.workers):
            return None
        return sum(seconds for seconds in self.workers if seconds is not None)

    def per_item(self, since: CpuSample, items: int) -> CpuPerItem:
        def ms(now: float | None, then: float | None) -> float | None:
            if now is None or then is None or not items:
                return None
            return round((now - then) * 1000 / items, 2)

        return CpuPerItem(
            worker_ms=ms(self.worker, since.worker),
            worker_ms_each=[
                ms(now, then) for now, then in zip(self.workers, since.workers, strict=True)
            ],
            server_ms=ms(self.server, since.server),
            bench_ms=ms(self.bench, since.bench),
        )


@contextlib.contextmanager
def _children_output_to(log: Path) -> Iterator[None]:
    """Processes started inside the block write their stdout and stderr to `log`.

    The SDK starts the dev server with this process's own stdout and stderr,
    where its banner would land in the middle of the bench's output.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with log.open("ab") as file:
            os.dup2(file.fileno(), 1)
            os.dup2(file.fileno(), 2)
        yield
    finally:
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


def tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class Server:
    client: Client
    address: str
    pid: int | None
    mode: Literal["memory", "sqlite", "address"]


@contextlib.asynccontextmanager
async def temporal_server(
    settings: Settings, address: str | None, sqlite: Path | None, log: Path
) -> AsyncIterator[Server]:
    """The server to measure: the one at `address`, or a dev server started here (and stopped).

    The dev server runs in memory, or on the `sqlite` file as `o2c dev` runs it.
    """
    if address is not None:
        try:
            client = await connect(settings, address=address)
        except RuntimeError as error:
            raise BenchError(f"cannot connect to Temporal at {address}: {error}") from None
        yield Server(client=client, address=address, pid=None, mode="address")
        return
    before = set(child_pids(os.getpid()))
    try:
        with _children_output_to(log):
            env = await WorkflowEnvironment.start_local(
                namespace=settings.temporal_namespace,
                dev_server_existing_path=str(settings.temporal_cli_path()),
                dev_server_startup_timeout=timedelta(seconds=60),
                search_attributes=ALL,
                data_converter=data_converter(settings.codec()),
                dev_server_database_filename=str(sqlite) if sqlite else None,
                dev_server_extra_args=SQLITE_PRAGMAS if sqlite else [],
                dev_server_log_level="error",
            )
    except RuntimeError as error:
        raise BenchError(f"the Temporal dev server did not start: {error}\n{tail(log)}") from None
    async with env:
        # The SDK starts the server as a child of this process; it is the new `start-dev` one.
        started = [pid for pid in child_pids(os.getpid()) if pid not in before]
        servers = [pid for pid in started if "start-dev" in _cmdline(pid)]
        yield Server(
            client=env.client,
            address=env.client.service_client.config.target_host,
            pid=servers[0] if servers else None,
            mode="sqlite" if sqlite else "memory",
        )


def prepare_database(database_url: str) -> None:
    """The local systems' tables, the demo items, and the bench's own customer."""
    adapters = open_local_adapters(database_url)
    try:
        with adapters.database.session() as session:
            if session.get(CustomerRow, BENCH_CUSTOMER) is None:
                session.add(
                    CustomerRow(
                        customer_id=BENCH_CUSTOMER,
                        name="Bench Customer",
                        email="bench@example.invalid",
                        status=CustomerStatus.ACTIVE.value,
                        currency="EUR",
                        credit_limit_minor=to_minor(BENCH_CREDIT_LIMIT, "EUR"),
                    )
                )
    finally:
        adapters.database.dispose()


class WorkerProcess:
    """`python -m o2c_bench.worker` in a process of its own, watched while it runs."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        log: Path,
        floor: bool = True,
    ) -> None:
        self.process = process
        self.log = log
        self.floor = floor
        self.exited = asyncio.ensure_future(process.wait())

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def identity(self) -> str:
        """How its workers name themselves to Temporal: the SDK's default, `pid@host`."""
        return f"{self.pid}@{socket.gethostname()}"

    def memory(self) -> ProcessMemory | None:
        return process_memory(self.pid)

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self.exited), WORKER_STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
        await self.exited


@dataclass
class Workers:
    """The worker processes of one run, in the order they started: the first also runs
    the floor's worker, and is the one profiled."""

    processes: list[WorkerProcess]

    @property
    def first(self) -> WorkerProcess:
        return self.processes[0]

    @property
    def pids(self) -> list[int]:
        return [worker.pid for worker in self.processes]

    def memory(self) -> list[ProcessMemory]:
        """Each worker's memory now (those that could be read)."""
        return [memory for worker in self.processes if (memory := worker.memory()) is not None]

    async def supervise(self, work: Awaitable[T]) -> T:
        """`work`, unless a worker dies first: then fail at once with that worker's log."""
        return await supervised(
            work,
            {worker.exited: functools.partial(self._died, worker) for worker in self.processes},
        )

    def _died(self, dead: WorkerProcess) -> BenchError:
        which = f"worker {self.processes.index(dead) + 1} of {len(self.processes)}"
        return BenchError(
            f"{which if len(self.processes) > 1 else 'the worker'} (pid {dead.pid}) exited with "
            f"code {dead.process.returncode}; the end of its log:\n{tail(dead.log)}"
        )


async def supervised(
    work: Awaitable[T], exits: Mapping[asyncio.Future[int], Callable[[], BenchError]]
) -> T:
    """`work`, unless one of the processes whose `exits` these are exits first: then cancel
    it and raise the error that process's callable makes."""
    task = asyncio.ensure_future(work)
    watched: set[asyncio.Future[Any]] = {task, *exits}
    await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    raise next(error() for exited, error in exits.items() if exited.done())


@contextlib.asynccontextmanager
async def worker_processes(
    count: int,
    address: str,
    namespace: str,
    task_queue: str,
    database_url: str,
    local: LocalCalls,
    logs: Path,
    cprofile: Path | None = None,
    urls: Mapping[str, str] | None = None,
) -> AsyncIterator[Workers]:
    """`count` workers on one task queue and one database, each logging to `logs/worker-<i>.log`.

    The first also runs the floor's worker and, if `cprofile` is given, runs under
    cProfile, dumping its stats there at exit; the others run the order worker only.
    Each system in `urls` is called over HTTP there (O2C_<SYSTEM>_URL).
    """
    workers = Workers([])
    try:
        for index in range(count):
            first = index == 0
            workers.processes.append(
                await _start_worker(
                    address, namespace, task_queue, database_url, local,
                    logs / f"worker-{index + 1}.log",
                    floor=first, cprofile=cprofile if first else None, urls=urls or {},
                )
            )  # fmt: skip
        yield workers
    finally:
        await asyncio.gather(*(worker.stop() for worker in workers.processes))


async def _start_worker(
    address: str,
    namespace: str,
    task_queue: str,
    database_url: str,
    local: LocalCalls,
    log: Path,
    floor: bool,
    cprofile: Path | None,
    urls: Mapping[str, str],
) -> WorkerProcess:
    env = {
        **os.environ,
        "O2C_TEMPORAL_ADDRESS": address,
        "O2C_TEMPORAL_NAMESPACE": namespace,
        "O2C_TASK_QUEUE": task_queue,
        "O2C_DATABASE_URL": database_url,
        "O2C_LOCAL_ACTIVITIES": json.dumps(local),
    }
    # The bench's systems are its own: embedded in that database, or its sandbox.
    for system in SYSTEMS:
        env.pop(f"O2C_{system.upper()}_URL", None)
    env.update({f"O2C_{system.upper()}_URL": url for system, url in urls.items()})
    env.pop("O2C_FAULTS", None)  # the bench measures the happy path
    arguments = ["--cprofile", str(cprofile)] if cprofile is not None else []
    if not floor:
        arguments.append("--no-floor")
    with log.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "o2c_bench.worker", *arguments,
            env=env, stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
        )  # fmt: skip
    return WorkerProcess(process, log, floor=floor)

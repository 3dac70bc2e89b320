"""`o2c dev` (README command 1): everything up, orders kept across restarts, nothing left over."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from o2c_service.dev import ensure_ports_free
from o2c_service.settings import Settings
from tests.integration.test_end_to_end import demo_order
from tests.support.api_keys import bearer
from tests.support.stack import free_port, free_ports

STARTUP_TIMEOUT = 60


def children(pid: int) -> list[int]:
    """Direct child processes of `pid` (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def is_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


class DevProcess:
    def __init__(self, process: asyncio.subprocess.Process, env: dict[str, str]) -> None:
        self.process = process
        self.env = env
        self.api = env["O2C_API_URL"]
        self.ui = env["O2C_TEMPORAL_UI_URL"]
        self.sandbox = Settings(sandbox_port=int(env["O2C_SANDBOX_PORT"])).sandbox_urls()
        """Each system's sandbox URL (served with `--remote` only)."""
        self.banner = ""
        self.printed: list[str] = []
        """Every line it printed after the banner (access log included), stderr's too if
        kept: read on, so that a full pipe never stalls it."""
        self.keys = Path(env["O2C_DATA_DIR"]) / "keys"

    def key(self, role: str = "support") -> str:
        """The key `o2c dev` wrote for `role` (support or integration)."""
        return (self.keys / f"{role}.key").read_text().strip()

    async def keep_reading(self, stream: asyncio.StreamReader | None) -> None:
        assert stream is not None
        while line := await stream.readline():
            self.printed.append(line.decode(errors="replace"))

    def http(self) -> httpx.AsyncClient:
        """A client of the API with the support key."""
        return httpx.AsyncClient(base_url=self.api, timeout=30, headers=bearer(self.key()))

    async def read_banner(self) -> None:
        assert self.process.stdout is not None
        while "export O2C_API_KEY" not in self.banner:  # the banner's last line
            line = await self.process.stdout.readline()
            assert line, f"o2c dev exited before it was ready:\n{self.banner}"
            self.banner += line.decode()


def dev_env(data_dir: Path, settings: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The environment of an `o2c dev` on free ports (the sandbox's four included) and
    `data_dir`; `settings` added to it (None: taken out of it)."""
    api_port, temporal_port, ui_port = free_port(), free_port(), free_port()
    env = os.environ | {
        "O2C_DATA_DIR": str(data_dir),
        "O2C_DATABASE_URL": f"sqlite:///{data_dir / 'o2c.db'}",
        "O2C_API_DATABASE_URL": f"sqlite:///{data_dir / 'api.db'}",
        "O2C_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "O2C_TEMPORAL_UI_URL": f"http://127.0.0.1:{ui_port}",
        "O2C_API_PORT": str(api_port),
        "O2C_API_URL": f"http://127.0.0.1:{api_port}",
        "O2C_SANDBOX_PORT": str(free_ports(4)),
    }
    for name, value in (settings or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


@asynccontextmanager
async def o2c_dev(
    data_dir: Path,
    settings: Mapping[str, str | None] | None = None,
    keep_stderr: bool = False,
    *,
    remote: bool = False,
) -> AsyncIterator[DevProcess]:
    """`o2c dev` (`--remote` with `remote`) on free ports and `data_dir`; `settings` added
    to its environment (None: taken out of it); with `keep_stderr`, its log lines land in
    `printed` too."""
    env = dev_env(data_dir, settings)
    stderr = asyncio.subprocess.PIPE if keep_stderr else asyncio.subprocess.DEVNULL
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "o2c_service", "dev", *(["--remote"] if remote else []),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=stderr,
    )  # fmt: skip
    dev = DevProcess(process, env)
    readers: list[asyncio.Task[None]] = []
    if keep_stderr:
        readers.append(asyncio.create_task(dev.keep_reading(process.stderr)))
    try:
        await asyncio.wait_for(dev.read_banner(), STARTUP_TIMEOUT)
        readers.append(asyncio.create_task(dev.keep_reading(process.stdout)))
        yield dev
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await asyncio.gather(*readers)  # both end at the end of their stream


async def wait_until_booked(http: httpx.AsyncClient, order_id: str) -> None:
    deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT
    while (await http.get(f"/orders/{order_id}")).json().get("status") != "Booked":
        assert asyncio.get_running_loop().time() < deadline, f"{order_id} never booked"
        await asyncio.sleep(0.05)


async def test_dev_runs_everything_and_ctrl_c_stops_it_all(tmp_path: Path) -> None:
    async with o2c_dev(tmp_path) as dev:
        assert f"{dev.ui}/namespaces/default/workflows" in dev.banner
        assert f"{dev.api}/docs" in dev.banner
        assert f"{dev.api}/console/" in dev.banner
        server_pids = children(dev.process.pid)
        assert server_pids, "the Temporal dev server should run as a child process"
        # A support and an integration key, each in a file only its owner reads, named.
        keys = {role: dev.key(role) for role in ("support", "integration")}
        for role in keys:
            key_file = dev.keys / f"{role}.key"
            assert key_file.stat().st_mode & 0o777 == 0o600
            assert str(key_file.resolve()) in dev.banner
        async with dev.http() as http:
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/docs")).status_code == 200
            console = await http.get("/console/", headers={"Authorization": ""})
            assert console.status_code == 303  # to its sign-in form
            assert console.headers["location"].startswith("/console/sign-in")
            order_id = (await http.post("/orders", json=demo_order("SO-DEV-1"))).json()["order_id"]
            await wait_until_booked(http, order_id)
            anonymous = await http.get(f"/orders/{order_id}", headers={"Authorization": ""})
            assert anonymous.status_code == 401
            integration = await http.post(f"/orders/{order_id}/cancel", json={"reason": "x"},
                                          headers=bearer(keys["integration"]))  # fmt: skip
            assert integration.status_code == 403
        async with httpx.AsyncClient(timeout=30) as ui:
            assert (await ui.get(dev.ui)).status_code == 200

        dev.process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(dev.process.wait(), 30) == 0
        assert not [pid for pid in server_pids if is_alive(pid)]

    # Started again on the same data folder, the order is still there, and so are the keys.
    async with o2c_dev(tmp_path) as dev, dev.http() as http:
        assert {role: dev.key(role) for role in keys} == keys
        state = (await http.get(f"/orders/{order_id}")).json()
        assert state["status"] == "Booked"
        assert state["order"]["source_order_id"] == "SO-DEV-1"
        server_pids = children(dev.process.pid)
        # Killed outright, it still takes the dev server down with it.
        dev.process.kill()
        await dev.process.wait()
        deadline = asyncio.get_running_loop().time() + 30
        while [pid for pid in server_pids if is_alive(pid)]:
            assert asyncio.get_running_loop().time() < deadline, "dev server outlived o2c dev"
            await asyncio.sleep(0.05)


def test_a_port_in_use_is_named_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings(api_port=port, temporal_address=f"127.0.0.1:{free_port()}",
                            temporal_ui_url=f"http://127.0.0.1:{free_port()}")  # fmt: skip
        with pytest.raises(RuntimeError, match=f"port {port} on 127.0.0.1 for the API is in use"):
            ensure_ports_free(settings)

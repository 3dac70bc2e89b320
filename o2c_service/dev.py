"""`o2c dev`: the Temporal dev server, the worker and the API in one foreground command.

The server persists to a SQLite file under the data folder, so orders survive a
restart; the API's database is there too (`api.db`), and on the first start a
support key and an integration key are written to `<data folder>/keys/` (mode 0600)
and reused after. Ctrl-C stops the API and the worker, then the server; the server is
also told to die with this process, so nothing is left running. With `--remote` the
sandbox runs in this process too (`dev_remote.py`): up before the worker, stopped last.

Payloads are encrypted (docs/security.md): unless O2C_CODEC_KEYS is set, the first start
writes a codec key to `<data folder>/codec-keys` and later starts reuse it, so a newcomer
has no step to take. The UI is started with the API's codec endpoint, carrying a viewer
key of its own in the path (a browser cannot be made to send a header), so it shows
orders decrypted; O2C_TEMPORAL_UI_CODEC=false starts it without, showing ciphertext.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from temporalio.client import Client

from adapters.faults import FaultProfile
from o2c_service.access.dev_keys import ensure_dev_keys, ensure_ui_key
from o2c_service.access.roles import Role
from o2c_service.codec.keys import CodecKeys, new_key, write_key_file
from o2c_service.dev_partitions import dev_server_partitions, partitions
from o2c_service.dev_remote import point_at_sandbox, sandbox_banner, sandbox_serving
from o2c_service.observability.tracing import Tracing
from o2c_service.runners import run_worker, serve_api, stop_on_signals
from o2c_service.settings import Settings
from o2c_service.temporal import connect
from o2c_workflows.search_attributes import ALL

log = logging.getLogger("o2c.dev")

_CLI_TYPE_NAMES = {
    "KEYWORD": "Keyword",
    "TEXT": "Text",
    "INT": "Int",
    "DOUBLE": "Double",
    "BOOL": "Bool",
    "DATETIME": "Datetime",
    "KEYWORD_LIST": "KeywordList",
}


def search_attribute_flags() -> list[str]:
    """`--search-attribute Name=Type` for each attribute the workflows use."""
    flags: list[str] = []
    for key in ALL:
        flags += [
            "--search-attribute",
            f"{key.name}={_CLI_TYPE_NAMES[key.indexed_value_type.name]}",
        ]
    return flags


WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def codec_endpoint(settings: Settings) -> str:
    """The API's codec endpoint as a browser or the `temporal` CLI on this machine reaches
    it (an API listening on every interface is reached on the loopback)."""
    host = "127.0.0.1" if settings.api_host in WILDCARD_HOSTS else settings.api_host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.api_port}/codec"


def ui_codec_endpoint(settings: Settings, ui_key: str) -> str:
    """What the UI is started with: the codec endpoint with its viewer key in the path
    (the UI appends `/decode`, `/encode`)."""
    return f"{codec_endpoint(settings)}/key/{ui_key}"


def ensure_codec_key(settings: Settings) -> Path | None:
    """The codec key file, written with a new key if O2C_CODEC_KEYS is unset and the file
    is not there yet; None when the keys come from O2C_CODEC_KEYS."""
    if settings.codec_keys is not None:
        return None
    path = settings.codec_key_path()
    if not path.exists():
        write_key_file(path, CodecKeys((new_key(),)))
        log.info("wrote a new payload codec key to %s", path)
    settings.codec()  # a file that holds no usable key stops us before anything starts
    return path


def dev_server_command(
    settings: Settings, ui_codec: str | None = None, dynamic_config: Sequence[str] = ()
) -> list[str]:
    """The `temporal server start-dev` command line; `ui_codec` the UI's codec endpoint,
    `dynamic_config` the server's dynamic config as `KEY=VALUE` (`dev_partitions.py`)."""
    host, _, port = settings.temporal_address.rpartition(":")
    ui = urlsplit(settings.temporal_ui_url)
    codec = ["--ui-codec-endpoint", ui_codec] if ui_codec else []
    dynamic = [flag for value in dynamic_config for flag in ("--dynamic-config-value", value)]
    return [
        str(settings.temporal_cli_path()),
        "server",
        "start-dev",
        "--ip",
        host,
        "--port",
        port,
        "--ui-ip",
        ui.hostname or host,
        "--ui-port",
        str(ui.port or 8233),
        "--namespace",
        settings.temporal_namespace,
        "--db-filename",
        str(settings.data_dir / "temporal.db"),
        # WAL survives a process crash and roughly doubles throughput on SQLite.
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        "--log-level",
        "warn",
        *search_attribute_flags(),
        *dynamic,
        *codec,
    ]


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the parent dies, even by SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def server_log(settings: Settings) -> Path:
    return settings.data_dir / "temporal-server.log"


def start_dev_server(
    settings: Settings, ui_codec: str | None = None, dynamic_config: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with server_log(settings).open("ab") as log_file:
        return subprocess.Popen(
            dev_server_command(settings, ui_codec, dynamic_config),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C reaches us, and we stop it last, after the worker.
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


async def wait_for_server(server: subprocess.Popen[bytes], settings: Settings) -> Client:
    for _ in range(300):
        if server.poll() is not None:
            raise RuntimeError(
                f"the Temporal dev server exited with code {server.returncode}; "
                f"see {server_log(settings)}"
            )
        try:
            return await connect(settings)
        except RuntimeError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the Temporal dev server did not answer on {settings.temporal_address}")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def banner(
    settings: Settings,
    keys: dict[Role, Path] | None = None,
    codec_keys: Path | None = None,
    *,
    remote: bool = False,
) -> str:
    """What `o2c dev` prints once it listens. `codec_keys`: the key file in use, if any;
    `remote`: the sandbox runs too."""
    api = f"http://{settings.api_host}:{settings.api_port}"
    ui = f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}/workflows"
    data = Path(settings.data_dir).resolve()
    codec = codec_endpoint(settings)
    ui_use = (
        "the UI decrypts through it"
        if settings.temporal_ui_codec
        else "not set in the UI: O2C_TEMPORAL_UI_CODEC=false"
    )
    keys_in = codec_keys.resolve() if codec_keys is not None else "O2C_CODEC_KEYS"
    text = (
        "\n  o2c is running (Ctrl-C stops everything)\n"
        f"  Temporal UI   {ui}\n"
        f"  Console       {api}/console/ (support staff: sign in with a support or viewer "
        "key)\n"
        f"  API docs      {api}/docs\n"
        f"  API           {api}\n"
        f"  Temporal      {settings.temporal_address} (data in {data}, "
        f"server log {server_log(settings).name})\n"
        f"  Codec         {codec} ({ui_use}; keys in {keys_in})\n"
        f"                temporal workflow show -w <id> --codec-endpoint {codec} "
        '--codec-auth "Bearer $O2C_API_KEY"\n'
        f"  Metrics       {api}/metrics (the API's and the orders'; any key), "
        f"{worker_metrics(settings)}\n"
    )
    if remote:
        text += sandbox_banner(settings)
    for number, (role, path) in enumerate((keys or {}).items()):
        label = "API keys" if number == 0 else ""
        text += f"  {label:<13} {role.value:<12} {path.resolve()}\n"
    if keys:
        support = keys[Role.SUPPORT].resolve()
        text += (
            f"                export O2C_API_KEY=$(cat {support})   "
            "(for curl; o2c finds it itself)\n"
        )
    return text


def worker_metrics(settings: Settings) -> str:
    """Where the banner says the worker's metrics are."""
    address = settings.metrics_address()
    if address is None:
        return "the worker's: off (O2C_METRICS_PORT)"
    return f"the worker's: http://{address}/metrics"


class WantedPort(NamedTuple):
    """A port `o2c dev` listens on, checked free before anything starts."""

    what: str
    host: str
    number: int
    hint: str
    """What to do when another process holds it."""


def ensure_ports_free(settings: Settings, *, sandbox: bool = False) -> None:
    """Fail before starting anything if another process holds one of our ports (with
    `sandbox`, the sandbox's four too)."""
    host, _, port = settings.temporal_address.rpartition(":")
    ui = urlsplit(settings.temporal_ui_url)
    ours = "is o2c dev already running? Stop it, or choose other ports with the O2C_* settings"
    wanted = [
        WantedPort("Temporal", host, int(port), ours),
        WantedPort("Temporal UI", ui.hostname or host, ui.port or 8233, ours),
        WantedPort("API", settings.api_host, settings.api_port, ours),
    ]
    if settings.metrics_port:
        wanted.append(
            WantedPort("worker's metrics", settings.metrics_host, settings.metrics_port, ours)
        )
    if sandbox:
        sandbox_hint = (
            "is o2c dev --remote or o2c sandbox already running? Stop it, or move the "
            "sandbox's four ports with O2C_SANDBOX_PORT (the first of them)"
        )
        wanted += [
            WantedPort(f"sandbox's {system}", settings.sandbox_host, number, sandbox_hint)
            for system, number in settings.sandbox_ports().items()
        ]
    for what, address, number, hint in wanted:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, number))
            except OSError:
                raise RuntimeError(
                    f"port {number} on {address} for the {what} is in use: {hint}"
                ) from None


async def run_dev(
    settings: Settings, *, remote: bool = False, tracing: Tracing | None = None
) -> None:
    """Everything until Ctrl-C; with `remote`, the sandbox too, and every system the
    settings give no URL called there over HTTP. `tracing`: the API's and the worker's."""
    FaultProfile.from_setting(settings.faults)  # a bad profile stops us before anything starts
    if remote:
        FaultProfile.from_setting(settings.sandbox_faults)
        settings = point_at_sandbox(settings)
    ensure_ports_free(settings, sandbox=remote)
    codec_keys = ensure_codec_key(settings)
    keys = ensure_dev_keys(settings)
    ui_codec = (
        ui_codec_endpoint(settings, ensure_ui_key(settings)) if settings.temporal_ui_codec else None
    )
    stop = asyncio.Event()
    stop_on_signals(stop)
    async with AsyncExitStack() as running:
        # The sandbox listens before the worker starts, and stops after it (and after the
        # server), so that no activity in flight loses its system mid-call.
        sandbox = await running.enter_async_context(sandbox_serving(settings)) if remote else None
        server = start_dev_server(settings, ui_codec, partitions(dev_server_partitions(settings)))
        try:
            await wait_for_server(server, settings)
            listening = asyncio.Event()
            parts = [
                asyncio.create_task(run_worker(settings, stop, tracing=tracing), name="worker"),
                asyncio.create_task(
                    serve_api(settings, stop, listening, tracing=tracing), name="api"
                ),
                asyncio.create_task(asyncio.to_thread(server.wait), name="temporal"),
            ]
            announce = asyncio.create_task(
                _announce_when_listening(
                    listening, banner(settings, keys, codec_keys, remote=remote)
                )
            )
            # Run until Ctrl-C, or until any part stops on its own (then stop the rest).
            stopping = asyncio.create_task(stop.wait())
            others = [sandbox] if sandbox is not None else []
            await asyncio.wait([stopping, *parts, *others], return_when=asyncio.FIRST_COMPLETED)
            if server.poll() is not None and not stop.is_set():
                log.error("the Temporal dev server stopped (exit code %s)", server.returncode)
            if sandbox is not None and sandbox.done() and not stop.is_set():
                log.error("the sandbox stopped")
            stop.set()
            announce.cancel()
            for part in parts[:2]:
                await part  # a failure of the worker or the API surfaces here
        finally:
            stop_server(server)


async def _announce_when_listening(listening: asyncio.Event, text: str) -> None:
    await listening.wait()
    print(text, flush=True)

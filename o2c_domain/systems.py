"""The four systems o2c calls, by name: one definition for the workflows, the adapters'
fault profiles and the settings (a module light enough for the CLI to import)."""

from __future__ import annotations

from typing import Literal, TypeAlias, get_args

System = Literal["crm", "billing", "logistics", "payments"]
"""The systems o2c calls; each activity's name starts with its system (`billing.…`)."""
SYSTEMS: tuple[System, ...] = get_args(System)
LocalCalls: TypeAlias = bool | list[System]
"""Which systems' calls run as local activities: all, none, or those listed."""

"""The keys `o2c dev` makes for the person at the keyboard: a support key and an
integration key, each in a file of its own under `<data folder>/keys/` (mode 0600),
created on the first start and reused after. The CLI, pointed at that `o2c dev`,
reads the support key from there when `O2C_API_KEY` is not set. A third, a viewer
key (`temporal-ui.key`), is the Temporal UI's: a browser cannot be made to send a
header, so the UI's codec endpoint carries it in its path.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from o2c_service.access.roles import Role
from o2c_service.settings import Settings

if TYPE_CHECKING:
    from o2c_service.access.keys import KeyStore

DEV_ROLES = (Role.SUPPORT, Role.INTEGRATION)
UI_KEY_NAME = "dev-temporal-ui"
"""The Temporal UI's key: a viewer, so it reads and decrypts, and changes nothing."""
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def dev_key_path(data_dir: Path, role: Role) -> Path:
    return data_dir / "keys" / f"{role.value}.key"


def dev_key_name(role: Role) -> str:
    return f"dev-{role.value}"


def ui_key_path(data_dir: Path) -> Path:
    return data_dir / "keys" / "temporal-ui.key"


def ensure_dev_keys(settings: Settings) -> dict[Role, Path]:
    """The dev keys' files, each holding a live key of its role: kept if the key in it is
    still known and not revoked, else replaced by a new key (the old one revoked)."""
    from o2c_service.access.keys import KeyStore

    keys = KeyStore.open(settings.api_database_url)
    try:
        paths: dict[Role, Path] = {}
        for role in DEV_ROLES:
            path = dev_key_path(settings.data_dir, role)
            _ensure_key(keys, path, dev_key_name(role), role)
            paths[role] = path
        return paths
    finally:
        keys.close()


def ensure_ui_key(settings: Settings) -> str:
    """The Temporal UI's viewer key (kept in `temporal-ui.key` like the others)."""
    from o2c_service.access.keys import KeyStore

    keys = KeyStore.open(settings.api_database_url)
    try:
        return _ensure_key(keys, ui_key_path(settings.data_dir), UI_KEY_NAME, Role.VIEWER)
    finally:
        keys.close()


def _ensure_key(keys: KeyStore, path: Path, name: str, role: Role) -> str:
    """The live key of `role` in `path`: the one there if still known and not revoked,
    else a new one written there (the key of that name revoked: its file was lost)."""
    from o2c_service.access.keys import KeyRefused

    existing = path.read_text().strip() if path.is_file() else ""
    found = keys.by_secret(existing) if existing else None
    if found is not None and found.role is role:
        return existing
    with suppress(KeyRefused):
        keys.revoke(name)
    secret = keys.create(name, role).key
    _write_private(path, secret)
    return secret


def _write_private(path: Path, secret: str) -> None:
    """Write `secret` to `path`, readable by its owner only from the first byte on."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")
    os.replace(partial, path)


def local_dev_key(api_url: str, settings: Settings) -> str | None:
    """The support key of the `o2c dev` this CLI would talk to: when `api_url` is that
    dev's own address (a loopback host on O2C_API_PORT) and its key file is here."""
    address = urlsplit(api_url)
    if address.hostname not in LOOPBACK or (address.port or 80) != settings.api_port:
        return None
    path = dev_key_path(settings.data_dir, Role.SUPPORT)
    try:
        return path.read_text().strip() or None
    except OSError:
        return None

"""API keys for tests: made in a test API's own database, sent as `Authorization: Bearer`.

The `o2c` helper of the CLI tests finds the key of the API it is pointed at here
(`key_for`), so tests keep calling `o2c(..., api_url=...)` as a person with
`O2C_API_KEY` set would.
"""

from __future__ import annotations

import uuid

from o2c_service.access.keys import KeyStore
from o2c_service.access.roles import Role
from o2c_service.settings import Settings

_KEYS_BY_API: dict[str, str] = {}


def make_key(settings: Settings, role: Role = Role.SUPPORT, name: str | None = None) -> str:
    """A new key of `role` in the API database `settings` names; its secret."""
    keys = KeyStore.open(settings.api_database_url)
    try:
        return keys.create(name or f"test-{role.value}-{uuid.uuid4().hex[:8]}", role).key
    finally:
        keys.close()


def revoke_key(settings: Settings, id_or_name: str) -> None:
    keys = KeyStore.open(settings.api_database_url)
    try:
        keys.revoke(id_or_name)
    finally:
        keys.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def remember_key(api_url: str, key: str) -> None:
    """The key the `o2c` helper sends to the API at `api_url`."""
    _KEYS_BY_API[api_url.rstrip("/")] = key


def key_for(api_url: str) -> str | None:
    return _KEYS_BY_API.get(api_url.rstrip("/"))

"""`o2c keys` as an operator on the API's host uses it, the dev keys `o2c dev` writes, how
the CLI finds its key, and how soon a revoked key stops working."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from fastapi import HTTPException
from typer.testing import CliRunner, Result

from o2c_service.access.dev_keys import ensure_dev_keys
from o2c_service.access.guard import KEY_CACHE_SECONDS, Authenticator
from o2c_service.access.keys import hash_key
from o2c_service.access.roles import Role
from o2c_service.cli import app
from o2c_service.cli.common import api_key
from o2c_service.settings import Settings
from o2c_service.store import ApiStore
from tests.support.api_keys import bearer, make_key, revoke_key


def o2c_keys(data_dir: Path, *args: str) -> Result:
    """`o2c keys ...` on the API's database in `data_dir` (O2C_DATA_DIR)."""
    env = {"O2C_DATA_DIR": str(data_dir), "O2C_API_DATABASE_URL": None, "COLUMNS": "200"}
    return CliRunner().invoke(app, ["keys", *args], env=env)


def database_text(data_dir: Path) -> str:
    """Every value in every table of the API's database, as text."""
    with sqlite3.connect(data_dir / "api.db") as database:
        tables = [row[0] for row in database.execute("SELECT name FROM sqlite_master "
                                                     "WHERE type = 'table'")]  # fmt: skip
        return " ".join(str(row) for t in tables for row in database.execute(f"SELECT * FROM {t}"))


def test_a_key_is_printed_alone_once_and_stored_only_as_its_hash(tmp_path: Path) -> None:
    created = o2c_keys(tmp_path, "create", "--name", "webshop", "--role", "integration")
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert created.stdout == key + "\n"
    assert key.startswith("o2c_") and len(key) >= 40
    stored = database_text(tmp_path)
    assert key not in stored and key[4:] not in stored
    assert hash_key(key) in stored

    as_json = o2c_keys(tmp_path, "create", "--name", "desk", "--role", "support", "-o", "json")
    assert as_json.exit_code == 0, as_json.output
    desk = json.loads(as_json.stdout)
    assert desk["name"] == "desk" and desk["role"] == "support" and desk["revoked_at"] is None
    assert desk["key"].startswith("o2c_") and desk["key_id"].startswith("key_")

    listed = o2c_keys(tmp_path, "list", "-o", "json")
    assert [(k["name"], k["role"]) for k in json.loads(listed.stdout)] == [
        ("webshop", "integration"), ("desk", "support")
    ]  # fmt: skip
    table = o2c_keys(tmp_path, "list")
    assert "webshop" in table.stdout and desk["key_id"] in table.stdout
    assert key not in listed.stdout + table.stdout and desk["key"] not in listed.stdout


def test_names_are_unique_among_live_keys_and_a_revoked_name_can_be_reused(
    tmp_path: Path,
) -> None:
    assert o2c_keys(tmp_path, "create", "--name", "desk", "--role", "support").exit_code == 0
    again = o2c_keys(tmp_path, "create", "--name", "desk", "--role", "viewer")
    assert again.exit_code == 1
    assert "a key named 'desk' exists and is not revoked" in again.stderr

    revoked = o2c_keys(tmp_path, "revoke", "desk")
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    rotated = o2c_keys(tmp_path, "create", "--name", "desk", "--role", "support", "-o", "json")
    assert rotated.exit_code == 0, rotated.output
    by_id = o2c_keys(tmp_path, "revoke", json.loads(rotated.stdout)["key_id"], "-o", "json")
    assert json.loads(by_id.stdout)["revoked_at"] is not None

    listed = json.loads(o2c_keys(tmp_path, "list", "-o", "json").stdout)
    assert [(k["name"], k["revoked_at"] is not None) for k in listed] == [
        ("desk", True), ("desk", True)
    ]  # fmt: skip
    unknown = o2c_keys(tmp_path, "revoke", "nobody")
    assert unknown.exit_code == 1 and "no key has the id or name 'nobody'" in unknown.stderr
    bad = o2c_keys(tmp_path, "create", "--name", "desk", "--role", "admin")
    assert bad.exit_code == 2 and "--role" in bad.stderr


async def test_a_revoked_key_is_refused_once_the_cache_lets_go_of_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    key = make_key(settings, Role.VIEWER, name="dashboard")
    now = [1000.0]
    store = ApiStore(settings.api_database_url)
    authenticator = Authenticator(store, clock=lambda: now[0])
    try:
        caller = await authenticator.caller(bearer(key)["Authorization"])
        assert (caller.name, caller.role) == ("dashboard", Role.VIEWER)
        revoke_key(settings, "dashboard")
        now[0] += KEY_CACHE_SECONDS - 0.1
        assert await authenticator.caller(f"Bearer {key}") == caller  # still trusted
        now[0] += 0.2
        with pytest.raises(HTTPException, match="not known or has been revoked") as refused:
            await authenticator.caller(f"Bearer {key}")
        assert refused.value.status_code == 401
        # A key created meanwhile works at once: unknown keys are never cached.
        fresh = make_key(settings, Role.SUPPORT, name="dashboard")
        assert (await authenticator.caller(f"Bearer {fresh}")).role is Role.SUPPORT
    finally:
        store.close()


def test_dev_keys_are_written_once_owner_only_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    paths = ensure_dev_keys(settings)
    assert paths == {
        Role.SUPPORT: tmp_path / "keys" / "support.key",
        Role.INTEGRATION: tmp_path / "keys" / "integration.key",
    }
    first = {role: path.read_text() for role, path in paths.items()}
    for path in paths.values():
        assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700
    assert ensure_dev_keys(settings) == paths
    assert {role: path.read_text() for role, path in paths.items()} == first

    # Revoked (say, leaked), the next start writes a new one in its place.
    revoke_key(settings, "dev-support")
    ensure_dev_keys(settings)
    assert paths[Role.SUPPORT].read_text() != first[Role.SUPPORT]
    assert paths[Role.INTEGRATION].read_text() == first[Role.INTEGRATION]
    live = json.loads(o2c_keys(tmp_path, "list", "-o", "json").stdout)
    assert sorted(k["name"] for k in live if k["revoked_at"] is None) == [
        "dev-integration", "dev-support"
    ]  # fmt: skip


def test_the_cli_sends_o2c_api_key_or_the_local_dev_support_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, api_port=8123)
    local = "http://127.0.0.1:8123"
    assert api_key(local, settings) is None  # no dev has run here
    support = ensure_dev_keys(settings)[Role.SUPPORT].read_text().strip()
    assert api_key(local, settings) == support
    assert api_key("http://localhost:8123", settings) == support
    assert api_key("http://127.0.0.1:9999", settings) is None  # another API
    assert api_key("https://o2c.example.com", settings) is None
    chosen = Settings(data_dir=tmp_path, api_port=8123, api_key="o2c_chosen")
    assert api_key(local, chosen) == "o2c_chosen"

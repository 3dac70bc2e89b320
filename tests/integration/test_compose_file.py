"""Checks of `docker-compose.temporal.yml`, which nothing here can run (no Docker).

It has to be right by construction, so these tests pin down its structure: the services and
their start-up order, no literal passwords, official images (not the deprecated auto-setup),
every `$` either escaped or a Compose variable, and above all that the bootstrap job registers
exactly the search attributes of `o2c_workflows.search_attributes.ALL`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from temporalio.common import SearchAttributeIndexedValueType as IVT

from o2c_workflows.search_attributes import ALL

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.temporal.yml"

POSTGRES = "postgresql"
SCHEMA_JOB = "temporal-schema"
SERVER = "temporal"
BOOTSTRAP_JOB = "temporal-bootstrap"
UI = "temporal-ui"

# Type names as `temporal operator search-attribute create --type` spells them.
CLI_TYPE_NAMES = {
    IVT.KEYWORD: "Keyword",
    IVT.TEXT: "Text",
    IVT.INT: "Int",
    IVT.DOUBLE: "Double",
    IVT.BOOL: "Bool",
    IVT.DATETIME: "Datetime",
    IVT.KEYWORD_LIST: "KeywordList",
}

# `--name X --type Y`, allowing shell line continuations between the parts.
_PAIR = re.compile(r"--name[ \t\\\n]+([^\s\\]+)[ \t\\\n]+--type[ \t\\\n]+([^\s\\]+)")
_NAME_FLAG = re.compile(r"--name(?=[ \t\\\n=])")

# A Compose variable reference: ${NAME}, ${NAME:-default}, ${NAME:?message} (and - / ? forms).
_VAR_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


# --------------------------------------------------------------------------- helpers


def _load() -> dict[str, Any]:
    return cast(dict[str, Any], yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], compose["services"])


def _env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, whether written as a mapping or as a list."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def _command_text(service: dict[str, Any]) -> str:
    parts = []
    for key in ("entrypoint", "command"):
        value = service.get(key) or []
        parts.extend([value] if isinstance(value, str) else [str(v) for v in value])
    return "\n".join(parts)


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    """{dependency: condition}; the short list form means `service_started`."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def _strings(node: Any) -> list[str]:
    """Every string value (and key) in a parsed YAML tree."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in _strings(k) + _strings(v)]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return []


def _image_parts(image: str) -> tuple[str, str]:
    repo, sep, tag = image.partition(":")
    assert sep, f"image {image!r} has no tag: pin it"
    return repo, tag


def _registered_search_attributes(command: str) -> set[tuple[str, str]]:
    pairs = _PAIR.findall(command)
    assert len(pairs) == len(_NAME_FLAG.findall(command)), (
        "every --name in the bootstrap command must be followed by its --type"
    )
    return set(pairs)


def _expected_search_attributes() -> set[tuple[str, str]]:
    return {(key.name, CLI_TYPE_NAMES[key.indexed_value_type]) for key in ALL}


# --------------------------------------------------------------------------- the file


def test_compose_file_parses_as_a_mapping_of_services() -> None:
    data = _load()
    assert isinstance(data, dict)
    assert isinstance(data.get("services"), dict) and data["services"]


def test_the_expected_services_exist(services: dict[str, Any]) -> None:
    assert {POSTGRES, SCHEMA_JOB, SERVER, BOOTSTRAP_JOB, UI} <= set(services)


def test_every_dollar_is_escaped_or_a_compose_variable(compose: dict[str, Any]) -> None:
    # Compose interpolates every value: shell variables in the job scripts must be written $$x,
    # or Compose substitutes (usually empty) values for them before the shell ever runs.
    offenders = []
    for text in _strings(compose):
        rest = _VAR_REF.sub("", text.replace("$$", ""))
        if "$" in rest:
            offenders.append(text[:80])
    assert not offenders, f"unescaped $ (write $$ for the shell): {offenders}"


# --------------------------------------------------------------------------- ordering


def test_postgres_has_a_named_volume_and_a_healthcheck(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    pg = services[POSTGRES]
    assert pg.get("healthcheck", {}).get("test"), "postgres needs a healthcheck"
    named = set(compose.get("volumes") or {})
    sources = {str(v).split(":", 1)[0] for v in pg.get("volumes", []) if isinstance(v, str)}
    sources |= {v["source"] for v in pg.get("volumes", []) if isinstance(v, dict)}
    assert sources & named, "postgres data must live in a named volume"


def test_schema_job_waits_for_a_healthy_postgres(services: dict[str, Any]) -> None:
    assert _depends_on(services[SCHEMA_JOB]).get(POSTGRES) == "service_healthy"


def test_server_starts_only_after_the_schema_job_succeeded(services: dict[str, Any]) -> None:
    deps = _depends_on(services[SERVER])
    assert deps.get(SCHEMA_JOB) == "service_completed_successfully"


def test_bootstrap_job_and_ui_wait_for_the_server(services: dict[str, Any]) -> None:
    assert _depends_on(services[BOOTSTRAP_JOB]).get(SERVER) == "service_healthy"
    assert SERVER in _depends_on(services[UI])
    assert services[SERVER].get("healthcheck", {}).get("test"), "service_healthy needs one"


def test_one_shot_jobs_are_not_restarted_forever(services: dict[str, Any]) -> None:
    for name in (SCHEMA_JOB, BOOTSTRAP_JOB):
        restart = str(services[name].get("restart", "no"))
        assert restart not in ("always", "unless-stopped"), name


# --------------------------------------------------------------------------- secrets


def test_no_service_has_a_literal_password(services: dict[str, Any]) -> None:
    checked = 0
    for name, service in services.items():
        for key, value in _env(service).items():
            if "PASSWORD" not in key.upper() and "PWD" not in key.upper():
                continue
            checked += 1
            ref = _VAR_REF.fullmatch(value)
            assert ref, f"{name}: {key} must be a ${{...}} reference, not a literal"
            assert ref["op"] != ":-" and ref["op"] != "-", (
                f"{name}: {key} must not carry a default password"
            )
    assert checked >= 3  # postgres, the schema job and the server all need it


def test_the_password_is_required_not_defaulted(services: dict[str, Any]) -> None:
    ref = _VAR_REF.fullmatch(_env(services[POSTGRES])["POSTGRES_PASSWORD"])
    assert ref and ref["name"] == "POSTGRES_PASSWORD" and ref["op"] == ":?"


# --------------------------------------------------------------------------- images


def test_images_are_the_official_ones(services: dict[str, Any]) -> None:
    expected = {
        POSTGRES: "postgres",
        SCHEMA_JOB: "temporalio/admin-tools",
        SERVER: "temporalio/server",
        BOOTSTRAP_JOB: "temporalio/admin-tools",
        UI: "temporalio/ui",
    }
    for name, repo in expected.items():
        assert _image_parts(services[name]["image"])[0] == repo, name


def test_nothing_uses_the_deprecated_auto_setup_image(services: dict[str, Any]) -> None:
    for name, service in services.items():
        assert "auto-setup" not in str(service.get("image", "")), name


def test_image_versions_are_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        _, tag = _image_parts(service["image"])
        assert tag != "latest", name
        for ref in _VAR_REF.finditer(tag):
            assert ref["op"] in (":-", "-") and ref["arg"], f"{name}: {tag} needs a default"
        if name == POSTGRES:
            default = _VAR_REF.sub(lambda m: m["arg"] or "", tag)
            assert re.fullmatch(r"\d+(\.\d+)*", default), f"pin a postgres major: {tag}"


# --------------------------------------------------------------------------- the jobs


def test_schema_job_sets_up_and_updates_both_databases(services: dict[str, Any]) -> None:
    text = _command_text(services[SCHEMA_JOB])
    assert "temporal-sql-tool" in text
    assert "postgres12" in text
    for db, schema_dir in (("temporal", "temporal"), ("temporal_visibility", "visibility")):
        assert re.search(rf"--db {db} create\b", text), db
        assert re.search(rf"--db {db} setup-schema -v 0\.0\b", text), db
        assert re.search(
            rf"--db {db} update-schema -d \S*(/etc/temporal/schema/postgresql/v12|schema)"
            rf"/{schema_dir}/versioned",
            text,
        ), db
    assert "/etc/temporal/schema/postgresql/v12" in text


def test_server_is_configured_for_postgres_persistence_and_visibility(
    services: dict[str, Any],
) -> None:
    server = services[SERVER]
    env = _env(server)
    assert env["DB"] == "postgres12"
    assert env["DB_PORT"] == "5432"
    assert env["POSTGRES_SEEDS"] == POSTGRES
    assert env.get("POSTGRES_USER")
    assert env.get("POSTGRES_PWD")
    assert env.get("ENABLE_ES", "false").lower() == "false"  # SQL visibility
    assert env.get("VISIBILITY_DBNAME", "temporal_visibility") == "temporal_visibility"
    assert env.get("DBNAME", "temporal") == "temporal"


def test_server_reads_the_dynamic_config_it_is_given(services: dict[str, Any]) -> None:
    server = services[SERVER]
    path = _env(server)["DYNAMIC_CONFIG_FILE_PATH"]
    targets = [c["target"] for c in server.get("configs", []) if isinstance(c, dict)]
    targets += [str(v).split(":")[1] for v in server.get("volumes", []) if isinstance(v, str)]
    assert any(path == t or path.startswith(t.rstrip("/") + "/") for t in targets), (
        f"{path} is not mounted into the server container"
    )


def _published_container_ports(service: dict[str, Any]) -> set[int]:
    ports = set()
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:
            ports.add(int(_VAR_REF.sub("x", str(entry)).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def test_frontend_and_ui_ports_are_published(services: dict[str, Any]) -> None:
    assert 7233 in _published_container_ports(services[SERVER])
    assert 8080 in _published_container_ports(services[UI])
    assert _env(services[UI])["TEMPORAL_ADDRESS"] == f"{SERVER}:7233"


def test_bootstrap_job_creates_the_namespace_if_missing(services: dict[str, Any]) -> None:
    job = services[BOOTSTRAP_JOB]
    text = _command_text(job)
    assert "temporal operator namespace describe" in text
    assert "temporal operator namespace create" in text
    namespaces = [
        ref
        for value in _env(job).values()
        if (ref := _VAR_REF.fullmatch(value)) and "NAMESPACE" in ref["name"]
    ]
    assert namespaces and namespaces[0]["arg"] == "default", "default `default`, overridable"


def test_bootstrap_registers_exactly_the_projects_search_attributes(
    services: dict[str, Any],
) -> None:
    text = _command_text(services[BOOTSTRAP_JOB])
    assert "temporal operator search-attribute create" in text
    assert _registered_search_attributes(text) == _expected_search_attributes()


def test_every_search_attribute_type_has_a_cli_name() -> None:
    assert {key.indexed_value_type for key in ALL} <= set(CLI_TYPE_NAMES)
    assert set(CLI_TYPE_NAMES) == set(IVT)


def test_the_search_attribute_parser_notices_differences() -> None:
    # The comparison above is only as good as the parser: make sure it can tell.
    command = (
        'temporal operator search-attribute create --namespace "$$NS" \\\n'
        "  --name OrderStatus --type Keyword \\\n"
        "  --name Amount --type Double\n"
    )
    assert _registered_search_attributes(command) == {
        ("OrderStatus", "Keyword"),
        ("Amount", "Double"),
    }
    with pytest.raises(AssertionError):
        _registered_search_attributes(command + "  --name Dangling\n")

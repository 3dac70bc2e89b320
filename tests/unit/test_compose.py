"""Checks of the full stack in containers (`docker-compose.yml`, which includes
`docker-compose.temporal.yml`, the `Dockerfile`, `.env.example`), which nothing here can run.

What a user would hit first is pinned down instead: a command `o2c` does not have, a
variable the settings never read, a database nobody creates, a port that is not where the
CLI looks, an image that installs differently from `scripts/setup.sh`, or a secret in the
image. The Temporal services themselves are checked in tests/integration/test_compose_file.py.
"""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import typer
import typer.main
import yaml
from sqlalchemy.engine import make_url

from o2c_service.codec.keys import new_key
from o2c_service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
STACK_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
SETUP_SCRIPT = ROOT / "scripts" / "setup.sh"
INSTALL_SCRIPT = ROOT / "scripts" / "install"
README = ROOT / "README.md"

SANDBOX_COMMAND = "sandbox"
SANDBOX_URLS = {
    "O2C_CRM_URL": "crm_url",
    "O2C_BILLING_URL": "billing_url",
    "O2C_LOGISTICS_URL": "logistics_url",
    "O2C_PAYMENTS_URL": "payments_url",
}
# Values for the variables the files require, as .env would hold them.
REQUIRED_VALUES = {"POSTGRES_PASSWORD": "0123abcd", "O2C_CODEC_KEYS": new_key("test").line()}

_VAR_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
_O2C_NAME = re.compile(r"\bO2C_[A-Z0-9_]+\b")
_INSTALL_CALL = re.compile(r"\bsh scripts/install (?P<python>\S+)(?: (?P<extra>[^\s;&|]+))?")


# --------------------------------------------------------------------------- helpers


def _load(path: Path) -> dict[str, Any]:
    return cast(dict[str, Any], yaml.safe_load(path.read_text(encoding="utf-8")))


def _compose_files() -> list[Path]:
    """docker-compose.yml and every file it includes."""
    included = [ROOT / str(entry) for entry in _load(STACK_FILE).get("include", [])]
    return [STACK_FILE, *included]


def _stack() -> dict[str, dict[str, Any]]:
    """Every service `docker compose up` runs in this folder."""
    services: dict[str, dict[str, Any]] = {}
    for path in _compose_files():
        for name, service in _load(path)["services"].items():
            assert name not in services, f"{name} is defined twice"
            services[name] = service
    return services


def _o2c_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _stack().items() if str(s.get("image", "")).startswith("o2c:")}


def _resolve(text: str, env: dict[str, str] | None = None) -> str:
    """Compose's interpolation, with .env holding REQUIRED_VALUES and nothing else."""
    values = REQUIRED_VALUES | (env or {})

    def one(ref: re.Match[str]) -> str:
        if ref["name"] in values:
            return values[ref["name"]]
        assert ref["op"] in (":-", "-"), f"{ref[0]} is required but has no value in .env"
        return ref["arg"] or ""

    return _VAR_REF.sub(one, text).replace("$$", "$")


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def _argv(service: dict[str, Any]) -> list[str]:
    """What the container runs: its entrypoint (else the Dockerfile's) and command."""

    def as_list(value: str | list[Any]) -> list[str]:
        return shlex.split(value) if isinstance(value, str) else [str(x) for x in value]

    entrypoint = service.get("entrypoint") or _dockerfile_exec_form("ENTRYPOINT")
    command = service.get("command") or _dockerfile_exec_form("CMD")
    return as_list(entrypoint) + as_list(command)


def _dockerfile_instructions() -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, arguments = line.partition(" ")
            yield instruction.upper(), arguments.strip()


def _dockerfile_exec_form(instruction: str) -> list[str]:
    found = [args for name, args in _dockerfile_instructions() if name == instruction]
    assert found, f"the Dockerfile has no {instruction}"
    return cast(list[str], yaml.safe_load(found[-1]))  # a JSON array is YAML too


def _o2c_app() -> typer.Typer:
    """The Typer app behind pyproject's `o2c` script."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    module_name, _, _ = pyproject["project"]["scripts"]["o2c"].partition(":")
    module = importlib.import_module(module_name)
    apps = [value for value in vars(module).values() if isinstance(value, typer.Typer)]
    assert len(apps) == 1, f"{module_name} should hold one Typer app"
    return apps[0]


def _o2c_command(args: list[str]) -> str:
    """The `o2c` command that `args` runs, e.g. `keys create`; fails on an unknown one."""

    def subcommands(command: object) -> dict[str, object] | None:
        """A group's commands by name (Typer's vendored Click, so no isinstance)."""
        found = getattr(command, "commands", None)
        return found if isinstance(found, dict) else None

    command: object = typer.main.get_command(_o2c_app())
    path: list[str] = []
    for arg in args:
        group = subcommands(command)
        if group is None or arg.startswith("-"):
            break
        assert arg in group, f"`o2c {' '.join([*path, arg])}` is not a command of o2c"
        command, path = group[arg], [*path, arg]
    assert path and subcommands(command) is None, f"`o2c {' '.join(args)}` runs nothing"
    return " ".join(path)


def _setting_names() -> set[str]:
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return {prefix + field.upper() for field in Settings.model_fields}


def _env_example() -> dict[str, str]:
    """Its variables, the commented-out optional ones included."""
    found = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            found[match[1]] = match[2]
    return found


def _o2c_names_used() -> set[str]:
    """Every O2C_ variable the compose files, the Dockerfile and .env.example name."""
    texts = [path.read_text(encoding="utf-8") for path in _compose_files()]
    texts += [DOCKERFILE.read_text(encoding="utf-8"), "\n".join(_env_example())]
    return {name for text in texts for name in _O2C_NAME.findall(text)}


def _published(service: dict[str, Any]) -> set[tuple[int, int]]:
    """(host port, container port) of each published port."""
    ports = set()
    for entry in service.get("ports", []):
        parts = _resolve(str(entry)).split("/")[0].split(":")
        assert len(parts) >= 2, f"{entry}: publish host and container port both"
        ports.add((int(parts[-2]), int(parts[-1])))
    return ports


def _default_port(field: str) -> int:
    default = str(Settings.model_fields[field].default)
    port = urlsplit(default if "//" in default else f"//{default}").port
    assert port is not None, f"{field} default {default} has no port"
    return port


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


# --------------------------------------------------------------------------- the files


@pytest.mark.parametrize("path", _compose_files(), ids=lambda p: p.name)
def test_every_compose_file_parses_into_services(path: Path) -> None:
    data = _load(path)
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)


def test_docker_compose_up_runs_temporal_and_every_o2c_process() -> None:
    assert ROOT / "docker-compose.temporal.yml" in _compose_files()
    assert {"postgresql", "temporal", "temporal-ui", "worker", "api", "sandbox"} <= set(_stack())


def test_every_dollar_is_escaped_or_a_compose_variable() -> None:
    text = _VAR_REF.sub("", STACK_FILE.read_text(encoding="utf-8").replace("$$", ""))
    assert "$" not in text, "write $$ for the shell, or Compose substitutes it first"


def test_the_o2c_services_are_built_from_the_dockerfile_here() -> None:
    services = _o2c_services()
    assert set(services) >= {"worker", "api", "sandbox"}
    for name, service in services.items():
        assert service.get("build") == ".", name


def test_images_are_pinned_by_tag() -> None:
    for name, service in _stack().items():
        image = _resolve(str(service["image"]))
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag and tag not in ("", "latest"), f"{name}: {image}"
    base = [args for name, args in _dockerfile_instructions() if name == "FROM"]
    assert len(base) == 1 and re.fullmatch(r"python:3\.11[\w.-]*-slim[\w.-]*", base[0])


# --------------------------------------------------------------------------- commands


@pytest.mark.parametrize("service", list(_o2c_services()))
def test_each_o2c_service_runs_a_command_of_o2c(service: str) -> None:
    argv = _argv(_o2c_services()[service])
    assert argv[0] == "o2c"
    _o2c_command(argv[1:])


def test_the_services_run_worker_api_and_sandbox() -> None:
    commands = {name: _argv(s)[1:] for name, s in _o2c_services().items()}
    assert commands["worker"] == ["worker"]
    assert commands["api"] == ["api"]
    assert commands["sandbox"] == [SANDBOX_COMMAND]


def test_the_command_check_refuses_what_o2c_lacks() -> None:
    assert _o2c_command(["keys", "create", "--name", "x"]) == "keys create"
    with pytest.raises(AssertionError, match="not a command"):
        _o2c_command(["workers"])
    with pytest.raises(AssertionError, match="runs nothing"):
        _o2c_command(["keys"])


def test_the_readmes_compose_commands_are_commands_of_o2c() -> None:
    section = README.read_text(encoding="utf-8").split("## Everything in containers", 1)[1]
    section = section.split("\n## ", 1)[0]
    calls = re.findall(r"docker compose exec (?:-e \S+ )*\S+ o2c ([^\n#|>)`]+)", section)
    assert calls, "the section shows how to run o2c in a container"
    for call in calls:
        _o2c_command(shlex.split(call))


# --------------------------------------------------------------------------- settings


def test_every_o2c_variable_is_a_setting() -> None:
    unknown = _o2c_names_used() - _setting_names()
    assert not unknown, f"no field of o2c_service/settings.py reads {sorted(unknown)}"


@pytest.mark.parametrize("service", ["worker", "api", "sandbox"])
def test_each_service_environment_makes_valid_settings(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in _setting_names():
        monkeypatch.delenv(name, raising=False)
    env = {k: _resolve(v) for k, v in _env(_stack()[service]).items()}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    if "O2C_CODEC_KEYS" in env:
        settings.codec()  # the worker and the API refuse to start without keys
    for url in (settings.database_url, settings.api_database_url):
        if url in (env.get("O2C_DATABASE_URL"), env.get("O2C_API_DATABASE_URL")):
            assert make_url(url).drivername == "postgresql+psycopg", url


def test_the_database_driver_is_one_the_project_installs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert any(dep.startswith("psycopg[") for dep in pyproject["project"]["dependencies"])


def test_the_worker_and_the_sandbox_share_the_local_systems_database() -> None:
    stack = _stack()
    urls = {
        _resolve(_env(stack[name])["O2C_DATABASE_URL"]) for name in ("worker", "sandbox", "api")
    }
    assert len(urls) == 1


def test_the_databases_o2c_uses_are_created_before_it_starts() -> None:
    stack = _stack()
    job = stack["o2c-databases"]
    created = re.findall(r"for db in ([\w ]+); do", "\n".join(job["command"]))
    assert created, "the job names the databases it creates"
    for name in ("worker", "api", "sandbox"):
        assert _depends_on(stack[name]).get("o2c-databases") == "service_completed_successfully"
        for key in ("O2C_DATABASE_URL", "O2C_API_DATABASE_URL"):
            if key in _env(stack[name]):
                url = make_url(_resolve(_env(stack[name])[key]))
                assert url.host == "postgresql"
                assert url.database in created[0].split(), f"{name}: nobody creates {url}"
    assert _depends_on(job).get("postgresql") == "service_healthy"


def test_worker_and_api_start_once_temporal_knows_the_search_attributes() -> None:
    stack = _stack()
    for name in ("worker", "api"):
        deps = _depends_on(stack[name])
        assert deps.get("temporal-bootstrap") == "service_completed_successfully", name
        assert _resolve(_env(stack[name])["O2C_TEMPORAL_ADDRESS"]) == "temporal:7233", name
    assert _depends_on(stack["worker"]).get("sandbox") == "service_healthy"


def test_the_worker_finds_each_system_at_the_sandbox() -> None:
    worker = _env(_stack()["worker"])
    for name in SANDBOX_URLS:
        assert urlsplit(worker[name]).hostname == "sandbox", name
    assert _env(_stack()["sandbox"])["O2C_SANDBOX_HOST"] == "0.0.0.0"


# --------------------------------------------------------------------------- ports


def test_the_api_is_published_where_the_cli_looks_for_it() -> None:
    api = _stack()["api"]
    port = Settings.model_fields["api_port"].default
    assert _published(api) == {(port, port)}
    assert _default_port("api_url") == port
    assert _resolve(_env(api)["O2C_API_HOST"]) == "0.0.0.0"


def test_temporal_is_published_at_the_default_address() -> None:
    port = _default_port("temporal_address")
    assert (port, port) in _published(_stack()["temporal"])


def test_the_apis_ui_links_point_at_the_published_ui() -> None:
    # The default (8233) is the dev server's UI; the UI image serves on 8080, so the API is told.
    stack = _stack()
    ui_url = urlsplit(_resolve(_env(stack["api"])["O2C_TEMPORAL_UI_URL"]))
    assert ui_url.port in {host for host, _ in _published(stack["temporal-ui"])}


def test_the_sandbox_publishes_the_ports_the_worker_calls() -> None:
    worker = _env(_stack()["worker"])
    ports = {cast(int, urlsplit(worker[name]).port) for name in SANDBOX_URLS}
    assert ports == {8101, 8102, 8103, 8104}
    assert _published(_stack()["sandbox"]) == {(port, port) for port in ports}


def test_the_sandbox_ports_are_the_settings_defaults() -> None:
    defaults = Settings().sandbox_ports()
    for service in ("worker", "api"):
        env = _env(_stack()[service])
        for name, field in SANDBOX_URLS.items():
            system = field.removesuffix("_url")
            assert urlsplit(env[name]).port == defaults[system], f"{service} {name}"


# --------------------------------------------------------------------------- the image


def test_the_image_installs_as_the_setup_script_does_without_test_extras() -> None:
    docker = [args for name, args in _dockerfile_instructions() if name == "RUN"]
    in_image = [m for run in docker for m in _INSTALL_CALL.finditer(run)]
    in_venv = list(_INSTALL_CALL.finditer(SETUP_SCRIPT.read_text(encoding="utf-8")))
    assert len(in_image) == 1 and len(in_venv) == 1
    assert in_image[0]["extra"] is None, "the image takes no test or dev extras"
    assert in_venv[0]["extra"] == "test"
    for path in (DOCKERFILE, SETUP_SCRIPT):
        assert "pip install" not in path.read_text(encoding="utf-8"), (
            f"{path.name}: use scripts/install"
        )
    assert INSTALL_SCRIPT.read_text(encoding="utf-8").count("pip install") == 1


def test_the_image_holds_every_package_and_no_tests() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = {args.split()[0] for name, args in _dockerfile_instructions() if name == "COPY"}
    assert packages <= copied
    assert "tests" not in copied and "." not in copied


def test_the_image_runs_o2c_as_a_user_other_than_root() -> None:
    users = [args for name, args in _dockerfile_instructions() if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert _dockerfile_exec_form("ENTRYPOINT") == ["o2c"]


def test_no_secret_is_baked_into_the_image() -> None:
    baked = " ".join(args for name, args in _dockerfile_instructions() if name in ("ENV", "ARG"))
    for secret in ("O2C_CODEC_KEYS", "O2C_API_KEY", "PASSWORD", "O2C_DATABASE_URL"):
        assert secret not in baked
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored and ".o2c/" in ignored
    assert ".env" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()


def test_env_example_names_every_required_variable_and_holds_no_secret() -> None:
    required = {
        ref["name"]
        for path in _compose_files()
        for ref in _VAR_REF.finditer(path.read_text(encoding="utf-8"))
        if ref["op"] in (":?", "?")
    }
    example = _env_example()
    assert required == {"POSTGRES_PASSWORD", "O2C_CODEC_KEYS"}
    assert required <= set(example)
    assert all(value == "" for name, value in example.items() if name in required)

"""The multi-machine deployment: docker-compose.yml, the Dockerfile and .dockerignore.

No Docker engine runs in CI, so this checks the files' structure against the code they deploy: the search
attributes the workflows upsert, the policy settings, the settings' environment names and the console script.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from policy.settings import PolicySnapshot
from workflows.search_attributes import REGISTRATION

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

SERVICES = ("postgresql", "temporal", "temporal-search-attributes", "temporal-ui", "migrate", "worker", "api")
APP_SERVICES = ("migrate", "worker", "api")
LONG_RUNNING = ("worker", "api")
REGISTRAR = "temporal-search-attributes"
SECRETS = ("REFUND_DESK_JWT_SECRET", "REFUND_DESK_VAULT_KEYS", "REFUND_DESK_PAYLOAD_KEYS")

# ------------------------------------------------------------------------------------------------ helpers


class MissingVariable(Exception):
    """A `${NAME:?message}` whose NAME the host environment does not set: `docker compose` refuses to run."""


_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, host: Mapping[str, str] | None = None) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?message}`, against `host` as the environment."""
    host = host or {}

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        if host.get(name):
            return host[name]
        if op.endswith("?"):
            raise MissingVariable(f"{name}: {arg}")
        return arg if op.endswith("-") else ""

    return _VARIABLE.sub(replace, value.replace("$$", "\0")).replace("\0", "$")


@cache
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict), "docker-compose.yml must hold a mapping"
    return loaded


def service(name: str) -> dict[str, Any]:
    services = compose().get("services") or {}
    assert name in services, f"docker-compose.yml has no service {name!r} (it has {sorted(services)})"
    found = services[name]
    assert isinstance(found, dict), f"service {name!r} must be a mapping"
    return found


def environment(name: str) -> dict[str, str]:
    """A service's environment as written (uninterpolated), from either the list or the mapping form."""
    raw = service(name).get("environment") or {}
    if isinstance(raw, list):
        pairs = (str(item).partition("=") for item in raw)
        return {key: value for key, _, value in pairs}
    return {str(key): "" if value is None else str(value) for key, value in raw.items()}


def depends_on(name: str) -> dict[str, str]:
    """Service -> condition; the short list form means `service_started`."""
    raw = service(name).get("depends_on") or {}
    if isinstance(raw, list):
        return {str(dep): "service_started" for dep in raw}
    return {str(dep): str((spec or {}).get("condition", "service_started")) for dep, spec in raw.items()}


def command(name: str) -> list[str]:
    raw = service(name).get("command")
    if raw is None:
        return []
    return shlex.split(raw) if isinstance(raw, str) else [str(part) for part in raw]


def published_ports(name: str) -> set[tuple[int, int]]:
    """(host port, container port) for every port a service publishes, short or long syntax."""
    found: set[tuple[int, int]] = set()
    for port in service(name).get("ports") or []:
        if isinstance(port, dict):
            if "published" in port:
                found.add((int(port["published"]), int(port["target"])))
            continue
        parts = str(port).split("/")[0].split(":")
        if len(parts) >= 2:
            found.add((int(parts[-2]), int(parts[-1])))
    return found


def published_hosts(name: str) -> set[str]:
    """The host addresses a service's published ports bind to ("" for every interface)."""
    hosts: set[str] = set()
    for port in service(name).get("ports") or []:
        if isinstance(port, dict):
            hosts.add(str(port.get("host_ip", "")))
            continue
        parts = str(port).split("/")[0].split(":")
        hosts.add(parts[0] if len(parts) == 3 else "")
    return hosts


def test_temporal_is_published_on_loopback_only() -> None:
    """The frontend and the web UI answer anyone who reaches them, with no TLS and no authorizer here."""
    for name in ("temporal", "temporal-ui"):
        assert published_hosts(name) == {"127.0.0.1"}, name


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    instructions = []
    for line in lines:
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def exec_form(arguments: str) -> list[str]:
    parsed = json.loads(arguments)
    assert isinstance(parsed, list), f"expected the exec (JSON list) form, got {arguments!r}"
    return [str(part) for part in parsed]


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


# ------------------------------------------------------------------------------------------------ services


def test_every_service_is_defined() -> None:
    services = compose().get("services") or {}
    missing = [name for name in SERVICES if name not in services]
    assert not missing, f"docker-compose.yml lacks the services {missing}"


def test_postgresql_keeps_its_data_and_reports_health() -> None:
    postgresql = service("postgresql")
    assert str(postgresql.get("image", "")).startswith("postgres:"), "postgresql must run the postgres image"
    env = environment("postgresql")
    for key in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"):
        assert interpolate(env.get(key, "")), f"postgresql needs {key}"
    volumes = [str(volume) for volume in postgresql.get("volumes") or []]
    named = [volume.split(":")[0] for volume in volumes if volume.endswith(":/var/lib/postgresql/data")]
    assert named, f"postgresql must keep /var/lib/postgresql/data on a volume, has {volumes}"
    assert named[0] in (compose().get("volumes") or {}), f"volume {named[0]!r} is not declared at top level"
    healthcheck = " ".join(str(part) for part in (postgresql.get("healthcheck") or {}).get("test", []))
    assert "pg_isready" in healthcheck, "postgresql needs a pg_isready healthcheck for `service_healthy`"


@pytest.mark.parametrize("host", [{}, {"POSTGRES_USER": "desk", "POSTGRES_PASSWORD": "s3cret"}])
def test_temporal_persists_in_postgresql(host: dict[str, str]) -> None:
    temporal = service("temporal")
    image = str(temporal.get("image", ""))
    assert image.startswith("temporalio/auto-setup:"), f"temporal must run temporalio/auto-setup, not {image}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", image.partition(":")[2]), f"pin the server version: {image}"
    env = {key: interpolate(value, host) for key, value in environment("temporal").items()}
    postgresql = {key: interpolate(value, host) for key, value in environment("postgresql").items()}
    assert env.get("DB") == "postgres12", "Temporal's SQL plugin for PostgreSQL is DB=postgres12"
    assert env.get("POSTGRES_SEEDS") == "postgresql", "POSTGRES_SEEDS must name the postgresql service"
    assert env.get("DB_PORT") == "5432"
    assert env.get("POSTGRES_USER") == postgresql["POSTGRES_USER"], "temporal logs in as postgresql's user"
    assert env.get("POSTGRES_PWD") == postgresql["POSTGRES_PASSWORD"], "temporal uses postgresql's password"
    assert depends_on("temporal").get("postgresql") == "service_healthy", "temporal must wait for postgresql"


def test_the_ui_talks_to_temporal_and_is_published_on_8233() -> None:
    ui = service("temporal-ui")
    assert str(ui.get("image", "")).startswith("temporalio/ui:"), "temporal-ui must run temporalio/ui"
    assert environment("temporal-ui").get("TEMPORAL_ADDRESS") == "temporal:7233"
    assert "temporal" in depends_on("temporal-ui")
    assert (8233, 8080) in published_ports("temporal-ui"), "the web UI belongs on host port 8233"


def test_temporal_is_published_on_7233() -> None:
    assert (7233, 7233) in published_ports("temporal"), "the CLI and SDKs on the host reach Temporal on 7233"


# ---------------------------------------------------------------------------------------- search attributes

_CREATE = re.compile(
    r"temporal\s+operator\s+search-attribute\s+create"
    r"\s+--namespace\s+(?P<namespace>\S+)\s+--name\s+(?P<name>\S+)\s+--type\s+(?P<type>\S+)"
)


def test_the_search_attributes_registered_are_those_the_workflows_upsert() -> None:
    registrar = service(REGISTRAR)
    assert str(registrar.get("image", "")).startswith("temporalio/admin-tools:")
    script = " ".join([*[str(part) for part in registrar.get("entrypoint") or []], *command(REGISTRAR)])
    created = [match.groupdict() for match in _CREATE.finditer(script)]
    names = [entry["name"] for entry in created]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f"registered twice: {duplicates}"
    assert {entry["name"]: entry["type"] for entry in created} == REGISTRATION, (
        "temporal-search-attributes must register exactly workflows.search_attributes.REGISTRATION"
    )
    namespace = environment("worker").get("TEMPORAL_NAMESPACE", "default")
    wrong = [entry["name"] for entry in created if entry["namespace"] != namespace]
    assert not wrong, f"{wrong} are registered outside the workers' namespace {namespace!r}"


def test_the_search_attribute_registration_reaches_temporal() -> None:
    address = environment(REGISTRAR).get("TEMPORAL_ADDRESS")
    script = " ".join(command(REGISTRAR))
    assert address == "temporal:7233" or "--address temporal:7233" in script, (
        "the registration must address the temporal service (TEMPORAL_ADDRESS=temporal:7233 or --address)"
    )
    assert "temporal" in depends_on(REGISTRAR)
    assert service(REGISTRAR).get("restart", "no") == "no", "a one-shot service must not restart forever"


# ---------------------------------------------------------------------------------------- the project image


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_build_the_project_dockerfile(name: str) -> None:
    build = service(name).get("build")
    assert build is not None, f"{name} must build the project's image"
    context, dockerfile = (
        (build, "Dockerfile")
        if isinstance(build, str)
        else (
            build.get("context", "."),
            build.get("dockerfile", "Dockerfile"),
        )
    )
    assert (ROOT / context / dockerfile).resolve() == DOCKERFILE, f"{name} builds {context}/{dockerfile}"


def test_app_services_run_migrate_worker_and_serve() -> None:
    assert command("migrate") == ["migrate"]
    assert command("worker") == ["worker"]
    api = command("api")
    assert api[:1] == ["serve"], f"api must run `refund-desk serve ...`, runs {api}"
    assert "--host" in api and api[api.index("--host") + 1] == "0.0.0.0", "serve must listen beyond loopback"
    port = int(api[api.index("--port") + 1]) if "--port" in api else None
    assert port == 8000, f"serve must listen on 8000, listens on {port}"
    assert (8000, 8000) in published_ports("api"), "the API belongs on host port 8000"


def test_the_api_reports_health_on_healthz() -> None:
    check = (service("api").get("healthcheck") or {}).get("test", [])
    text = " ".join(str(part) for part in check) if isinstance(check, list) else str(check)
    assert "/healthz" in text and ":8000" in text, f"api's healthcheck must GET /healthz on 8000: {text!r}"
    assert "curl" not in text and "wget" not in text, "python:*-slim has neither curl nor wget"


def test_migrate_waits_for_postgresql() -> None:
    assert depends_on("migrate").get("postgresql") == "service_healthy"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_worker_and_api_start_after_migration_and_registration(name: str) -> None:
    deps = depends_on(name)
    assert "temporal" in deps, f"{name} must depend on temporal"
    for one_shot in ("migrate", REGISTRAR):
        assert deps.get(one_shot) == "service_completed_successfully", (
            f"{name} must wait for {one_shot} to complete successfully, has {deps.get(one_shot)!r}"
        )


# ------------------------------------------------------------------------------------------- environment


def test_app_services_share_one_environment() -> None:
    first, *others = APP_SERVICES
    for name in others:
        assert environment(name) == environment(first), f"{name}'s environment differs from {first}'s"


def test_the_environment_points_at_temporal() -> None:
    env = environment("worker")
    host, _, port = env.get("TEMPORAL_ADDRESS", "").partition(":")
    assert (host, port) == ("temporal", "7233"), f"TEMPORAL_ADDRESS must be temporal:7233, is {host}:{port}"
    assert env.get("TEMPORAL_NAMESPACE"), "set TEMPORAL_NAMESPACE"
    assert env.get("REFUND_DESK_TASK_QUEUE"), "set REFUND_DESK_TASK_QUEUE"


@pytest.mark.parametrize("host", [{}, {"POSTGRES_USER": "desk", "POSTGRES_PASSWORD": "s3cret"}])
def test_the_ledger_url_points_at_postgresql(host: dict[str, str]) -> None:
    url = make_url(interpolate(environment("worker").get("DATABASE_URL", ""), host))
    postgresql = {key: interpolate(value, host) for key, value in environment("postgresql").items()}
    assert url.drivername == "postgresql+asyncpg", f"the ledger runs on asyncpg, not {url.drivername}"
    assert (url.host, url.port or 5432) == ("postgresql", 5432), f"DATABASE_URL must name postgresql: {url}"
    assert url.database == postgresql["POSTGRES_DB"], "DATABASE_URL must name the database postgresql creates"
    assert url.username == postgresql["POSTGRES_USER"], "DATABASE_URL's user must be postgresql's"
    assert url.password == postgresql["POSTGRES_PASSWORD"], "DATABASE_URL's password must be postgresql's"


@pytest.mark.parametrize("name", SECRETS)
def test_secrets_come_from_the_host_and_are_required(name: str) -> None:
    value = environment("worker").get(name)
    assert value is not None, f"{name} must be passed to the app services"
    with pytest.raises(MissingVariable):
        interpolate(value, {})
    assert interpolate(value, {name: "from-the-host"}) == "from-the-host", f"{name} must be ${{{name}:?...}}"


@pytest.mark.parametrize("field", sorted(PolicySnapshot.model_fields))
def test_policy_settings_pass_through_with_the_policy_defaults(field: str) -> None:
    key = f"REFUND_DESK_{field.upper()}"
    value = environment("worker").get(key)
    assert value is not None, f"the policy setting {field} must be passed through as {key}"
    default = PolicySnapshot.model_fields[field].default
    written = interpolate(value)
    parsed = getattr(PolicySnapshot.model_validate({field: written}), field)
    assert parsed == default, f"{key} defaults to {written!r} ({parsed}), the policy's default is {default}"
    override = "PT30S" if isinstance(default, timedelta) else str(default)
    assert interpolate(value, {key: override}) == override, f"{key} must read ${{{key}:-...}} from the host"


def test_every_duration_setting_is_covered() -> None:
    durations = [name for name, info in PolicySnapshot.model_fields.items() if info.annotation is timedelta]
    assert len(durations) >= 6, f"PolicySnapshot's durations were not recognised: {durations}"
    missing = [name for name in durations if f"REFUND_DESK_{name.upper()}" not in environment("api")]
    assert not missing, f"the api does not receive {missing}"


# -------------------------------------------------------------------------------------------- Dockerfile


def test_the_dockerfile_runs_the_console_script_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    base = next(arguments for keyword, arguments in instructions if keyword == "FROM")
    assert re.fullmatch(r"python:3\.1[1-9]-slim\S*", base), f"base the image on python:3.1x-slim, not {base}"
    entrypoint = [exec_form(arguments) for keyword, arguments in instructions if keyword == "ENTRYPOINT"]
    assert entrypoint and entrypoint[-1] == ["refund-desk"], f"ENTRYPOINT must be refund-desk: {entrypoint}"
    assert "refund-desk" in pyproject()["project"]["scripts"], "pyproject.toml must define refund-desk"
    cmd = [exec_form(arguments) for keyword, arguments in instructions if keyword == "CMD"]
    assert cmd and cmd[-1] == ["serve", "--host", "0.0.0.0", "--port", "8000"], f"CMD: {cmd}"
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"the image must not run as root: {users}"
    installs = [
        arguments for keyword, arguments in instructions if keyword == "RUN" and "pip install" in arguments
    ]
    assert any("--no-cache-dir" in run and re.search(r"pip install[^&;]*\s\.(\s|$)", run) for run in installs)


def test_the_dockerfile_copies_everything_the_package_installs() -> None:
    tool = pyproject()["tool"]["setuptools"]
    needed = {pattern.rstrip("*").split(".")[0] for pattern in tool["packages"]["find"]["include"]}
    needed |= {f"{module}.py" for module in tool.get("py-modules", [])}
    needed |= {"pyproject.toml", pyproject()["project"]["readme"]}
    copied: set[str] = set()
    for keyword, arguments in dockerfile_instructions():
        if keyword == "COPY":
            *sources, _destination = [part for part in arguments.split() if not part.startswith("--")]
            copied |= {source.rstrip("/") for source in sources}
    missing = sorted(needed - copied)
    assert not missing, f"the Dockerfile does not COPY {missing}, which `pip install .` needs"


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    missing = sorted({".venv", ".data", ".git"} - ignored)
    assert not missing, f".dockerignore must exclude {missing}"

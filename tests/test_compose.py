"""The multi-machine deployment: docker-compose.yml, deploy/, the Dockerfile and .dockerignore.

No Docker engine runs in CI, so this checks the files' structure against the code they deploy: the search
attributes the workflows upsert, the settings and their `*_FILE` secrets, the policy settings, the codec's
route, the API's body limits, the worker's shutdown grace and metrics address, the metric names the
dashboard plots, and the console script. deploy/make-secrets.sh runs for real, and the settings classes
read what it writes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from datetime import timedelta
from decimal import Decimal
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
DEPLOY = ROOT / "deploy"
MAKE_SECRETS = DEPLOY / "make-secrets.sh"

SERVICES = (
    "postgresql",
    "temporal-schema",
    "temporal",
    "temporal-namespace",
    "temporal-ui",
    "migrate",
    "worker",
    "api",
    "proxy",
    "prometheus",
    "grafana",
)
ONE_SHOT = ("temporal-schema", "temporal-namespace", "migrate")
"""Services that run to completion; every other one runs until stopped and must report its health."""
APP_SERVICES = ("migrate", "worker", "api")
SCALABLE = ("worker", "api")
REGISTRAR = "temporal-namespace"
SCHEMA = "temporal-schema"
PROXY = "proxy"
OBSERVABILITY = ("prometheus", "grafana")
TEMPORAL_ROLE = "temporal"
LEDGER_ROLE = "refund_desk"
LEDGER_DATABASE = "refund_desk"
TEMPORAL_DATABASES = {"temporal": "temporal", "temporal_visibility": "visibility"}
"""Temporal's databases and the schema folder (under postgresql/v12/) each one's migrations come from."""

SECRET_SETTINGS: dict[str, str | None] = {
    "DATABASE_URL": "database_url",
    "REFUND_DESK_JWT_SECRET": "jwt_secret",
    "REFUND_DESK_VAULT_KEYS": "vault_keys",
    "REFUND_DESK_PAYLOAD_KEYS": "payload_keys",
    "REFUND_DESK_SMTP_URL": "smtp_url",
    "TEMPORAL_API_KEY": None,
}
"""Every setting that holds a secret -> the compose secret its `NAME_FILE` reads. None: not used by this
deployment (TEMPORAL_API_KEY is for Temporal Cloud; this compose runs its own server on a private network)."""
OPTIONAL_SECRETS = ("REFUND_DESK_SMTP_URL",)
"""Secret settings a deployment may leave unset: their `NAME_FILE` is `${NAME_FILE:-}`, empty (unset) unless
the host sets it, since the settings refuse an empty secret file."""

METRICS: dict[str, str] = {
    # The API's GET /metrics (starter/api/metrics.py): its requests, and the ledger's figures.
    "refund_desk_http_requests_total": "counter",
    "refund_desk_http_request_duration_seconds": "histogram",
    "refund_desk_complaints_open": "gauge",
    "refund_desk_escalations_total": "counter",
    "refund_desk_refunds_total": "counter",
    "refund_desk_refunded_amount_total": "counter",
    "refund_desk_replacements_total": "counter",
    "refund_desk_replacement_value_total": "counter",
    "refund_desk_notices_total": "counter",
    "refund_desk_dispatcher_lag_seconds": "gauge",
    # The worker's Temporal SDK endpoint (REFUND_DESK_WORKER_METRICS_ADDRESS) as temporalio 1.35 serves it
    # (docs/metrics.md, tests/test_worker_metrics.py): durations in seconds but no `_seconds` in the name,
    # counters without `_total`.
    "temporal_workflow_task_schedule_to_start_latency": "histogram",
    "temporal_sticky_cache_hit": "counter",
    "temporal_sticky_cache_miss": "counter",
    "temporal_worker_task_slots_available": "gauge",
}
"""The one list of metric names the dashboard may plot, each of which it must plot."""
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
_METRIC_NAME = re.compile(r"\b(?:refund_desk|temporal)_[a-z0-9_]+\b")

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


def services() -> dict[str, Any]:
    found = compose().get("services") or {}
    assert isinstance(found, dict)
    return found


def service(name: str) -> dict[str, Any]:
    assert name in services(), f"docker-compose.yml has no service {name!r} (it has {sorted(services())})"
    found = services()[name]
    assert isinstance(found, dict), f"service {name!r} must be a mapping"
    return found


def environment(name: str) -> dict[str, str]:
    """A service's environment as written (uninterpolated), from either the list or the mapping form; a key
    with no value (taken from the shell if set there) reads as ""."""
    raw = service(name).get("environment") or {}
    if isinstance(raw, list):
        pairs = (str(item).partition("=") for item in raw)
        return {key: value for key, _, value in pairs}
    return {str(key): "" if value is None else str(value) for key, value in raw.items()}


def depends_on(name: str) -> dict[str, str | None]:
    """Service -> condition as written; None where none is (the short list form, or a mapping without)."""
    raw = service(name).get("depends_on") or {}
    if isinstance(raw, list):
        return {str(dep): None for dep in raw}
    return {str(dep): (spec or {}).get("condition") for dep, spec in raw.items()}


def command(name: str) -> list[str]:
    raw = service(name).get("command")
    if raw is None:
        return []
    return shlex.split(raw) if isinstance(raw, str) else [str(part) for part in raw]


def script_of(name: str) -> str:
    """A service's entrypoint and command as one text."""
    raw = service(name).get("entrypoint") or []
    entrypoint = [raw] if isinstance(raw, str) else [str(part) for part in raw]
    return " ".join([*entrypoint, *command(name)])


def ports_of(name: str) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) for every port a service publishes ("" host: all)."""
    found: list[tuple[str, int, int]] = []
    for port in service(name).get("ports") or []:
        if isinstance(port, dict):
            found.append((str(port.get("host_ip", "")), int(port["published"]), int(port["target"])))
            continue
        parts = str(port).split("/")[0].split(":")
        host = parts[0] if len(parts) == 3 else ""
        published = int(parts[-2]) if len(parts) >= 2 else 0
        found.append((host, published, int(parts[-1])))
    return found


def published_port(name: str, target: int) -> int:
    matches = [published for _, published, container in ports_of(name) if container == target]
    assert matches, f"{name} does not publish its port {target}"
    return matches[0]


def secrets_of(name: str) -> set[str]:
    found: set[str] = set()
    for entry in service(name).get("secrets") or []:
        found.add(str(entry["source"]) if isinstance(entry, dict) else str(entry))
    return found


def mounts(name: str) -> dict[str, Path]:
    """Container path -> host path of every bind mount of a file or folder of this repository."""
    found: dict[str, Path] = {}
    for volume in service(name).get("volumes") or []:
        if isinstance(volume, dict):
            source, target = str(volume.get("source", "")), str(volume.get("target", ""))
        else:
            source, target, *_ = [*str(volume).split(":"), ""]
        if source.startswith("./"):
            found[target] = (ROOT / source).resolve()
    return found


def mounted(name: str, container_path: str) -> Path:
    """The repository file a service sees at `container_path`, through its mount or a folder's above."""
    for target, source in mounts(name).items():
        if container_path == target:
            return source
        if container_path.startswith(target.rstrip("/") + "/"):
            return source / container_path[len(target.rstrip("/")) + 1 :]
    raise AssertionError(f"{name} mounts nothing at {container_path} (mounts {sorted(mounts(name))})")


def compose_duration(text: str) -> timedelta:
    """Compose's durations: `40s`, `1m30s`, `1h`, `500ms`."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a compose duration: {text!r}"
    return timedelta(seconds=sum(float(number) * units[unit] for number, unit in parts))


def healthcheck_text(name: str) -> str:
    check = (service(name).get("healthcheck") or {}).get("test", [])
    return " ".join(str(part) for part in check) if isinstance(check, list) else str(check)


def image_of(name: str) -> tuple[str, str]:
    image = str(service(name).get("image", ""))
    repository, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    return repository, tag


def python_sources() -> Iterator[Path]:
    for folder in ("starter", "ledger", "dispatch", "policy", "activities", "workflows"):
        yield from (ROOT / folder).rglob("*.py")
    yield ROOT / "worker.py"


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


# ------------------------------------------------------------------------------------------- the whole file


def test_every_service_is_defined() -> None:
    missing = [name for name in SERVICES if name not in services()]
    assert not missing, f"docker-compose.yml lacks the services {missing}"


@pytest.mark.parametrize("name", SERVICES)
def test_every_third_party_image_is_pinned(name: str) -> None:
    if "build" in service(name):
        return  # the project's own image, built from this checkout
    repository, tag = image_of(name)
    assert repository and tag, f"{name} must name an image with a tag, not {service(name).get('image')!r}"
    assert tag != "latest" and "latest" not in tag, f"{name}: pin a version, not {tag!r}"
    assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?([-.][A-Za-z0-9.]+)?", tag), (
        f"{name}: pin at least major.minor ({repository}:{tag} floats)"
    )
    if repository.startswith("temporalio/"):
        assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"{name}: pin Temporal's images to a release: {tag}"


def test_no_service_runs_the_deprecated_auto_setup_image() -> None:
    for name in services():
        assert "auto-setup" not in str(service(name).get("image", "")), f"{name} runs temporalio/auto-setup"


@pytest.mark.parametrize("name", [name for name in SERVICES if name not in ONE_SHOT])
def test_every_long_running_service_reports_its_health(name: str) -> None:
    check = service(name).get("healthcheck") or {}
    assert not check.get("disable"), f"{name}'s healthcheck is disabled"
    text = healthcheck_text(name)
    assert text and text != "NONE", f"{name} needs a healthcheck: others wait on `service_healthy`"


@pytest.mark.parametrize("name", ONE_SHOT)
def test_one_shot_services_do_not_restart(name: str) -> None:
    assert service(name).get("restart", "no") == "no", f"{name} is one-shot: it must not restart forever"


def test_every_dependency_names_its_condition() -> None:
    for name in services():
        for dep, condition in depends_on(name).items():
            assert dep in services(), f"{name} depends on {dep}, which is not a service"
            expected = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert condition == expected, f"{name} must wait for {dep} with `{expected}`, has {condition!r}"


def test_every_published_port_is_on_loopback_only() -> None:
    """Nothing here has TLS, and Temporal's frontend no authorizer: only this machine may reach them."""
    for name in services():
        for host, published, target in ports_of(name):
            assert host == "127.0.0.1", f"{name} publishes {published}:{target} on {host or 'every address'}"


def test_only_the_observability_services_sit_in_a_profile() -> None:
    for name in services():
        profiles = service(name).get("profiles")
        if name in OBSERVABILITY:
            assert profiles == ["observability"], f"{name} belongs to the `observability` profile"
        else:
            assert not profiles, f"{name} must start with a plain `docker compose up`"


# ----------------------------------------------------------------------------------------------- secrets


def test_secrets_are_files_under_dot_secrets() -> None:
    declared = compose().get("secrets") or {}
    assert declared, "docker-compose.yml declares no secrets"
    for secret, spec in declared.items():
        assert set(spec) == {"file"}, f"secret {secret} must be file-based"
        assert spec["file"] == f"./.secrets/{secret}", f"secret {secret} must read ./.secrets/{secret}"
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert ".secrets" in ignored, ".dockerignore must keep .secrets out of the build context"


@pytest.mark.parametrize("name", SERVICES)
def test_every_secret_a_service_reads_is_mounted_in_it(name: str) -> None:
    text = json.dumps(service(name))
    for source in mounts(name).values():
        if source.is_file() and source.suffix in (".sh", ".yml", ".yaml", ".conf"):
            text += source.read_text()
    read = set(re.findall(r"/run/secrets/([A-Za-z0-9_.-]+)", text))
    declared = set(compose().get("secrets") or {})
    assert read <= secrets_of(name), f"{name} reads {sorted(read - secrets_of(name))} but does not mount them"
    assert secrets_of(name) <= declared, (
        f"{name} mounts undeclared secrets {sorted(secrets_of(name) - declared)}"
    )


@pytest.mark.parametrize("setting", [name for name, secret in SECRET_SETTINGS.items() if secret])
@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_read_secret_settings_from_files(name: str, setting: str) -> None:
    env = environment(name)
    secret = SECRET_SETTINGS[setting]
    variable = f"{setting}_FILE"
    assert setting not in env, f"{name} must not hold {setting} in its environment; use {variable}"
    path = f"/run/secrets/{secret}"
    if setting in OPTIONAL_SECRETS:
        assert env.get(variable) == f"${{{variable}:-}}", f"{name}: {variable} must be ${{{variable}:-}}"
    else:
        assert env.get(variable) == path, f"{name} must set {variable}={path}"
    assert secret in secrets_of(name), f"{name} must mount the secret {secret}"


def test_no_service_holds_a_secret_in_its_environment() -> None:
    for name in services():
        env = environment(name)
        for key in env:
            assert key not in SECRET_SETTINGS, f"{name} sets {key} itself; use {key}_FILE"
            assert not re.fullmatch(r"(POSTGRES_PASSWORD|POSTGRES_PWD|SQL_PASSWORD|GF_\w*PASSWORD)", key), (
                f"{name} sets the password {key} in its environment; read it from a secret file"
            )


def _code() -> str:
    return "\n".join(path.read_text() for path in python_sources())


def test_the_code_reads_every_secret_file_setting() -> None:
    code = _code()
    declared = set(re.findall(r"secret_files\((?:[^()]*?)\)", code, flags=re.S))
    named = {name for call in declared for name in re.findall(r'=\s*"([A-Z0-9_]+)"', call)}
    missing = sorted(name for name in SECRET_SETTINGS if name not in named and f'"{name}_FILE"' not in code)
    assert not missing, f"no settings class reads {[f'{name}_FILE' for name in missing]}"
    unknown = sorted(named - set(SECRET_SETTINGS))
    assert not unknown, f"{unknown} are secret settings: add them to SECRET_SETTINGS (and to compose)"


@pytest.fixture(scope="module")
def made_secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("deploy") / ".secrets"
    environ = {key: value for key, value in os.environ.items() if key != "REFUND_DESK_SMTP_URL"}
    subprocess.run(["sh", str(MAKE_SECRETS), str(folder)], check=True, capture_output=True, env=environ)
    return folder


def test_make_secrets_writes_every_declared_secret(made_secrets: Path) -> None:
    assert stat.S_IMODE(made_secrets.stat().st_mode) == 0o700, "the secrets folder must be 0700"
    assert (made_secrets / ".gitignore").read_text().strip() == "*", "the secrets must stay out of git"
    for secret in compose().get("secrets") or {}:
        path = made_secrets / secret
        assert path.is_file(), f"deploy/make-secrets.sh does not write {secret}"
        # Containers run as their own users (postgres, temporal, 10001, 472); the folder keeps others out.
        assert stat.S_IMODE(path.stat().st_mode) & 0o004, f"{secret} must be readable inside the containers"


def test_make_secrets_keeps_what_exists(made_secrets: Path) -> None:
    before = {path.name: path.read_bytes() for path in made_secrets.iterdir()}
    subprocess.run(["sh", str(MAKE_SECRETS), str(made_secrets)], check=True, capture_output=True)
    after = {path.name: path.read_bytes() for path in made_secrets.iterdir()}
    assert after == before, "a second run must keep every key and password (they decrypt stored data)"


def test_the_ledger_url_names_the_ledger_role_and_database(made_secrets: Path) -> None:
    url = make_url((made_secrets / "database_url").read_text().strip())
    assert url.drivername == "postgresql+asyncpg", f"the ledger runs on asyncpg, not {url.drivername}"
    assert (url.host, url.port or 5432) == ("postgresql", 5432), (
        "DATABASE_URL must name the postgresql service"
    )
    assert url.database == LEDGER_DATABASE and url.username == LEDGER_ROLE
    assert url.password == (made_secrets / "refund_desk_db_password").read_text().strip(), (
        "DATABASE_URL's password must be the one deploy/postgres/ gives the refund_desk role"
    )


def test_the_settings_read_what_make_secrets_wrote(
    made_secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app services' *_FILE variables, pointed at the files, as the settings classes read them."""
    from dispatch.settings import DispatchSettings
    from ledger.settings import LedgerSettings
    from starter.api.settings import MIN_JWT_SECRET_BYTES, ApiSettings
    from starter.desk.codec import PayloadKeySettings

    for setting in SECRET_SETTINGS:
        monkeypatch.delenv(setting, raising=False)
    for key, value in environment("api").items():
        written = interpolate(value)
        if key.endswith("_FILE"):
            monkeypatch.setenv(
                key, str(made_secrets / written.removeprefix("/run/secrets/")) if written else ""
            )
    ledger = LedgerSettings()
    assert make_url(ledger.database_url).username == LEDGER_ROLE
    ledger.keyring()
    PayloadKeySettings().keyring()
    assert len(ApiSettings().secret().encode()) >= MIN_JWT_SECRET_BYTES
    assert DispatchSettings().smtp_url is None, "by default emails wait in the outbox"


def test_an_smtp_url_written_by_make_secrets_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dispatch.settings import DispatchSettings

    url = "smtp://desk:s3cret@mail.example.com:587?starttls=true"
    environ = {**os.environ, "REFUND_DESK_SMTP_URL": url}
    subprocess.run(["sh", str(MAKE_SECRETS), str(tmp_path)], check=True, capture_output=True, env=environ)
    monkeypatch.delenv("REFUND_DESK_SMTP_URL", raising=False)
    variable = "REFUND_DESK_SMTP_URL_FILE"
    path = interpolate(environment("worker")[variable], {variable: "/run/secrets/smtp_url"})
    monkeypatch.setenv(variable, str(tmp_path / path.removeprefix("/run/secrets/")))
    smtp = DispatchSettings().smtp_url
    assert smtp is not None and smtp.get_secret_value() == url


# ------------------------------------------------------------------------------------- PostgreSQL's roles


def init_script() -> str:
    return mounted("postgresql", "/docker-entrypoint-initdb.d/10-roles.sh").read_text()


def test_postgresql_keeps_its_data_and_reports_health() -> None:
    postgresql = service("postgresql")
    assert image_of("postgresql")[0] == "postgres", "postgresql must run the postgres image"
    env = environment("postgresql")
    assert env.get("POSTGRES_PASSWORD_FILE") == "/run/secrets/postgres_password"
    assert "postgres_password" in secrets_of("postgresql")
    volumes = [str(volume) for volume in postgresql.get("volumes") or []]
    named = [volume.split(":")[0] for volume in volumes if volume.endswith(":/var/lib/postgresql/data")]
    assert named, f"postgresql must keep /var/lib/postgresql/data on a volume, has {volumes}"
    assert named[0] in (compose().get("volumes") or {}), f"volume {named[0]!r} is not declared at top level"
    assert "pg_isready" in healthcheck_text("postgresql"), "postgresql needs a pg_isready healthcheck"


def test_temporal_and_the_ledger_have_a_role_each() -> None:
    script = init_script()
    for role in (TEMPORAL_ROLE, LEDGER_ROLE):
        assert re.search(rf"CREATE ROLE {role} LOGIN PASSWORD :'\w+';", script), f"no role {role}"
        assert not re.search(rf"CREATE ROLE {role}[^;]*(SUPERUSER|CREATEDB|CREATEROLE)", script), role
    owners = dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+);", script))
    expected = {**dict.fromkeys(TEMPORAL_DATABASES, TEMPORAL_ROLE), LEDGER_DATABASE: LEDGER_ROLE}
    assert owners == expected, f"database owners: {owners}"
    passwords = set(re.findall(r"/run/secrets/(\w+)", script))
    assert passwords == {"temporal_db_password", "refund_desk_db_password"}, passwords


# ------------------------------------------------------------------------------------------------ Temporal


def temporal_release() -> str:
    repository, tag = image_of("temporal")
    assert repository == "temporalio/server", f"temporal must run temporalio/server, not {repository}"
    return tag


@pytest.mark.parametrize("name", [SCHEMA, REGISTRAR])
def test_admin_tools_match_the_server_release(name: str) -> None:
    assert image_of(name) == ("temporalio/admin-tools", temporal_release()), (
        f"{name} must run temporalio/admin-tools:{temporal_release()}, the server's release"
    )


def test_the_schema_is_set_up_before_the_server_starts() -> None:
    assert depends_on(SCHEMA) == {"postgresql": "service_healthy"}
    assert depends_on("temporal") == {SCHEMA: "service_completed_successfully"}
    env = environment(SCHEMA)
    assert env.get("SQL_PLUGIN") == "postgres12" and env.get("SQL_HOST") == "postgresql"
    assert env.get("SQL_USER") == TEMPORAL_ROLE, "the schema belongs to the temporal role"
    script_path = re.search(r"(/\S+\.sh)", script_of(SCHEMA))
    assert script_path, f"{SCHEMA} must run a mounted script, runs {script_of(SCHEMA)!r}"
    script = mounted(SCHEMA, script_path[1]).read_text()
    for database, folder in TEMPORAL_DATABASES.items():
        assert f"--db {database} setup-schema -v 0.0" in script, f"{database}: setup-schema -v 0.0"
        update = re.search(rf"--db {database} update-schema -d \S*postgresql/v12/{folder}/versioned", script)
        assert update, f"{database} must be updated from postgresql/v12/{folder}/versioned"


def test_the_server_runs_on_postgresql_with_the_embedded_config() -> None:
    env = environment("temporal")
    assert env.get("DB") == "postgres12", "Temporal's SQL plugin for PostgreSQL is DB=postgres12"
    assert env.get("POSTGRES_SEEDS") == "postgresql" and env.get("DB_PORT") == "5432"
    assert env.get("POSTGRES_USER") == TEMPORAL_ROLE
    assert env.get("DBNAME", "temporal") == "temporal"
    assert env.get("VISIBILITY_DBNAME", "temporal_visibility") == "temporal_visibility"
    assert env.get("BIND_ON_IP") == "0.0.0.0", "the frontend must listen beyond the container's loopback"
    entrypoint = script_of("temporal")
    assert "POSTGRES_PWD=" in entrypoint and "/run/secrets/temporal_db_password" in entrypoint
    assert entrypoint.rstrip().endswith("exec /etc/temporal/entrypoint.sh"), "run the image's entrypoint"
    dynamic = mounted("temporal", env["DYNAMIC_CONFIG_FILE_PATH"])
    assert isinstance(yaml.safe_load(dynamic.read_text()), dict), f"{dynamic} must hold a mapping"


def test_temporal_is_published_on_7233_and_the_ui_on_8233() -> None:
    assert published_port("temporal", 7233) == 7233, "the CLI and SDKs on the host reach Temporal on 7233"
    assert published_port("temporal-ui", 8080) == 8233, "the web UI belongs on host port 8233"
    assert environment("temporal-ui").get("TEMPORAL_ADDRESS") == "temporal:7233"


_CREATE = re.compile(
    r"temporal\s+operator\s+search-attribute\s+create"
    r"\s+--namespace\s+(?P<namespace>\S+)\s+--name\s+(?P<name>\S+)\s+--type\s+(?P<type>\S+)"
)


def test_the_search_attributes_registered_are_those_the_workflows_upsert() -> None:
    created = [match.groupdict() for match in _CREATE.finditer(script_of(REGISTRAR))]
    names = [entry["name"] for entry in created]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f"registered twice: {duplicates}"
    assert {entry["name"]: entry["type"] for entry in created} == REGISTRATION, (
        f"{REGISTRAR} must register exactly workflows.search_attributes.REGISTRATION"
    )
    namespace = environment("worker").get("TEMPORAL_NAMESPACE", "default")
    wrong = [entry["name"] for entry in created if entry["namespace"] != namespace]
    assert not wrong, f"{wrong} are registered outside the workers' namespace {namespace!r}"


def test_the_namespace_is_created_before_its_search_attributes() -> None:
    script = script_of(REGISTRAR)
    namespace = environment("worker").get("TEMPORAL_NAMESPACE", "default")
    create = script.find(f"temporal operator namespace create --namespace {namespace}")
    assert create >= 0, f"{REGISTRAR} must create the namespace {namespace}"
    assert script.find("temporal operator cluster health") < create < script.find("search-attribute create")
    assert environment(REGISTRAR).get("TEMPORAL_ADDRESS") == "temporal:7233"


# ------------------------------------------------------------------------------------------ the project image


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


def api_port() -> int:
    api = command("api")
    assert api[:1] == ["serve"], f"api must run `refund-desk serve ...`, runs {api}"
    assert "--host" in api and api[api.index("--host") + 1] == "0.0.0.0", "serve must listen beyond loopback"
    return int(api[api.index("--port") + 1]) if "--port" in api else 8000


def test_app_services_run_migrate_worker_and_serve() -> None:
    assert command("migrate") == ["migrate"]
    assert command("worker") == ["worker"]
    assert api_port() == 8000


def test_the_api_reports_health_on_healthz() -> None:
    text = healthcheck_text("api")
    assert "/healthz" in text and f":{api_port()}" in text, f"api's healthcheck must GET /healthz: {text!r}"
    assert "curl" not in text and "wget" not in text, "python:*-slim has neither curl nor wget"


def test_migrate_waits_for_postgresql() -> None:
    assert depends_on("migrate").get("postgresql") == "service_healthy"


@pytest.mark.parametrize("name", SCALABLE)
def test_worker_and_api_start_once_temporal_and_the_ledger_are_ready(name: str) -> None:
    deps = depends_on(name)
    assert deps.get("temporal") == "service_healthy", f"{name} must wait for a healthy temporal"
    for one_shot in ("migrate", REGISTRAR):
        assert deps.get(one_shot) == "service_completed_successfully", f"{name} must wait for {one_shot}"


@pytest.mark.parametrize("name", SCALABLE)
def test_worker_and_api_scale(name: str) -> None:
    """`docker compose up --scale worker=3`: nothing in a replica may be unique to one container."""
    for key in ("container_name", "hostname", "ports"):
        assert key not in service(name), f"{name} sets {key}: a second replica would clash with the first"


# ------------------------------------------------------------------------------------------------ the proxy


def nginx_config() -> str:
    return mounted(PROXY, "/etc/nginx/conf.d/default.conf").read_text()


def test_the_proxy_is_the_one_door_to_the_api() -> None:
    assert image_of(PROXY)[0] == "nginx"
    assert published_port(PROXY, 8000) == 8000, "the API belongs on host port 8000, through the proxy"
    assert depends_on(PROXY) == {"api": "service_healthy"}
    config = nginx_config()
    assert re.search(r"listen 8000;", config), "the proxy must listen on the port it publishes"
    assert re.search(rf"server api:{api_port()} resolve;", config), "balance over every api replica"
    assert re.search(r"resolver 127\.0\.0\.11\b", config), "re-resolve `api` through Docker's DNS"
    assert re.search(r"zone \w+ \d+k;", config), "`resolve` needs a shared zone"
    assert re.search(r"location = /metrics \{\s*return 404;", config), "/metrics is for Prometheus only"


def test_the_proxy_lets_the_apis_largest_body_through() -> None:
    from starter.api.limits import BODY_LIMITS

    size = re.search(r"client_max_body_size (\d+)([km]?);", nginx_config())
    assert size, "set client_max_body_size (nginx refuses bodies over 1 MiB by default)"
    allowed = int(size[1]) * {"": 1, "k": 1024, "m": 1024 * 1024}[size[2]]
    assert allowed >= max(BODY_LIMITS.values()), (
        f"{allowed} < the API's largest body {max(BODY_LIMITS.values())}"
    )


def test_links_in_emails_point_at_the_proxy() -> None:
    url = interpolate(environment("api")["REFUND_DESK_PUBLIC_URL"])
    assert url == f"http://127.0.0.1:{published_port(PROXY, 8000)}"


# ------------------------------------------------------------------------------------------- the UI's codec


def test_the_ui_decodes_through_the_apis_codec_route() -> None:
    from starter.api.cors import CODEC_PREFIX
    from starter.api.routers.codec import router

    assert router.prefix == CODEC_PREFIX
    env = environment("temporal-ui")
    assert (
        env.get("TEMPORAL_CODEC_ENDPOINT") == f"http://127.0.0.1:{published_port(PROXY, 8000)}{CODEC_PREFIX}"
    )
    ui_origin = f"http://127.0.0.1:{published_port('temporal-ui', 8080)}"
    origins = interpolate(environment("api")["REFUND_DESK_CODEC_CORS_ORIGINS"]).split(",")
    assert ui_origin in origins, f"the API must let the UI's origin {ui_origin} call /codec: {origins}"
    message = env.get("TEMPORAL_CODEC_DEFAULT_ERROR_MESSAGE", "")
    assert yaml.safe_load(f"m: {message}") == {"m": message}, "the UI puts this unquoted into its YAML config"


def test_the_ui_sends_the_consoles_codec_pass() -> None:
    """The codec decodes for support's console session: the UI must send the browser's cookies, and the
    console that sets them must be on the codec's own host (the codec pass is scoped to its `/codec`) and
    the same site as the UI (SameSite=Strict), which for loopback means the same host, any port."""
    from urllib.parse import urlsplit

    from starter.web.sessions import CODEC_PATH

    env = environment("temporal-ui")
    assert env.get("TEMPORAL_CODEC_INCLUDE_CREDENTIALS") == "true", "else the browser sends no cookie"
    assert env.get("TEMPORAL_CODEC_PASS_ACCESS_TOKEN") == "false", "the UI has no tokens the API accepts"
    endpoint = urlsplit(env["TEMPORAL_CODEC_ENDPOINT"])
    console = urlsplit(interpolate(environment("api")["REFUND_DESK_PUBLIC_URL"]))
    assert (endpoint.scheme, endpoint.netloc, endpoint.path) == (console.scheme, console.netloc, CODEC_PATH)
    ui_origin = f"http://127.0.0.1:{published_port('temporal-ui', 8080)}"
    assert urlsplit(ui_origin).hostname == endpoint.hostname, "the UI and the API on the same site"
    assert f"{console.scheme}://{console.netloc}/console" in env["TEMPORAL_CODEC_DEFAULT_ERROR_MESSAGE"]


# -------------------------------------------------------------------------------------------- the worker


def grace_settings() -> list[timedelta]:
    """The worker's shutdown grace: compose's value, and the setting's default where the code has one."""
    from starter.desk.settings import TemporalSettings

    field = TemporalSettings.model_fields.get("worker_shutdown_grace")
    written = environment("worker").get("REFUND_DESK_WORKER_SHUTDOWN_GRACE")
    graces: list[timedelta] = []

    def as_timedelta(value: object) -> timedelta:
        return value if isinstance(value, timedelta) else timedelta(seconds=float(str(value)))

    if field is not None:
        graces.append(as_timedelta(field.default))
        if written:
            parsed = TemporalSettings.model_validate({"worker_shutdown_grace": written}).model_dump()
            graces.append(as_timedelta(parsed["worker_shutdown_grace"]))
    elif written:
        graces.append(as_timedelta(written))
    assert graces, "set REFUND_DESK_WORKER_SHUTDOWN_GRACE on the worker, or give the setting a default"
    return graces


def test_compose_waits_longer_than_the_workers_shutdown_grace() -> None:
    stop = compose_duration(str(service("worker").get("stop_grace_period", "10s")))
    for grace in grace_settings():
        assert stop >= grace + timedelta(seconds=5), (
            f"stop_grace_period {stop} must exceed the worker's shutdown grace {grace} (by 5 s or more), "
            "or compose kills the worker while in-flight tasks still finish"
        )


def test_the_worker_serves_its_metrics_where_prometheus_looks() -> None:
    from starter.telemetry.runtime import METRICS_ADDRESS_ENV

    address = environment("worker").get(METRICS_ADDRESS_ENV, "")
    host, _, port = address.rpartition(":")
    assert host == "0.0.0.0", (
        f"{METRICS_ADDRESS_ENV} must listen beyond the container's loopback: {address!r}"
    )
    assert f"127.0.0.1:{port}/metrics" in healthcheck_text("worker"), (
        "the healthcheck reads the metrics endpoint"
    )
    assert ("worker", int(port)) in prometheus_dns_targets()


# ------------------------------------------------------------------------------------------- environment


def test_app_services_share_one_environment() -> None:
    """migrate and api read the same; the worker adds its own settings and changes none."""
    assert environment("migrate") == environment("api")
    worker = environment("worker")
    assert {key: worker.get(key) for key in environment("api")} == environment("api")
    extra = set(worker) - set(environment("api"))
    assert extra == {"REFUND_DESK_WORKER_METRICS_ADDRESS", "REFUND_DESK_WORKER_SHUTDOWN_GRACE"}, extra


def test_the_environment_points_at_temporal() -> None:
    env = environment("worker")
    host, _, port = env.get("TEMPORAL_ADDRESS", "").partition(":")
    assert (host, port) == ("temporal", "7233"), f"TEMPORAL_ADDRESS must be temporal:7233, is {host}:{port}"
    assert env.get("TEMPORAL_NAMESPACE"), "set TEMPORAL_NAMESPACE"
    assert env.get("REFUND_DESK_TASK_QUEUE"), "set REFUND_DESK_TASK_QUEUE"


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


# ------------------------------------------------------------------------------------------ observability


@cache
def prometheus_config() -> dict[str, Any]:
    loaded = yaml.safe_load(mounted("prometheus", "/etc/prometheus/prometheus.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def prometheus_dns_targets() -> set[tuple[str, int]]:
    return {
        (str(name), int(sd["port"]))
        for job in prometheus_config()["scrape_configs"]
        for sd in job.get("dns_sd_configs") or []
        for name in sd["names"]
    }


def test_prometheus_scrapes_every_api_and_worker_replica() -> None:
    command_line = " ".join(command("prometheus"))
    assert "--config.file=/etc/prometheus/prometheus.yml" in command_line
    assert ("api", api_port()) in prometheus_dns_targets(), "scrape each api replica (dns_sd_configs on api)"
    for job in prometheus_config()["scrape_configs"]:
        for sd in job.get("dns_sd_configs") or []:
            assert sd.get("type", "SRV") == "A", "compose's DNS answers A records, one per replica"


def grafana_datasource_uid() -> str:
    folder = mounted("grafana", "/etc/grafana/provisioning") / "datasources"
    sources = [
        source for path in folder.glob("*.y*ml") for source in yaml.safe_load(path.read_text())["datasources"]
    ]
    assert len(sources) == 1 and sources[0]["type"] == "prometheus", sources
    assert sources[0]["url"] == "http://prometheus:9090"
    return str(sources[0]["uid"])


def dashboards() -> list[Path]:
    folder = mounted("grafana", "/etc/grafana/provisioning") / "dashboards"
    providers = [p for path in folder.glob("*.y*ml") for p in yaml.safe_load(path.read_text())["providers"]]
    assert providers, "provision the dashboards"
    found = [path for p in providers for path in mounted("grafana", p["options"]["path"]).glob("*.json")]
    assert found, "no dashboard JSON where the provider looks"
    return found


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def test_grafanas_admin_password_is_a_secret_file() -> None:
    assert (
        environment("grafana").get("GF_SECURITY_ADMIN_PASSWORD__FILE")
        == "/run/secrets/grafana_admin_password"
    )
    assert "grafana_admin_password" in secrets_of("grafana")


def test_the_dashboard_plots_every_known_metric_and_no_other() -> None:
    uid = grafana_datasource_uid()
    plotted: set[str] = set()
    for path in dashboards():
        dashboard = json.loads(path.read_text())
        for panel in panels(dashboard):
            if panel.get("type") == "row":
                continue
            assert panel.get("datasource", {}).get("uid") == uid, (
                f"{panel['title']}: use the provisioned source"
            )
            assert panel.get("targets"), f"{panel['title']} plots nothing"
            for target in panel["targets"]:
                for name in _METRIC_NAME.findall(target["expr"]):
                    base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), name)
                    known = name in METRICS or (METRICS.get(base) == "histogram")
                    assert known, f"{path.name}, {panel['title']!r}: {name} is not a metric the desk serves"
                    plotted.add(name if name in METRICS else base)
    missing = sorted(set(METRICS) - plotted)
    assert not missing, f"the dashboard has no panel for {missing}"


def test_the_sdk_metrics_are_those_docs_metrics_lists() -> None:
    page = ROOT / "docs" / "metrics.md"
    if not page.is_file():
        pytest.skip("docs/metrics.md is not there yet")
    listed = set(re.findall(r"`(temporal_[a-z0-9_]+)`", page.read_text()))
    missing = sorted(name for name in METRICS if name.startswith("temporal_") and name not in listed)
    assert not missing, f"docs/metrics.md does not list {missing} among the SDK's metrics"


def test_the_metric_list_matches_what_the_api_serves() -> None:
    if not (ROOT / "starter" / "api" / "metrics.py").is_file():
        pytest.skip("starter/api/metrics.py is not there yet")
    from prometheus_client import CollectorRegistry, generate_latest

    from ledger.metrics import LedgerFigures, MoneyMoved
    from starter.api.metrics import HttpMetrics, LedgerCollector

    http = HttpMetrics()
    http.observe("/healthz", "GET", 200, 0.01)
    money = {"EUR": MoneyMoved(count=1, amount=Decimal("1.00"))}
    figures = LedgerFigures(
        open_complaints={("major_defect", "under_review"): 1},
        escalations={"major_defect": 1},
        refunds=money,
        replacements=money,
        notices={("email", "delivered"): 1},
        dispatcher_lag=timedelta(seconds=1),
    )
    registry = CollectorRegistry(auto_describe=False)
    for collector in (http.requests, http.duration, LedgerCollector(figures)):
        registry.register(collector)
    served = {line.split("{")[0].split(" ")[0] for line in generate_latest(registry).decode().splitlines()}
    served = {name for name in served if name and not name.startswith("#")}
    for name, kind in METRICS.items():
        if not name.startswith("refund_desk_"):
            continue
        wanted = {name + suffix for suffix in HISTOGRAM_SUFFIXES} if kind == "histogram" else {name}
        assert wanted <= served, f"GET /metrics serves no {sorted(wanted - served)}"


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
    missing = sorted({".venv", ".data", ".git", ".secrets"} - ignored)
    assert not missing, f".dockerignore must exclude {missing}"

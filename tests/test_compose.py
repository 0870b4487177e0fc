"""The container deployment: Dockerfile, docker-compose.yml, Prometheus and Grafana provisioning.

No Docker engine is needed: the files are parsed and checked against the code they drive (the click
commands and options, the HTTP routes, the settings, the configuration loader), and the Prometheus
configuration is checked by `promtool` when it is installed.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
from ruamel.yaml import YAML
from sqlalchemy.engine import make_url

from monitor.api.routes.health import router as health_router
from monitor.cli import main
from monitor.config.settings import Settings
from tests.support.peers import REPO, require_binary

COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
PROMETHEUS = REPO / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = REPO / "deploy" / "grafana"
MLMON_SERVICES = ("migrate", "web", "worker")
FAKE_ENV = {"POSTGRES_PASSWORD": "s3cret", "GRAFANA_ADMIN_PASSWORD": "adm1n"}


def _yaml(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} substitution."""

    def sub(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if name in env and (env[name] or op not in (":-", ":?")):
            return env[name]
        if op in (":-", "-"):
            return arg or ""
        raise AssertionError(f"variable {name} is required ({arg}) but not set")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}", sub, value)


def _argv(value: Any) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: _interpolate(str(v), FAKE_ENV) for k, v in env.items()}


def _binds(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of every volume entry, short or long syntax."""
    out = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        out.append((source, target))
    return out


def _repo_mount(service: dict[str, Any], target: str) -> Path:
    for source, mounted_at in _binds(service):
        if mounted_at == target:
            assert source.startswith("."), f"{target} is mounted from {source!r}, not from the repository"
            return (REPO / source).resolve()
    raise AssertionError(f"nothing is mounted at {target}: {_binds(service)}")


def _port(listen: str) -> int:
    return Settings(listen=listen).port


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = _yaml(COMPOSE)
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), " ".join(rest.split())))
    return instructions


def _instruction(dockerfile: list[tuple[str, str]], keyword: str) -> list[str]:
    return [rest for kw, rest in dockerfile if kw == keyword]


def _exec_form(dockerfile: list[tuple[str, str]], keyword: str) -> list[str]:
    found = _instruction(dockerfile, keyword)
    assert found, f"Dockerfile has no {keyword}"
    value = json.loads(found[-1])
    assert isinstance(value, list), f"{keyword} should use the exec (JSON) form"
    return value


def _validate_mlmon_argv(argv: list[str], where: str) -> click.Command:
    """The argv names an existing subcommand and only options it defines, and click parses it."""
    assert argv[:1] == ["mlmon"], f"{where}: runs {argv}, not mlmon"
    assert len(argv) > 1, f"{where}: no subcommand"
    name, args = argv[1], argv[2:]
    assert name in main.commands, f"{where}: `mlmon {name}` does not exist; commands: {sorted(main.commands)}"
    command = main.commands[name]
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for arg in args:
        if arg.startswith("-") and arg != "-":
            option = arg.split("=", 1)[0]
            assert option in known, f"{where}: `mlmon {name}` has no option {option}; it has {sorted(known)}"
    command.make_context(f"mlmon {name}", list(args))  # raises on a bad value or a missing argument
    return command


# --- Dockerfile -----------------------------------------------------------------------------------


def test_dockerfile_base_user_and_entrypoint(dockerfile: list[tuple[str, str]]) -> None:
    assert _instruction(dockerfile, "FROM") == ["python:3.11-slim"]
    installs = [run for run in _instruction(dockerfile, "RUN") if "pip install" in run]
    assert any(re.search(r"""pip install ["']?\.\[postgres,focus\]["']?""", run) for run in installs), installs
    users = _instruction(dockerfile, "USER")
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert _exec_form(dockerfile, "ENTRYPOINT") == ["mlmon"]
    _validate_mlmon_argv(["mlmon", *_exec_form(dockerfile, "CMD")], "Dockerfile CMD")
    image_env = " ".join(_instruction(dockerfile, "ENV"))
    listen = re.search(r"MLMON_LISTEN=(\S+)", image_env)
    assert listen and Settings(listen=listen.group(1)).host == "0.0.0.0", "the image must listen beyond loopback"


def test_dockerfile_names_no_package_index() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    for forbidden in (
        "--index-url",
        "--extra-index-url",
        "--trusted-host",
        "pypi.org",
        "pythonhosted",
        "PIP_INDEX",
    ):
        assert forbidden not in text, (
            f"the Dockerfile must leave the package index to the build environment: {forbidden}"
        )


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        negated = raw.startswith("!")
        pattern = raw[1:] if negated else raw
        pattern = pattern.strip("/")
        globs = {pattern, pattern.removeprefix("**/")} if pattern.startswith("**/") else {pattern}
        for candidate in candidates:
            names = {candidate, PurePosixPath(candidate).name} if pattern.startswith("**/") else {candidate}
            if any(fnmatch.fnmatchcase(n, g) for n in names for g in globs):
                excluded = not negated
    return excluded


def test_dockerfile_copies_what_pip_install_needs(dockerfile: list[tuple[str, str]]) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources: list[str] = []
    for copy in _instruction(dockerfile, "COPY"):
        args = [a for a in copy.split() if not a.startswith("--")]
        sources += args[:-1]
    for source in sources:
        assert (REPO / source).exists(), f"Dockerfile copies {source}, which is not in the repository"
        assert not _dockerignored(source, patterns), f".dockerignore excludes {source}, which the Dockerfile copies"
    for cache in ("monitor/__pycache__", "monitor/cli/__pycache__", ".venv", "tests", "mlmon.db"):
        assert _dockerignored(cache, patterns), f".dockerignore should keep {cache} out of the build context"

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    needed = {"pyproject.toml"}
    readme = project["project"].get("readme")
    if isinstance(readme, str):
        needed.add(readme)
    for include in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        needed.add(include.rstrip("*"))
    copied = {PurePosixPath(s).as_posix().rstrip("/") for s in sources}
    assert needed <= copied, f"`pip install .` needs {sorted(needed - copied)}, which the Dockerfile does not copy"


# --- docker-compose.yml ---------------------------------------------------------------------------


def test_expected_services(services: dict[str, dict[str, Any]]) -> None:
    assert {"postgres", "migrate", "web", "worker", "prometheus", "grafana"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["prometheus"]["image"].split(":")[0] == "prom/prometheus"
    assert services["grafana"]["image"].split(":")[0] == "grafana/grafana"


@pytest.mark.parametrize("name", MLMON_SERVICES)
def test_mlmon_services_run_real_commands_and_options(
    services: dict[str, dict[str, Any]], dockerfile: list[tuple[str, str]], name: str
) -> None:
    service = services[name]
    assert "build" in service, f"{name} should run the image built from this repository"
    context = REPO / (service["build"] if isinstance(service["build"], str) else service["build"]["context"])
    assert (context / "Dockerfile").is_file()
    entrypoint = _argv(service["entrypoint"]) if "entrypoint" in service else _exec_form(dockerfile, "ENTRYPOINT")
    command = _argv(service.get("command")) or _exec_form(dockerfile, "CMD")
    _validate_mlmon_argv([*entrypoint, *command], f"compose service {name}")


def test_the_option_check_rejects_unknown_commands_and_options() -> None:
    """The validator the compose tests rely on really refuses mistakes."""
    with pytest.raises(AssertionError, match="does not exist"):
        _validate_mlmon_argv(["mlmon", "server"], "x")
    with pytest.raises(AssertionError, match="has no option --no-sched"):
        _validate_mlmon_argv(["mlmon", "serve", "--no-sched"], "x")
    with pytest.raises(click.UsageError):
        _validate_mlmon_argv(["mlmon", "check-config"], "x")
    assert _validate_mlmon_argv(["mlmon", "serve", "--no-scheduler"], "x") is main.commands["serve"]


def test_command_per_role(services: dict[str, dict[str, Any]]) -> None:
    assert _argv(services["migrate"]["command"])[0] == "migrate"
    assert _argv(services["web"]["command"]) == ["serve", "--no-scheduler"]
    assert _argv(services["worker"]["command"])[0] == "worker"
    assert services["migrate"].get("restart", "no") == "no", "migrate is one-shot and must not be restarted"


@pytest.mark.parametrize("name", MLMON_SERVICES)
def test_mlmon_environment(services: dict[str, dict[str, Any]], name: str) -> None:
    service = services[name]
    env = _env(service)
    url = make_url(env["MLMON_DATABASE_URL"])
    postgres = _env(services["postgres"])
    assert url.drivername == "postgresql+psycopg"
    assert url.host == "postgres" and "postgres" in services
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"] == FAKE_ENV["POSTGRES_PASSWORD"]
    assert url.database == postgres["POSTGRES_DB"]
    config = _repo_mount(service, env["MLMON_CONFIG"])
    assert config.is_file(), f"{name}: MLMON_CONFIG {env['MLMON_CONFIG']} is mounted from missing {config}"
    settings = Settings(database_url=env["MLMON_DATABASE_URL"], config=Path(env["MLMON_CONFIG"]))
    assert settings.database_url.startswith("postgresql+psycopg://")


def test_secrets_are_required_variables() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    assert "${POSTGRES_PASSWORD:?" in text
    assert "${GRAFANA_ADMIN_PASSWORD:?" in text
    compose = _yaml(COMPOSE)
    for name in ("postgres", "grafana"):
        for key, value in (compose["services"][name].get("environment") or {}).items():
            if "PASSWORD" in key:
                assert str(value).startswith("${") and ":?" in str(value), f"{name}.{key} is a literal secret"
    with pytest.raises(AssertionError, match="POSTGRES_PASSWORD is required"):
        _interpolate(compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"], {})


def test_web_is_replicable_and_health_checked(services: dict[str, dict[str, Any]]) -> None:
    web = services["web"]
    assert "container_name" not in web, "a container_name prevents replicas"
    for port in web.get("ports") or []:
        if isinstance(port, dict):
            published = str(port.get("published", ""))
        else:
            fields = str(port).split("/")[0].split(":")
            published = fields[-2] if len(fields) > 1 else ""
        assert published == "" or "-" in published, f"web publishes fixed host port {published}: replicas collide"
    replicas = (web.get("deploy") or {}).get("replicas", 1)
    assert int(replicas) >= 1

    listen = _env(web)["MLMON_LISTEN"]
    assert Settings(listen=listen).host == "0.0.0.0"
    port = _port(listen)
    check = " ".join(_argv(web["healthcheck"]["test"]))
    match = re.search(r"http://(?:127\.0\.0\.1|localhost):(\d+)(/\S*?)['\"\s)]", check)
    assert match, f"web healthcheck does not fetch a local URL: {check}"
    assert int(match.group(1)) == port
    assert match.group(2) == "/readyz"
    assert "/readyz" in {route.path for route in health_router.routes}
    assert "curl" not in check and "wget" not in check, "python:3.11-slim has neither curl nor wget"


def test_migrate_gates_web_and_worker(services: dict[str, dict[str, Any]]) -> None:
    for name in ("web", "worker"):
        depends = services[name].get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        assert depends.get("migrate", {}).get("condition") == "service_completed_successfully", name
    migrate = services["migrate"]["depends_on"]
    assert migrate["postgres"]["condition"] == "service_healthy"


def test_postgres_has_healthcheck_and_volume(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    postgres = services["postgres"]
    check = _argv(postgres["healthcheck"]["test"])
    assert check[0] in ("CMD", "CMD-SHELL") and "pg_isready" in " ".join(check)
    named = [source for source, target in _binds(postgres) if target == "/var/lib/postgresql/data"]
    assert named and named[0] in (compose.get("volumes") or {}), "postgres data belongs on a named volume"


def test_every_mount_exists(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    named = set(compose.get("volumes") or {})
    mounts = 0
    for name, service in services.items():
        for source, target in _binds(service):
            mounts += 1
            if source.startswith((".", "/")):
                path = (REPO / source).resolve()
                assert path.exists(), f"{name} mounts {source} at {target}, which does not exist"
                assert REPO in path.parents, f"{name} mounts {source} from outside the repository"
            else:
                assert source in named, f"{name} uses volume {source!r}, not declared under volumes:"
    assert mounts >= 6


# --- Prometheus -----------------------------------------------------------------------------------


def test_prometheus_scrapes_every_web_replica(services: dict[str, dict[str, Any]]) -> None:
    assert _repo_mount(services["prometheus"], "/etc/prometheus/prometheus.yml") == PROMETHEUS
    config = _yaml(PROMETHEUS)
    web_port = _port(_env(services["web"])["MLMON_LISTEN"])
    jobs = [
        job
        for job in config["scrape_configs"]
        if any("web" in sd.get("names", []) for sd in job.get("dns_sd_configs", []))
    ]
    assert len(jobs) == 1, "one job should discover the web replicas by DNS"
    job = jobs[0]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert "/metrics" in {route.path for route in health_router.routes}
    (sd,) = [sd for sd in job["dns_sd_configs"] if "web" in sd["names"]]
    assert sd["type"] == "A" and int(sd["port"]) == web_port
    assert "static_configs" not in job, "a static target would reach only one replica"


def test_promtool_accepts_prometheus_config() -> None:
    promtool = require_binary("promtool", "apt-get install prometheus")
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS)], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


# --- Grafana --------------------------------------------------------------------------------------


def test_grafana_datasource_points_at_prometheus_service(services: dict[str, dict[str, Any]]) -> None:
    provisioning = _repo_mount(services["grafana"], "/etc/grafana/provisioning")
    assert provisioning == GRAFANA / "provisioning"
    config = _yaml(provisioning / "datasources" / "prometheus.yml")
    (source,) = [d for d in config["datasources"] if d["type"] == "prometheus"]
    url = urlsplit(source["url"])
    assert url.scheme == "http" and url.hostname == "prometheus" and "prometheus" in services
    assert url.port == 9090, "Prometheus listens on 9090 inside its container"
    assert source.get("access", "proxy") == "proxy", "browser access cannot resolve compose service names"


def test_grafana_dashboard_provider_reads_the_mounted_directory(services: dict[str, dict[str, Any]]) -> None:
    config = _yaml(GRAFANA / "provisioning" / "dashboards" / "mlmon.yml")
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    assert path == "/var/lib/grafana/dashboards"
    mounted = _repo_mount(services["grafana"], path)
    assert mounted == GRAFANA / "dashboards" and mounted.is_dir()
    assert (mounted / ".gitkeep").exists() or any(mounted.glob("*.json"))
    for dashboard in mounted.glob("*.json"):
        assert isinstance(json.loads(dashboard.read_text(encoding="utf-8")), dict), dashboard


# --- the mounted mlmon configuration --------------------------------------------------------------


def _urls(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [u for k, v in node.items() for u in ([v] if k == "url" and isinstance(v, str) else _urls(v))]
    if isinstance(node, list):
        return [u for v in node for u in _urls(v)]
    return []


def test_mounted_config_passes_check_config(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    config = _repo_mount(worker, _env(worker)["MLMON_CONFIG"])
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


def test_mounted_config_reaches_mlmon_through_the_web_service(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    config = _yaml(_repo_mount(worker, _env(worker)["MLMON_CONFIG"]))
    web_port = _port(_env(services["web"])["MLMON_LISTEN"])
    status = [u for u in _urls(config) if urlsplit(u).path == "/api/v1/status"]
    assert status, "the compose config should poll mlmon's own status"
    for url in status:
        parts = urlsplit(url)
        assert parts.hostname == "web" and parts.port == web_port, f"{url}: inside compose mlmon is at web:{web_port}"


def test_check_config_fails_on_a_broken_copy(tmp_path: Path) -> None:
    """check-config is a real gate: the same file with an unknown key is refused."""
    broken = tmp_path / "broken.yaml"
    text = (REPO / "examples" / "compose.yaml").read_text(encoding="utf-8")
    broken.write_text(text.replace("    team: growth\n", "    team: growth\n    teem: growth\n"), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "teem" in result.stderr

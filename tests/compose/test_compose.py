"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

The file is validated against the Compose specification's JSON schema (kept in
docs/compose-spec.schema.json), and every command and ``ALETHIA_*`` variable it uses is
checked against the code: a renamed setting or module breaks this test, not a deployment.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import inspect
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic.aliases import AliasChoices, AliasPath
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = ROOT / "docs" / "compose-spec.schema.json"
APP_SERVICES = ("specs", "snapshot", "mapper", "executor")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # SafeLoader resolves the `<<` merge keys


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _errors(validator: jsonschema.protocols.Validator, doc: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_compose_file_is_valid_against_the_compose_spec(validator, compose) -> None:  # type: ignore[no-untyped-def]
    assert _errors(validator, compose) == []


def test_schema_catches_mistakes(validator, compose) -> None:  # type: ignore[no-untyped-def]
    """The validation is not hollow: typical mistakes in this very file are reported."""
    bad_condition = copy.deepcopy(compose)
    bad_condition["services"]["executor"]["depends_on"]["snapshot"]["condition"] = "service_ready"
    bad_key = copy.deepcopy(compose)
    bad_key["services"]["specs"]["enviroment"] = {"X": "1"}
    bad_deploy = copy.deepcopy(compose)
    bad_deploy["services"]["executor"]["deploy"]["replica"] = 2
    bad_interval = copy.deepcopy(compose)
    bad_interval["services"]["specs"]["healthcheck"]["interval"] = 5  # durations are strings
    for doc in (bad_condition, bad_key, bad_deploy, bad_interval):
        assert _errors(validator, doc), "the schema should refuse this"


def _module(command: list[str]) -> str:
    assert command[:2] == ["python", "-m"], f"commands run a module: {command}"
    return command[2]


def _settings_env_names(module_name: str) -> set[str]:
    """Every environment variable a settings module's classes read (upper case)."""
    module = importlib.import_module(module_name)
    names: set[str] = set()
    classes = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, BaseSettings) and obj.__module__ == module.__name__
    ]
    assert classes, f"{module_name} defines no settings class"
    for cls in classes:
        prefix = str(cls.model_config.get("env_prefix", ""))
        for field_name, info in cls.model_fields.items():
            alias = info.validation_alias
            if isinstance(alias, str):
                names.add(alias.upper())
            elif isinstance(alias, AliasChoices):
                names.update(str(c).upper() for c in alias.choices if not isinstance(c, AliasPath))
            if alias is None or cls.model_config.get("populate_by_name"):
                names.add(f"{prefix}{field_name}".upper())
    return names


def _alethia_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items() if k.startswith("ALETHIA_")}


def test_every_command_module_exists(compose) -> None:  # type: ignore[no-untyped-def]
    built = {name: svc for name, svc in compose["services"].items() if "build" in svc}
    assert set(APP_SERVICES) <= set(built)
    for name, svc in built.items():
        module = _module(svc["command"])
        if module.startswith("services."):
            service = module.split(".")[1]
            assert (ROOT / "services" / service / "__main__.py").is_file(), (
                f"{name}: {module} has no __main__"
            )
            assert name == service, f"compose service {name} runs {module}"
        else:
            assert importlib.util.find_spec(module) is not None, f"{name}: no module {module}"


def test_every_alethia_variable_is_a_setting_of_that_service(compose) -> None:  # type: ignore[no-untyped-def]
    from alethia.stack import bootstrap

    for name, svc in compose["services"].items():
        env = _alethia_env(svc)
        if not env:
            continue
        module = _module(svc["command"])
        if module.startswith("services.") or module == "alethia.gateway":
            known = _settings_env_names(f"{module}.settings")
        else:
            assert module == "alethia.stack.bootstrap"
            known = set(bootstrap.ENV_VARS)
        unknown = sorted(set(env) - known)
        assert not unknown, f"{name} sets variables its settings do not read: {unknown}"


def test_services_are_wired_for_production(compose) -> None:  # type: ignore[no-untyped-def]
    services = compose["services"]
    for name in APP_SERVICES:
        svc = services[name]
        env = _alethia_env(svc)
        assert env.get("ALETHIA_SERVICE_TOKEN", "").startswith("${ALETHIA_SERVICE_TOKEN:?"), name
        listen = env[f"ALETHIA_{name.upper()}_LISTEN"]
        assert listen.startswith("0.0.0.0:"), f"{name} must listen on all interfaces in a container"
        port = listen.rsplit(":", 1)[1]
        assert svc["healthcheck"]["test"][-1] == f"127.0.0.1:{port}", f"{name}: health check on its port"
        assert svc["command"][2] == f"services.{name}"
    # Peers are addressed by the compose service name and the port that service listens on.
    for svc in services.values():
        for var, value in _alethia_env(svc).items():
            m = re.fullmatch(r"ALETHIA_(SPECS|SNAPSHOT|MAPPER|EXECUTOR)_ADDR", var)
            if m:
                peer = m.group(1).lower()
                peer_listen = _alethia_env(services[peer])[f"ALETHIA_{peer.upper()}_LISTEN"]
                assert value == f"{peer}:{peer_listen.rsplit(':', 1)[1]}"
    # depends_on names real services, and one-shot jobs are awaited to completion.
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            expected = (
                "service_completed_successfully"
                if services[dep].get("restart") == "no"
                else "service_healthy"
            )
            assert cond["condition"] == expected, f"{name} -> {dep}"
            if expected == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} is waited on but has no health check"
    assert services["executor"]["deploy"]["replicas"] >= 2
    assert "ports" not in services["executor"], "replicas cannot share a host port"
    assert services["nats"]["command"][0] == "--jetstream"


def test_dockerfile_copies_what_the_services_need() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    ignored = {
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line and line[0] != "#"
    }
    copied = re.findall(r"^COPY (?!--from)(\S+(?: \S+)*?) \S+$", dockerfile, flags=re.M)
    sources = [src for group in copied for src in group.split()]
    for needed in ("pyproject.toml", "alethia", "services", "templates"):
        assert needed in sources, f"Dockerfile does not copy {needed}"
        assert needed not in ignored, f".dockerignore excludes {needed}"
        assert (ROOT / needed).exists()

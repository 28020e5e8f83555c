"""Dockerfiles, .dockerignore and skaffold.yaml, checked by structure (no docker, no skaffold here).

Each service's image is multi-stage, installs exactly uv.lock's versions of its own package, runs as
a numeric non-root user and starts its console script; skaffold builds every image and deploys
charts/notifier with the images it built.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from notifier.devstack.supervisor import SERVICE_ENV_DEFAULTS
from tests.charts.chart_support import CHART, ROOT

# Service directory -> the package whose console script the image runs.
SERVICES = {
    "gateway-grpc": "notifier-gateway",
    "webhook": "notifier-webhook",
    "sender": "notifier-sender",
    "recorder": "notifier-recorder",
    "operator": "notifier-operator",
}
# The chart's component (values key) of each image.
COMPONENT = {
    "gateway-grpc": "gateway",
    "webhook": "webhook",
    "sender": "sender",
    "recorder": "recorder",
    "operator": "operator",
}


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
    ]


def _workspace_members() -> list[str]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        members += sorted(
            str(p.parent.relative_to(ROOT)) for p in ROOT.glob(f"{pattern}/pyproject.toml")
        )
    return members


def test_every_service_directory_has_a_dockerfile() -> None:
    services = {p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml")}
    assert services == set(SERVICES)
    assert all((ROOT / "services" / s / "Dockerfile").is_file() for s in services)


@pytest.mark.parametrize(("service", "package"), SERVICES.items())
def test_the_image_is_multi_stage_locked_and_non_root(service: str, package: str) -> None:
    steps = _instructions(ROOT / "services" / service / "Dockerfile")
    stages = [args for op, args in steps if op == "FROM"]
    assert len(stages) >= 2 and stages[0].endswith("AS build") and stages[-1].endswith("AS runtime")
    runtime = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    build = steps[: len(steps) - len(runtime)]

    copies = [args for op, args in build if op == "COPY"]
    assert "pyproject.toml uv.lock ./" in copies
    for member in _workspace_members():  # uv resolves the whole workspace from the lock
        assert f"{member}/pyproject.toml {member}/" in copies, f"{service} does not copy {member}"
    syncs = [args for op, args in build if op == "RUN" and "uv sync" in args]
    assert len(syncs) == 2
    for sync in syncs:
        assert "--frozen" in sync and "--no-dev" in sync and f"--package {package}" in sync
    assert "--no-install-workspace" in syncs[0] and "--no-editable" in syncs[1]

    # The runtime stage takes the venv only: no uv, no pip install, no sources.
    assert [args for op, args in runtime if op == "COPY" and "--from=build" in args] == [
        "--from=build /app/.venv /app/.venv"
    ]
    assert not [args for op, args in runtime if op == "RUN"]
    users = [args for op, args in runtime if op == "USER"]
    assert len(users) == 1 and re.fullmatch(r"[1-9][0-9]{3,}:[1-9][0-9]{3,}", users[0])
    (entrypoint,) = [args for op, args in runtime if op == "ENTRYPOINT"]
    assert entrypoint == f'["/app/.venv/bin/{package}"]'  # exec form: no shell at run time
    scripts = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())[
        "project"
    ]["scripts"]
    assert package in scripts


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_runs_with_the_dev_stacks_process_defaults(service: str) -> None:
    """What `make run` and the benchmarks give every service (two malloc arenas) is what
    the image gives it, so a deployment runs what was measured."""
    steps = _instructions(ROOT / "services" / service / "Dockerfile")
    runtime = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    settings = dict(
        pair.split("=", 1) for op, args in runtime if op == "ENV" for pair in args.split()
    )
    for name, value in SERVICE_ENV_DEFAULTS.items():
        assert settings.get(name) == value, f"{service}: ENV {name}={value} missing"


def test_the_gateway_image_carries_the_migrations_for_the_hook_job() -> None:
    steps = _instructions(ROOT / "services" / "gateway-grpc" / "Dockerfile")
    assert ("COPY", "migrations/ /app/migrations/") in steps
    assert ("ENV", "MIGRATIONS_DIR=/app/migrations") in steps


def test_the_build_context_leaves_local_state_out() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {
        ".git",
        ".venv",
        ".tools",
        ".devstack",
        "tests",
        "**/__pycache__",
        ".pytest_cache",
        ".mypy_cache",
    } <= ignored
    # ...but not what the images are built from.
    assert not {"libs", "services", "migrations", "uv.lock", "pyproject.toml", "tools"} & ignored


def test_skaffold_builds_every_image_and_deploys_the_chart_with_them() -> None:
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    assert config["apiVersion"].startswith("skaffold/v4") and config["kind"] == "Config"
    artifacts = {a["image"]: a for a in config["build"]["artifacts"]}
    assert set(artifacts) == set(SERVICES.values())
    for service, image in SERVICES.items():
        artifact = artifacts[image]
        assert artifact["context"] == "."
        assert artifact["docker"]["dockerfile"] == f"services/{service}/Dockerfile"
        assert (ROOT / artifact["docker"]["dockerfile"]).is_file()

    (release,) = config["deploy"]["helm"]["releases"]
    assert (ROOT / release["chartPath"]).resolve() == CHART
    for values_file in release.get("valuesFiles", []):
        assert (ROOT / values_file).is_file()
    assert release["setValues"] == {"image.registry": ""}
    templates = release["setValueTemplates"]
    for service, image in SERVICES.items():
        key = image.replace("-", "_")  # skaffold's template names replace - and / with _
        component = COMPONENT[service]
        assert templates[f"{component}.image.repository"] == f"{{{{.IMAGE_REPO_{key}}}}}"
        assert (
            templates[f"{component}.image.tag"]
            == f"{{{{.IMAGE_TAG_{key}}}}}@{{{{.IMAGE_DIGEST_{key}}}}}"
        )
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for path in templates:
        node = values
        for key in path.split("."):
            assert key in node, f"skaffold sets {path}, which values.yaml does not have"
            node = node[key]

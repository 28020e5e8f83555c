"""The gateway's TLS, mTLS and caller tokens as the chart wires them (ci/gateway-security)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.charts.chart_support import CHART, Rendered, env_of, pod_spec

Render = Callable[[Path], Rendered]
DEFAULT = CHART / "ci" / "default-values.yaml"
SECURE = CHART / "ci" / "gateway-security-values.yaml"


def gateway(out: Rendered) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = pod_spec(out.get("Deployment", "notifier-gateway"))
    (container,) = spec["containers"]
    return spec, container


def test_by_default_the_gateway_is_plaintext_without_tokens(rendered: Render) -> None:
    spec, container = gateway(rendered(DEFAULT))
    env = env_of(container)
    assert not {"GRPC_TLS_CERT_FILE", "GRPC_HEALTH_PORT", "GRPC_AUTH_TOKENS"} & set(env)
    assert env["GRPC_MAX_MESSAGE_BYTES"] == "1048576"
    assert env["GRPC_MAX_OPEN_STREAMS"] == "8"
    assert {v["name"] for v in spec["volumes"]} == {"tmp"}
    assert container["readinessProbe"]["grpc"] == {"port": 9090}


def test_tls_mounts_the_secrets_and_moves_the_probes_to_the_health_port(
    rendered: Render,
) -> None:
    spec, container = gateway(rendered(SECURE))
    env = env_of(container)
    assert env["GRPC_TLS_CERT_FILE"] == "/etc/notifier/tls/tls.crt"
    assert env["GRPC_TLS_KEY_FILE"] == "/etc/notifier/tls/tls.key"
    assert env["GRPC_TLS_CLIENT_CA_FILE"] == "/etc/notifier/client-ca/ca.crt"
    assert env["GRPC_HEALTH_PORT"] == "9091"
    volumes = {v["name"]: v["secret"] for v in spec["volumes"] if "secret" in v}
    assert volumes["tls"]["secretName"] == "notifier-gateway-cert"
    assert volumes["client-ca"] == {
        "secretName": "callers-ca",
        "defaultMode": 0o440,
        "items": [{"key": "ca.pem", "path": "ca.crt"}],
    }
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["tls"] == {"name": "tls", "mountPath": "/etc/notifier/tls", "readOnly": True}
    assert "subPath" not in mounts["client-ca"]  # subPath mounts never see a renewal
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["grpc"] == {"port": 9091}
    assert {"name": "health", "containerPort": 9091, "protocol": "TCP"} in container["ports"]


def test_caller_tokens_come_from_a_secret_only(rendered: Render) -> None:
    _, container = gateway(rendered(SECURE))
    assert env_of(container)["GRPC_AUTH_TOKENS"] == {
        "secretKeyRef": {"name": "notifier-gateway-callers", "key": "tokens"}
    }

"""charts/notifier renders with every CI values file into objects Kubernetes accepts, hardened.

Real tools: `helm lint --strict` and `helm template` (Helm 4 from the kubectl layer wheel), then
`kubernetes-validate --strict` over every rendered object against the oldest and newest Kubernetes
the chart supports. Structure checks cover what a schema cannot: probes, security contexts, hooks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.chart_support import (
    CHART,
    CI_VALUES,
    COMPONENTS,
    CUSTOM_KINDS,
    KUBE_VERSIONS,
    NAMESPACE,
    Rendered,
    env_of,
    helm_template,
    kubernetes_validate,
    pod_spec,
    render,
    run,
    tool,
)

Render = Callable[[Path], Rendered]
DEFAULT = CHART / "ci" / "default-values.yaml"
ALL_VALUES = [*CI_VALUES, CHART / "values-dev.yaml"]
IDS = [p.name for p in ALL_VALUES]
# What each process's settings call its shutdown grace (the chart must give Kubernetes more).
GRACE_ENV = {
    "gateway": "GRPC_GRACE_SECONDS",
    "webhook": "WEBHOOK_GRACE_SECONDS",
    "sender": "SENDER_GRACE_SECONDS",
    "recorder": "RECORDER_GRACE_SECONDS",
}


def ci(name: str) -> Path:
    return CHART / "ci" / f"{name}-values.yaml"


def test_the_tools_are_the_real_helm_4_and_kubectl_1_34() -> None:
    assert run(tool("helm"), "version", "--short").stdout.startswith("v4.")
    assert "Client Version: v1.34." in run(tool("kubectl"), "version", "--client").stdout


def test_the_chart_is_helm_v2_and_uses_no_helm4_only_features() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"  # Helm 3 and 4 both read v2 charts
    assert chart["kubeVersion"] == ">=1.28.0-0"
    for template in (CHART / "templates").rglob("*"):
        if template.is_file():
            text = template.read_text()
            # Helm 4 additions that Helm 3 lacks; the chart must render under both.
            for helm4_only in ("mustToYaml", "fromYamlArray", "toToml"):
                assert helm4_only not in text, f"{template.name} uses {helm4_only}"


@pytest.mark.parametrize("values_file", ALL_VALUES, ids=IDS)
def test_helm_lint_strict_passes(values_file: Path) -> None:
    result = run(tool("helm"), "lint", "--strict", str(CHART), "--values", str(values_file))
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values_file", ALL_VALUES, ids=IDS)
@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_object_passes_kubernetes_validate_strict(
    values_file: Path, kube_version: str, tmp_path: Path, rendered: Render
) -> None:
    output = tmp_path / "rendered.yaml"
    output.write_text(rendered(values_file).text)
    result = run(kubernetes_validate(), "--strict", "--quiet", "-k", kube_version, str(output))
    assert "ERROR" not in result.stdout, result.stdout
    skipped = set(re.findall(r"Couldn't find schema for kind (\w+)", result.stdout))
    assert skipped <= CUSTOM_KINDS, f"unvalidated kinds: {skipped - CUSTOM_KINDS}"


@pytest.mark.parametrize("values_file", ALL_VALUES, ids=IDS)
def test_custom_resources_have_the_structure_their_operators_expect(
    values_file: Path, rendered: Render
) -> None:
    out = rendered(values_file)
    for obj in out.objects:
        assert set(obj) <= {
            "apiVersion",
            "kind",
            "metadata",
            "spec",
            "data",
            "stringData",
            "type",
            "rules",
            "roleRef",
            "subjects",
            "automountServiceAccountToken",
        }
        assert obj["metadata"]["name"]
    for monitor in out.of_kind("ServiceMonitor"):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
        component = monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
        service = out.get("Service", monitor["metadata"]["name"])
        assert service["spec"]["selector"]["app.kubernetes.io/component"] == component
        assert "metrics" in {p["name"] for p in service["spec"]["ports"]}
    for rule in out.of_kind("PrometheusRule"):
        for group in rule["spec"]["groups"]:
            for alert in group["rules"]:
                assert {"alert", "expr", "for", "labels", "annotations"} <= set(alert)
                assert alert["labels"]["severity"] in {"warning", "critical"}
                assert {"summary", "description", "runbook"} <= set(alert["annotations"])
    for template in out.of_kind("MessageTemplate"):
        assert template["apiVersion"] == "whatsapp.notifier.dev/v1alpha1"
        assert {"templateId", "contentSid", "category", "body"} <= set(template["spec"])


@pytest.mark.parametrize("values_file", ALL_VALUES, ids=IDS)
def test_every_container_is_hardened_and_probed(values_file: Path, rendered: Render) -> None:
    out = rendered(values_file)
    for workload in out.of_kind("Deployment") + out.of_kind("Job"):
        spec = pod_spec(workload)
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
        mounts: set[str] = set()
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["privileged"] is False
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}
            assert container["resources"]["requests"] and container["resources"]["limits"]
            mounts |= {m["mountPath"] for m in container.get("volumeMounts", [])}
            if workload["kind"] == "Deployment":
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    assert probe in container, f"{workload['metadata']['name']} has no {probe}"
        assert "/tmp" in mounts  # Python's only writable place on a read-only root filesystem


def test_probes_use_grpc_for_the_gateway_and_http_for_the_others(rendered: Render) -> None:
    out = rendered(DEFAULT)
    expected = {
        "gateway": ({"grpc": {"port": 9090}},) * 3,
        "webhook": (
            {"httpGet": {"path": "/healthz", "port": "http"}},
            {"httpGet": {"path": "/healthz", "port": "http"}},
            {"httpGet": {"path": "/readyz", "port": "http"}},
        ),
        "sender": ({"httpGet": {"path": "/healthz", "port": "metrics"}},) * 3,
        "recorder": ({"httpGet": {"path": "/healthz", "port": "metrics"}},) * 3,
        "operator": ({"httpGet": {"path": "/healthz", "port": "health"}},) * 3,
    }
    for component, handlers in expected.items():
        (container,) = pod_spec(out.get("Deployment", f"notifier-{component}"))["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe, handler in zip(
            ("startupProbe", "livenessProbe", "readinessProbe"), handlers, strict=True
        ):
            actual = {k: v for k, v in container[probe].items() if k in ("grpc", "httpGet")}
            assert actual == handler, f"{component} {probe}"
            port = next(iter(handler.values()))["port"]
            assert port in ports or port in ports.values()
    sender = env_of(pod_spec(out.get("Deployment", "notifier-sender"))["containers"][0])
    assert sender["METRICS_PORT"] == "9102"
    operator = env_of(pod_spec(out.get("Deployment", "notifier-operator"))["containers"][0])
    assert operator["OPERATOR_LIVENESS_ENDPOINT"] == "http://0.0.0.0:8080/healthz"


@pytest.mark.parametrize("values_file", ALL_VALUES, ids=IDS)
def test_termination_grace_outlasts_each_process_own_grace(
    values_file: Path, rendered: Render
) -> None:
    for deployment in rendered(values_file).of_kind("Deployment"):
        component = deployment["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
        spec = pod_spec(deployment)
        grace = float(env_of(spec["containers"][0]).get(GRACE_ENV.get(component, ""), 20))
        assert spec["terminationGracePeriodSeconds"] > grace, component


def test_the_migration_job_is_a_pre_install_and_pre_upgrade_hook(rendered: Render) -> None:
    job = rendered(DEFAULT).get("Job", "notifier-migrations")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-weight"] == "0"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    spec = pod_spec(job)
    assert spec["restartPolicy"] == "Never" and "serviceAccountName" not in spec
    (container,) = spec["containers"]
    assert container["command"] == ["notifier-migrate"]
    assert container["image"] == "registry.example.com/notifier/notifier-gateway:0.1.0"
    env = env_of(container)
    assert env["MIGRATIONS_DIR"] == "/app/migrations"
    # At pre-install nothing of the release exists yet: the DSN comes from the existing Secret.
    assert env["DATABASE_URL"] == {
        "secretKeyRef": {"name": "notifier-postgres", "key": "DATABASE_URL"}
    }


def test_a_dev_install_gives_the_migration_hook_its_own_earlier_secret(rendered: Render) -> None:
    out = rendered(ci("dev-secret"))
    hook_secret = out.get("Secret", "notifier-migrations")
    annotations = hook_secret["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(annotations["helm.sh/hook-weight"]) < 0  # created before the Job (weight 0)
    assert "hook-succeeded" in annotations["helm.sh/hook-delete-policy"]
    job_env = env_of(pod_spec(out.get("Job", "notifier-migrations"))["containers"][0])
    assert job_env["DATABASE_URL"]["secretKeyRef"]["name"] == "notifier-migrations"
    dev = out.get("Secret", "notifier-dev-credentials")
    assert "helm.sh/hook" not in dev["metadata"].get("annotations", {})
    assert set(dev["stringData"]) == {"DATABASE_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"}
    sender = pod_spec(out.get("Deployment", "notifier-sender"))
    assert (
        "checksum/dev-secret"
        in out.get("Deployment", "notifier-sender")["spec"]["template"]["metadata"]["annotations"]
    )
    assert (
        env_of(sender["containers"][0])["TWILIO_AUTH_TOKEN"]["secretKeyRef"]["name"]
        == "notifier-dev-credentials"
    )


def test_by_default_secrets_are_only_referenced_never_made(rendered: Render) -> None:
    out = rendered(DEFAULT)
    assert out.of_kind("Secret") == []
    env = env_of(pod_spec(out.get("Deployment", "notifier-sender"))["containers"][0])
    assert env["DATABASE_URL"] == {
        "secretKeyRef": {"name": "notifier-postgres", "key": "DATABASE_URL"}
    }
    assert env["TWILIO_ACCOUNT_SID"] == {
        "secretKeyRef": {"name": "notifier-twilio", "key": "TWILIO_ACCOUNT_SID"}
    }
    assert env["TWILIO_AUTH_TOKEN"] == {
        "secretKeyRef": {"name": "notifier-twilio", "key": "TWILIO_AUTH_TOKEN"}
    }


def test_existing_secrets_with_custom_keys_are_wired_to_every_consumer(rendered: Render) -> None:
    out = rendered(ci("existing-secret"))
    assert out.of_kind("Secret") == []
    dsn = {"secretKeyRef": {"name": "shared-pg", "key": "notifier-dsn"}}
    for component in ("gateway", "sender", "recorder", "operator"):
        container = pod_spec(out.get("Deployment", f"notifier-{component}"))["containers"][0]
        assert env_of(container)["DATABASE_URL"] == dsn, component
    job = pod_spec(out.get("Job", "notifier-migrations"))["containers"][0]
    assert env_of(job)["DATABASE_URL"] == dsn
    webhook = pod_spec(out.get("Deployment", "notifier-webhook"))["containers"][0]
    assert env_of(webhook)["TWILIO_AUTH_TOKEN"] == {
        "secretKeyRef": {"name": "twilio-prod", "key": "token"}
    }
    assert {"secretRef": {"name": "kafka-sasl"}} in webhook["envFrom"]
    sender = env_of(pod_spec(out.get("Deployment", "notifier-sender"))["containers"][0])
    assert sender["TWILIO_MESSAGING_SERVICE_SID"] == "MG0123456789abcdef0123456789abcdef"
    assert "TWILIO_WHATSAPP_FROM" not in sender
    config = out.get("ConfigMap", "notifier-config")["data"]
    assert config["KAFKA_CONFIG_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["KAFKA_CONFIG_SASL_MECHANISM"] == "SCRAM-SHA-512"


def test_config_lives_in_a_configmap_whose_checksum_restarts_the_pods(rendered: Render) -> None:
    default, other = rendered(DEFAULT), rendered(ci("existing-secret"))
    config = default.get("ConfigMap", "notifier-config")["data"]
    assert config["KAFKA_BOOTSTRAP_SERVERS"] == "kafka-bootstrap.kafka.svc:9092"
    assert config["KAFKA_TOPIC_OUTBOUND"] == "whatsapp.outbound.v1"
    assert config["PUBLIC_WEBHOOK_URL"] == "https://hooks.example.com"

    def checksum(out: Rendered, component: str) -> str:
        annotations = out.get("Deployment", f"notifier-{component}")["spec"]["template"][
            "metadata"
        ]["annotations"]
        return str(annotations["checksum/config"])

    for component in COMPONENTS:
        assert re.fullmatch(r"[0-9a-f]{64}", checksum(default, component))
        assert checksum(default, component) != checksum(other, component)


def test_the_operator_runs_alone_with_recreate_and_rbac_for_its_crd(rendered: Render) -> None:
    out = rendered(DEFAULT)
    operator = out.get("Deployment", "notifier-operator")
    assert operator["spec"]["replicas"] == 1
    assert operator["spec"]["strategy"] == {"type": "Recreate"}
    spec = pod_spec(operator)
    assert spec["serviceAccountName"] == "notifier-operator"
    assert spec["automountServiceAccountToken"] is True
    assert env_of(spec["containers"][0])["OPERATOR_NAMESPACE"] == NAMESPACE
    for component in ("gateway", "webhook", "sender", "recorder"):
        assert (
            pod_spec(out.get("Deployment", f"notifier-{component}"))["automountServiceAccountToken"]
            is False
        )
    role = out.get("Role", "notifier-operator")
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): set(r["verbs"]) for r in role["rules"]}
    assert rules[(("whatsapp.notifier.dev",), ("messagetemplates",))] == {
        "get",
        "list",
        "watch",
        "patch",
    }
    assert rules[(("whatsapp.notifier.dev",), ("messagetemplates/status",))] == {"get", "patch"}
    assert rules[(("",), ("events",))] == {"create"}
    cluster = out.get("ClusterRole", "notifier-operator")
    resources = {r for rule in cluster["rules"] for r in rule["resources"]}
    assert resources == {"customresourcedefinitions", "namespaces"}  # read only
    assert all(set(r["verbs"]) <= {"get", "list", "watch"} for r in cluster["rules"])
    binding = out.get("RoleBinding", "notifier-operator")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "notifier-operator", "namespace": NAMESPACE}
    ]
    assert out.names("PodDisruptionBudget") == {
        f"notifier-{c}" for c in ("gateway", "webhook", "sender", "recorder")
    }


def test_the_operator_rbac_follows_the_namespaces_it_watches(rendered: Render) -> None:
    namespaced = rendered(ci("operator-namespaces"))
    roles = namespaced.of_kind("Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["logistics", "notifier"]
    assert len(namespaced.of_kind("RoleBinding")) == 2
    operator = pod_spec(namespaced.get("Deployment", "notifier-operator"))["containers"][0]
    assert env_of(operator)["OPERATOR_NAMESPACE"] == "notifier,logistics"
    assert "notifier-sender" not in namespaced.names("Deployment")

    cluster_wide = rendered(ci("operator-cluster-wide"))
    assert cluster_wide.of_kind("Role") == [] and cluster_wide.of_kind("RoleBinding") == []
    rules = cluster_wide.get("ClusterRole", "notifier-operator")["rules"]
    assert any("messagetemplates" in r["resources"] for r in rules)
    operator = pod_spec(cluster_wide.get("Deployment", "notifier-operator"))["containers"][0]
    assert env_of(operator)["OPERATOR_NAMESPACE"] == ""
    assert env_of(operator)["OPERATOR_RETRY_DELAY_SECONDS"] == "5"


def test_the_crd_ships_in_crds_and_the_five_templates_are_switchable(rendered: Render) -> None:
    out = rendered(DEFAULT)
    crd = out.get("CustomResourceDefinition", "messagetemplates.whatsapp.notifier.dev")
    assert crd["spec"]["names"]["kind"] == "MessageTemplate"
    templates = {t["spec"]["templateId"]: t for t in out.of_kind("MessageTemplate")}
    expected = {
        "order_confirmation": ["order_id"],
        "shipment_dispatched": ["order_id", "tracking_id", "estimated_delivery"],
        "delivery_eta": ["order_id", "estimated_delivery"],
        "delivery_confirmation": ["order_id"],
        "delay_notification": ["order_id", "reason", "new_estimated_delivery"],
    }
    assert {
        t: [p["name"] for p in m["spec"]["parameters"]] for t, m in templates.items()
    } == expected
    examples = CHART.parents[1] / "services" / "operator" / "examples"
    for example in examples.glob("*.yaml"):
        sample = yaml.safe_load(example.read_text())
        assert templates[sample["spec"]["templateId"]]["spec"] == sample["spec"], example.name
    assert rendered(ci("templates-off")).of_kind("MessageTemplate") == []


def test_autoscaling_replaces_the_replica_count_and_can_be_switched_off(rendered: Render) -> None:
    out = rendered(DEFAULT)
    for component in ("gateway", "webhook"):
        hpa = out.get("HorizontalPodAutoscaler", f"notifier-{component}")
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": f"notifier-{component}",
        }
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
        assert "replicas" not in out.get("Deployment", f"notifier-{component}")["spec"]
    off = rendered(ci("autoscaling-off"))
    assert off.of_kind("HorizontalPodAutoscaler") == []
    assert off.get("Deployment", "notifier-gateway")["spec"]["replicas"] == 3
    assert off.names("PodDisruptionBudget") == {"notifier-sender", "notifier-recorder"}


def test_the_webhook_ingress_serves_the_public_url_host_over_tls(rendered: Render) -> None:
    ingress = rendered(DEFAULT).get("Ingress", "notifier-webhook")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "hooks.example.com"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["hooks.example.com"], "secretName": "notifier-webhook-tls"}
    ]
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/webhook" and path["pathType"] == "Prefix"
    assert path["backend"]["service"] == {"name": "notifier-webhook", "port": {"name": "http"}}
    off = rendered(ci("ingress-off"))
    assert off.of_kind("Ingress") == []
    assert off.get("Service", "notifier-webhook")["spec"]["type"] == "LoadBalancer"


def _rules(policy: dict[str, Any], direction: str) -> list[tuple[set[int], list[Any]]]:
    key = "to" if direction == "egress" else "from"
    return [
        ({p["port"] for p in r["ports"]}, r.get(key, [])) for r in policy["spec"].get(direction, [])
    ]


def test_network_policies_allow_each_process_only_what_it_needs(rendered: Render) -> None:
    out = rendered(DEFAULT)
    assert out.names("NetworkPolicy") == {f"notifier-{c}" for c in COMPONENTS}
    egress_ports = {
        "gateway": [{53}, {5432}, {9092, 9093}],
        "webhook": [{53}, {9092, 9093}],
        "sender": [{53}, {5432}, {9092, 9093}, {443}],
        "recorder": [{53}, {5432}, {9092, 9093}],
        "operator": [{53}, {443, 6443}, {5432}],
    }
    ingress_ports = {
        "gateway": [{9090}, {9101}],
        "webhook": [{8080}, {9104}],
        "sender": [{9102}],
        "recorder": [{9103}],
        "operator": [],
    }
    for component in COMPONENTS:
        policy = out.get("NetworkPolicy", f"notifier-{component}")
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert (
            policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == component
        )
        assert [ports for ports, _ in _rules(policy, "egress")] == egress_ports[component]
        assert [ports for ports, _ in _rules(policy, "ingress")] == ingress_ports[component]
    sender = out.get("NetworkPolicy", "notifier-sender")
    _, twilio_peers = _rules(sender, "egress")[3]
    assert twilio_peers == [
        {
            "ipBlock": {
                "cidr": "0.0.0.0/0",
                "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
            }
        }
    ]
    webhook = out.get("NetworkPolicy", "notifier-webhook")
    _, callers = _rules(webhook, "ingress")[0]
    assert callers[0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    assert rendered(ci("networkpolicy-off")).of_kind("NetworkPolicy") == []


def test_monitoring_objects_follow_values_and_the_cluster_api(rendered: Render) -> None:
    out = rendered(DEFAULT)
    assert out.names("ServiceMonitor") == {
        f"notifier-{c}" for c in ("gateway", "webhook", "sender", "recorder")
    }
    assert out.names("PrometheusRule") == {"notifier"}
    dashboard = out.get("ConfigMap", "notifier-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert "panels" in yaml.safe_load(dashboard["data"]["notifier.json"])
    off = rendered(ci("monitoring-off"))
    assert not off.of_kind("ServiceMonitor") and not off.of_kind("PrometheusRule")
    assert "notifier-dashboard" not in off.names("ConfigMap")
    # Without the Prometheus Operator's API the release still installs, and NOTES say why.
    without = render(DEFAULT, prometheus_operator=False)
    assert not without.of_kind("ServiceMonitor") and not without.of_kind("PrometheusRule")


def test_webhook_metrics_use_a_writable_multiprocess_directory(rendered: Render) -> None:
    spec = pod_spec(rendered(DEFAULT).get("Deployment", "notifier-webhook"))
    (container,) = spec["containers"]
    directory = env_of(container)["PROMETHEUS_MULTIPROC_DIR"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    mount = next(path for path in mounts if directory.startswith(path + "/"))
    volume = next(v for v in spec["volumes"] if v["name"] == mounts[mount])
    assert "emptyDir" in volume


def test_images_come_from_one_registry_and_can_be_overridden_per_component(
    rendered: Render,
) -> None:
    out = rendered(DEFAULT)
    for component in COMPONENTS:
        (container,) = pod_spec(out.get("Deployment", f"notifier-{component}"))["containers"]
        assert container["image"] == f"registry.example.com/notifier/notifier-{component}:0.1.0"
    skaffold_like = render(
        DEFAULT,
        sets=(
            "image.registry=",
            "gateway.image.repository=eu.gcr.io/p/notifier-gateway",
            "gateway.image.tag=abc@sha256:" + "0" * 64,
        ),
    )
    (gateway,) = pod_spec(skaffold_like.get("Deployment", "notifier-gateway"))["containers"]
    assert gateway["image"] == "eu.gcr.io/p/notifier-gateway:abc@sha256:" + "0" * 64
    job = pod_spec(skaffold_like.get("Job", "notifier-migrations"))["containers"][0]
    assert job["image"] == gateway["image"]


def test_notes_tell_what_to_do_next() -> None:
    notes = helm_template(DEFAULT, sets=("publicWebhookUrl=https://hooks.acme.test",)).stdout
    rendered_notes = run(
        tool("helm"),
        "install",
        "notifier",
        str(CHART),
        "--dry-run=client",
        "--namespace",
        NAMESPACE,
        "--set",
        "publicWebhookUrl=https://hooks.acme.test",
    )
    text = rendered_notes.stdout
    assert "NOTES:" in text and notes
    assert "grpcurl -plaintext" in text
    assert "https://hooks.acme.test/webhook/inbound" in text
    assert "kubectl -n notifier get messagetemplates" in text
    assert "no monitoring.coreos.com/v1 API" in text  # a dry run has no Prometheus Operator

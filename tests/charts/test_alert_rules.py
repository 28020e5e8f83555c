"""The PrometheusRule and the dashboard: real metric names only, rules promtool accepts and tests.

Metric names are checked against the registries the processes build (exported_metrics), so a
renamed metric breaks this test instead of silently muting an alert.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.chart_support import CHART, Rendered, promtool, render, run
from tests.charts.exported_metrics import PROMETHEUS_SERIES, exported_names, metric_names

HERE = Path(__file__).parent
DEFAULT = CHART / "ci" / "default-values.yaml"


@pytest.fixture(scope="module")
def chart() -> Rendered:
    return render(DEFAULT)


@pytest.fixture(scope="module")
def groups(chart: Rendered) -> list[dict[str, Any]]:
    (rule,) = chart.of_kind("PrometheusRule")
    result: list[dict[str, Any]] = rule["spec"]["groups"]
    return result


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    return exported_names()


def _dashboard_queries(chart: Rendered) -> list[str]:
    dashboard = json.loads(chart.get("ConfigMap", "notifier-dashboard")["data"]["notifier.json"])
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    queries += [
        v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"
    ]
    return queries


def test_the_name_extractor_finds_metrics_and_skips_functions_and_labels() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, namespace) (rate(notifier_x_seconds_bucket"
        '{job="a",code=~"5.."}[$__rate_interval]))) > 1e-3'
        ' and on (namespace) absent(up{job="b"} == 1)'
    )
    assert metric_names(expr) == {"notifier_x_seconds_bucket", "up"}
    assert metric_names("label_values(notifier_sender_sent_total, namespace)") == {
        "notifier_sender_sent_total"
    }


def test_the_registries_hold_what_the_alerts_are_about(exported: dict[str, set[str]]) -> None:
    assert "notifier_sender_failed_total" in exported["sender"]
    assert "notifier_recorder_status_lag_seconds_bucket" in exported["recorder"]
    assert "notifier_webhook_requests_total" in exported["webhook"]
    assert "notifier_gateway_outbox_backlog_rows" in exported["gateway"]
    assert "process_resident_memory_bytes" in exported["gateway"]


def test_rules_and_dashboard_use_only_metrics_the_processes_export(
    chart: Rendered, groups: list[dict[str, Any]], exported: dict[str, set[str]]
) -> None:
    known = set().union(*exported.values()) | PROMETHEUS_SERIES
    queries = [r["expr"] for g in groups for r in g["rules"]] + _dashboard_queries(chart)
    used = set().union(*(metric_names(q) for q in queries))
    assert used - known == set(), f"not exported by any process: {sorted(used - known)}"
    for name in used:
        for process in ("gateway", "webhook", "sender", "recorder"):
            if name.startswith(f"notifier_{process}_"):
                assert name in exported[process], f"{name} is not exported by the {process}"
    # Every panel of the issue is there: accepts, sends, failures, statuses, waits, lag, DLQ...
    for metric in (
        "notifier_gateway_messages_accepted_total",
        "notifier_sender_sent_total",
        "notifier_recorder_events_applied_total",
        "notifier_sender_rate_limit_wait_seconds_bucket",
        "notifier_recorder_status_lag_seconds_bucket",
        "notifier_gateway_outbox_backlog_rows",
        "notifier_sender_dead_lettered_total",
        "notifier_webhook_requests_total",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ):
        assert any(metric in metric_names(q) for q in _dashboard_queries(chart)), metric


def test_the_alerts_that_matter_at_3am_are_there(groups: list[dict[str, Any]]) -> None:
    alerts = {r["alert"] for g in groups for r in g["rules"]}
    assert {
        "NotifierSendFailureRatioHigh",
        "NotifierSenderDeadLetters",
        "NotifierRecorderDeadLetters",
        "NotifierSenderRateLimitSaturated",
        "NotifierCallbackLagHigh",
        "NotifierSenderBackpressure",
        "NotifierOutboxBacklog",
        "NotifierWebhookErrors",
        "NotifierWebhookSignatureFailures",
        "NotifierTargetDown",
        "NotifierComponentDown",
    } <= alerts


def _write_rules(groups: list[dict[str, Any]], path: Path, annotations: bool = True) -> None:
    if not annotations:
        groups = [
            {**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]}
            for g in groups
        ]
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))


def test_promtool_accepts_the_rules(groups: list[dict[str, Any]], tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    _write_rules(groups, rules)
    result = run(promtool(), "check", "rules", str(rules))
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_unit_tests_of_the_main_alerts_pass(
    groups: list[dict[str, Any]], tmp_path: Path
) -> None:
    binary = promtool()
    _write_rules(groups, tmp_path / "rules.yaml", annotations=False)
    shutil.copy(HERE / "alerts_test.yaml", tmp_path / "alerts_test.yaml")
    result = run(binary, "test", "rules", str(tmp_path / "alerts_test.yaml"), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_alerts_follow_the_components_that_are_deployed() -> None:
    out = render(DEFAULT, sets=("sender.enabled=false", "twilio.whatsappFrom="))
    (rule,) = out.of_kind("PrometheusRule")
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert not {
        a for a in alerts if a.startswith("NotifierSender") or a == "NotifierSendFailureRatioHigh"
    }
    components = {
        r["labels"]["component"]
        for g in rule["spec"]["groups"]
        for r in g["rules"]
        if r["alert"] == "NotifierComponentDown"
    }
    assert components == {"gateway", "webhook", "recorder"}

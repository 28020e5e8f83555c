"""values.schema.json (enforced by helm) refuses wrong values; the chart refuses bad combinations.

Every case runs the real `helm template`, so the message is the one a user would see.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.charts.chart_support import CHART, helm_template

DEFAULT = CHART / "ci" / "default-values.yaml"
SCHEMA = json.loads((CHART / "values.schema.json").read_text())


def test_the_schema_is_draft7_and_accepts_the_defaults_and_every_ci_file() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["additionalProperties"] is False
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.Draft7Validator(SCHEMA).validate(defaults)
    assert set(SCHEMA["required"]) == set(defaults)


def _objects(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            found.append((path, node))
        for key, value in node.items():
            found += _objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _objects(value, f"{path}/{i}")
    return found


def test_every_object_with_properties_is_closed() -> None:
    for path, node in _objects(SCHEMA):
        assert node.get("additionalProperties") is False, f"{path or '/'} allows unknown keys"


def _value_keys(lines: list[str]) -> list[tuple[int, list[str]]]:
    """(line number, key path) of every mapping key in values.yaml outside list items."""
    keys: list[tuple[int, list[str]]] = []
    stack: list[tuple[int, str]] = []
    for number, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "-")):
            continue
        match = re.match(r"([\w.-]+):", stripped)
        if match is None:
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(1)))
        keys.append((number, [key for _, key in stack]))
    return keys


def _is_chart_key(path: list[str]) -> bool:
    """A key the chart defines itself, not one inside a Kubernetes-shaped or shared block."""
    node: dict[str, Any] = SCHEMA
    for key in path:
        if "$ref" in node or key not in node.get("properties", {}):
            return False
        node = node["properties"][key]
    return True


def test_every_value_has_a_comment_and_the_file_points_at_the_schema() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    assert "values.schema.json" in lines[0]
    checked = 0
    for number, path in _value_keys(lines):
        if _is_chart_key(path):
            checked += 1
            above = lines[number - 1].strip()
            assert above.startswith("#"), (
                f"values.yaml:{number + 1} {'.'.join(path)} has no comment"
            )
    assert checked > 150


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("gateway.replicas=two", "replicas"),
        ("gateway.unknownKey=1", "unknownKey"),
        ("logLevel=TRACE", "logLevel"),
        ("publicWebhookUrl=hooks.example.com", "publicWebhookUrl"),
        ("publicWebhookUrl=https://hooks.example.com/webhook/status", "publicWebhookUrl"),
        ("kafka.bootstrapServers=", "bootstrapServers"),
        ("kafka.partitions=0", "partitions"),
        ("kafka.config.sasl\\.password=hunter2", "sasl.password"),
        ("twilio.whatsappFrom=0044123", "whatsappFrom"),
        ("twilio.messagingServiceSid=MGnope", "messagingServiceSid"),
        ("whatsapp.senderMps=0", "senderMps"),
        ("webhook.graceSeconds=0", "graceSeconds"),
        ("webhook.ingress.paths[0]=webhook", "paths"),
        ("sender.resources.requests.gpu=1", "gpu"),
        ("networkPolicy.kafka.ports[0]=70000", "ports"),
        ("monitoring.prometheusRule.thresholds.sendFailureRatio=2", "sendFailureRatio"),
        ("messageTemplates.items[0].contentSid=HXnope", "contentSid"),
        ("gateway.grpcPort=null", "grpcPort"),
    ],
)
def test_wrong_values_are_refused_by_the_schema(setting: str, complaint: str) -> None:
    result = helm_template(DEFAULT, sets=(setting,), check=False)
    assert result.returncode != 0, f"{setting} was accepted"
    assert "schema" in result.stderr and complaint in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (("postgres.existingSecret=",), "set postgres.existingSecret"),
        (
            ("twilio.existingSecret=", "devSecrets.twilioAccountSid=AC" + "0" * 32),
            "set twilio.existingSecret",
        ),
        (
            ("twilio.whatsappFrom=",),
            "the sender needs twilio.whatsappFrom or twilio.messagingServiceSid",
        ),
        (("operator.enabled=false",), "messageTemplates.enabled needs operator.enabled"),
        (("operator.watchNamespaces[0]=elsewhere",), "which operator.watchNamespaces leaves out"),
    ],
)
def test_bad_combinations_fail_with_a_message_saying_what_to_set(
    settings: tuple[str, ...], message: str
) -> None:
    result = helm_template(DEFAULT, sets=settings, check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_secrets_can_only_come_from_values_through_the_dev_block(tmp_path: Path) -> None:
    # The only places a credential value may be written are devSecrets.*; everything else
    # that names a credential is the name of an existing Secret or a key in it.
    properties = SCHEMA["properties"]
    assert set(properties["postgres"]["properties"]) == {"existingSecret", "urlKey"}
    assert set(properties["twilio"]["properties"]) - {
        "existingSecret",
        "accountSidKey",
        "authTokenKey",
    } == {"whatsappFrom", "messagingServiceSid", "apiUrl"}
    assert "DEVELOPMENT ONLY" in properties["devSecrets"]["description"]

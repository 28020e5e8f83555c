"""The MessageTemplate CRD: valid and structural; its schema takes the samples, refuses bad specs.

The CRD object itself is checked against Kubernetes' own schema (kubernetes-validate); instances
go through the API server's checks as reproduced in apiserver_checks.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from notifier.operator.handlers import GROUP, PLURAL, VERSION
from notifier.operator.reconcile import template_from_spec
from tests.unit.operator.apiserver_checks import (
    EXAMPLES,
    EXAMPLES_DIR,
    as_json_schema,
    load_crd,
    nodes,
    open_api_schema,
    rejections,
)


def sample() -> dict[str, Any]:
    resource: dict[str, Any] = yaml.safe_load(
        (EXAMPLES_DIR / "shipment-dispatched.yaml").read_text()
    )
    return resource


def test_the_crd_is_a_valid_kubernetes_object() -> None:
    kubernetes_validate.validate(load_crd(), "1.34", strict=True)


def test_the_crd_names_the_group_version_and_kind_the_operator_watches() -> None:
    crd = load_crd()
    assert crd["metadata"]["name"] == f"{PLURAL}.{GROUP}"
    assert (crd["spec"]["group"], crd["spec"]["scope"]) == (GROUP, "Namespaced")
    assert crd["spec"]["names"]["kind"] == "MessageTemplate"
    assert crd["spec"]["names"]["shortNames"] == ["mtpl"]
    (version,) = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == (VERSION, True, True)
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Template"] == ".spec.templateId"
    assert columns["Category"] == ".spec.category"
    assert columns["Phase"] == ".status.phase"
    assert columns["Age"] == ".metadata.creationTimestamp"


def test_the_schema_is_structural() -> None:
    schema = open_api_schema()
    assert set(schema["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert schema["properties"]["metadata"] == {"type": "object"}
    for path, node in nodes(schema):
        assert "type" in node, f"{path} has no type"
        assert not {"$ref", "definitions", "uniqueItems"} & node.keys(), path
        if node["type"] == "array":
            assert "items" in node, f"{path} has no items"
        if node["type"] == "object" and path != ".metadata":
            assert "properties" in node, f"{path} allows any field"
        for key in node.get("x-kubernetes-list-map-keys", []):
            assert key in node["items"]["required"], f"{path} map key {key} must be required"
        if "default" in node:
            jsonschema.Draft4Validator(as_json_schema(node)).validate(node["default"])


def test_parameter_names_are_unique_and_template_ids_immutable_by_schema() -> None:
    spec = open_api_schema()["properties"]["spec"]
    assert spec["properties"]["parameters"]["x-kubernetes-list-type"] == "map"
    assert spec["properties"]["parameters"]["x-kubernetes-list-map-keys"] == ["name"]
    rules = spec["properties"]["templateId"]["x-kubernetes-validations"]
    assert [r["rule"] for r in rules] == ["self == oldSelf"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_each_sample_resource_is_accepted_by_the_schema_and_the_operator(path: Path) -> None:
    resource = yaml.safe_load(path.read_text())
    assert rejections(resource) == []
    assert not hasattr(template_from_spec(resource["spec"]), "problems")
    assert resource["metadata"]["name"] == resource["spec"]["templateId"].replace("_", "-")


def test_the_samples_are_the_five_logistics_templates() -> None:
    ids = {yaml.safe_load(p.read_text())["spec"]["templateId"] for p in EXAMPLES}
    assert ids == {
        "order_confirmation",
        "shipment_dispatched",
        "delivery_eta",
        "delivery_confirmation",
        "delay_notification",
    }


def _without(key: str) -> dict[str, Any]:
    resource = sample()
    del resource["spec"][key]
    return resource


def _with(**fields: Any) -> dict[str, Any]:
    resource = sample()
    resource["spec"].update(fields)
    return resource


def _with_parameter(**fields: Any) -> dict[str, Any]:
    resource = sample()
    resource["spec"]["parameters"][0].update(fields)
    return resource


# Each bad resource, and a fragment of the first reason the API server would give.
BAD: dict[str, tuple[dict[str, Any], str]] = {
    "missing content SID": (_without("contentSid"), "'contentSid' is a required property"),
    "missing template id": (_without("templateId"), "'templateId' is a required property"),
    "missing category": (_without("category"), "'category' is a required property"),
    "missing body": (_without("body"), "'body' is a required property"),
    "content SID of another kind": (_with(contentSid="MG" + "0" * 32), "does not match '^HX"),
    "content SID with capitals": (_with(contentSid="HX" + "A" * 32), "does not match '^HX"),
    "wrong category": (_with(category="transactional"), "'transactional' is not one of"),
    "template id with a hyphen": (_with(templateId="shipment-dispatched"), "does not match"),
    "template id too long": (_with(templateId="a" * 65), "is too long"),
    "empty body": (_with(body=""), "'' should be non-empty"),
    "body too long": (
        _with(body="{{order_id}} {{tracking_id}} {{estimated_delivery}}" + "x" * 1000),
        "is too long",
    ),
    "language in words": (_with(language="English"), "'English' does not match"),
    "enabled as text": (_with(enabled="yes"), "'yes' is not of type 'boolean'"),
    "unknown field": (_with(contentSID="HX" + "0" * 32), "'contentSID' was unexpected"),
    "parameter name with spaces": (_with_parameter(name="order id"), "'order id' does not match"),
    "parameter name with capitals": (_with_parameter(name="OrderId"), "'OrderId' does not match"),
    "parameter without a name": (
        _with(parameters=[{"required": True}]),
        "'name' is a required property",
    ),
    "parameter max length 0": (_with_parameter(maxLength=0), "less than the minimum of 1"),
    "parameter max length above 1024": (_with_parameter(maxLength=5000), "greater than the max"),
    "parameter declared twice": (
        _with(parameters=[{"name": "order_id"}, {"name": "order_id"}], body="Order {{order_id}}"),
        ".spec.parameters: duplicate key ('order_id',)",
    ),
    "declared parameter missing from the body": (
        _with(body="Order {{order_id}} ships."),
        "every declared parameter must appear in the body",
    ),
    "too many parameters": (
        _with(
            parameters=[{"name": f"p{i}"} for i in range(21)],
            body=" ".join(f"{{{{p{i}}}}}" for i in range(21)),
        ),
        "is too long",
    ),
    "unknown phase": ({**sample(), "status": {"phase": "Done"}}, "'Done' is not one of"),
}


@pytest.mark.parametrize(("resource", "reason"), BAD.values(), ids=BAD.keys())
def test_bad_resources_are_rejected_by_the_schema(resource: dict[str, Any], reason: str) -> None:
    found = rejections(resource)
    assert found and reason in found[0], found


def test_the_cel_rule_names_what_is_wrong() -> None:
    assert rejections(_with(body="Order {{order_id}} ships.")) == [
        ".spec: every declared parameter must appear in the body as {{name}}"
    ]


def test_changing_the_template_id_is_rejected_but_other_changes_are_not() -> None:
    old = sample()
    renamed = copy.deepcopy(old)
    renamed["spec"]["templateId"] = "shipment_sent"
    assert rejections(renamed, old) == [
        ".spec.templateId: templateId is immutable; create a new MessageTemplate instead"
    ]
    reworded = copy.deepcopy(old)
    reworded["spec"]["category"] = "marketing"
    assert rejections(reworded, old) == []

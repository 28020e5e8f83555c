"""What the API server checks on a MessageTemplate, reproduced offline (no API server here).

Instances against `openAPIV3Schema` with jsonschema (unknown fields refused, as `kubectl apply`'s
strict field validation does), list-map key uniqueness, and the CEL rules run by cel-python.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

ROOT = Path(__file__).resolve().parents[3]
CRD_FILE = ROOT / "charts/notifier/crds/messagetemplates.yaml"
EXAMPLES_DIR = ROOT / "services/operator/examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.yaml"))
Schema = dict[str, Any]


def load_crd() -> dict[str, Any]:
    return yaml.safe_load(CRD_FILE.read_text())  # type: ignore[no-any-return]


def open_api_schema() -> Schema:
    (version,) = load_crd()["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def nodes(schema: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every schema node with its path, depth first."""
    yield path or ".", schema
    for name, child in schema.get("properties", {}).items():
        yield from nodes(child, f"{path}.{name}")
    if "items" in schema:
        yield from nodes(schema["items"], f"{path}[]")


def as_json_schema(schema: Schema) -> Schema:
    """The structural schema as plain JSON Schema: k8s keys dropped, unknown fields refused."""
    result = {k: as_json_schema(v) if k == "items" else v for k, v in schema.items()}
    result = {k: v for k, v in result.items() if not k.startswith("x-kubernetes-")}
    if "properties" in schema:
        result["properties"] = {k: as_json_schema(v) for k, v in schema["properties"].items()}
        result["additionalProperties"] = False
    return result


def list_map_errors(schema: Schema, value: Any, path: str = "") -> list[str]:
    """Duplicate keys in `x-kubernetes-list-type: map` lists, which the API server refuses."""
    errors: list[str] = []
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            if name in value:
                errors += list_map_errors(child, value[name], f"{path}.{name}")
    elif isinstance(value, list) and "items" in schema:
        if schema.get("x-kubernetes-list-type") == "map":
            keys = [
                tuple(item.get(k) for k in schema["x-kubernetes-list-map-keys"]) for item in value
            ]
            errors += [f"{path}: duplicate key {key}" for key in set(keys) if keys.count(key) > 1]
        for index, item in enumerate(value):
            errors += list_map_errors(schema["items"], item, f"{path}[{index}]")
    return errors


def cel_errors(schema: Schema, value: Any, old: Any = None, path: str = "") -> list[str]:
    """The messages of the CEL rules `value` breaks; transition rules only when `old` is given."""
    errors: list[str] = []
    for rule in schema.get("x-kubernetes-validations", []):
        if "oldSelf" in rule["rule"] and old is None:
            continue
        activation = {"self": json_to_cel(value)}
        if old is not None:
            activation["oldSelf"] = json_to_cel(old)
        try:
            passed = _program(rule["rule"]).evaluate(activation)
        except CELEvalError as exc:  # e.g. a required field is missing: refused too
            errors.append(f"{path}: {rule['rule']!r} failed: {exc.args[0]}")
            continue
        if not passed:
            errors.append(f"{path}: {rule['message']}")
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            if name in value:
                previous = old.get(name) if isinstance(old, dict) else None
                errors += cel_errors(child, value[name], previous, f"{path}.{name}")
    return errors


def rejections(resource: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    """Why the API server would refuse `resource` (empty when it would accept it)."""
    schema = open_api_schema()
    validator = jsonschema.Draft4Validator(as_json_schema(schema))
    errors = [error.message for error in validator.iter_errors(resource)]
    return errors + list_map_errors(schema, resource) + cel_errors(schema, resource, old)


@cache
def _program(rule: str) -> celpy.Runner:
    env = celpy.Environment()
    return env.program(env.compile(rule))

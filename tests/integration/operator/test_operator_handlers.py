"""The kopf handlers against a real PostgreSQL: rows written, status patched, errors raised."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import kopf
import pytest
import yaml

from notifier.common.db import Database
from notifier.common.migrate import apply_migrations
from tests.fixtures.postgres import MIGRATIONS_DIR
from tests.integration.operator.operator_calls import (
    RETRY_DELAY,
    SID,
    PostedEvents,
    a_resource,
    apply,
    changed,
    delete,
    owner,
    template_row,
)

pytestmark = pytest.mark.integration

EXAMPLES = sorted(
    (Path(__file__).resolve().parents[3] / "services/operator/examples").glob("*.yaml")
)


def test_a_new_resource_is_stored_owned_by_it_and_shown_ready(
    memo: kopf.Memo, database: Database, posted_events: PostedEvents
) -> None:
    resource = a_resource()
    template_id = resource["spec"]["templateId"]
    patch = apply(resource, memo)
    assert template_row(database, template_id) == {
        "name": template_id,
        "language": "en",
        "content_sid": SID,
        "category": "utility",
        "body": "Order {{order_id}} is at locker {{locker}}.",
        "parameters": [
            {"name": "order_id", "required": True, "max_length": 64},
            {"name": "locker", "required": False, "max_length": 16},
        ],
        "enabled": True,
        "source": owner(resource),
    }
    status = patch["status"]
    assert (status["phase"], status["observedGeneration"]) == ("Ready", 1)
    assert status["message"] == f"template {template_id!r} is stored and enabled"
    (condition,) = status["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "Ready",
        "True",
        "Synced",
    )
    assert posted_events.drain() == [("Normal", "Synced", status["message"])]


def test_an_update_replaces_the_body_and_parameters(memo: kopf.Memo, database: Database) -> None:
    first = a_resource()
    status = apply(first, memo)["status"]
    second = changed(
        first,
        status,
        body="Parcel {{order_id}}: {{tracking_id}}",
        parameters=[{"name": "order_id"}, {"name": "tracking_id", "maxLength": 40}],
        category="marketing",
    )
    patch = apply(second, memo)
    row = template_row(database, first["spec"]["templateId"])
    assert row is not None
    assert (row["body"], row["category"]) == ("Parcel {{order_id}}: {{tracking_id}}", "marketing")
    assert row["parameters"] == [
        {"name": "order_id", "required": True, "max_length": 1024},
        {"name": "tracking_id", "required": True, "max_length": 40},
    ]
    assert patch["status"]["observedGeneration"] == 2
    # Ready did not flip, so its transition time stays that of the first reconcile.
    assert (
        patch["status"]["conditions"][0]["lastTransitionTime"]
        == status["conditions"][0]["lastTransitionTime"]
    )


def test_applying_the_same_spec_again_changes_nothing(memo: kopf.Memo, database: Database) -> None:
    resource = a_resource()
    first = apply(resource, memo)
    row = template_row(database, resource["spec"]["templateId"])
    assert apply(resource, memo)["status"] == first["status"]
    assert template_row(database, resource["spec"]["templateId"]) == row


def test_enabled_false_stores_a_disabled_template(memo: kopf.Memo, database: Database) -> None:
    resource = a_resource(enabled=False)
    patch = apply(resource, memo)
    row = template_row(database, resource["spec"]["templateId"])
    assert row is not None and row["enabled"] is False
    assert patch["status"]["phase"] == "Disabled"
    assert patch["status"]["conditions"][0]["status"] == "True"


def test_delete_disables_the_template_and_keeps_the_row(
    memo: kopf.Memo, database: Database
) -> None:
    resource = a_resource()
    apply(resource, memo)
    delete(resource, memo)
    row = template_row(database, resource["spec"]["templateId"])
    assert row is not None
    assert (row["enabled"], row["source"]) == (False, f"released:{owner(resource)}")
    delete(resource, memo)  # kopf may call it again; nothing changes
    assert template_row(database, resource["spec"]["templateId"]) == row


def test_a_deleted_template_can_be_defined_again_by_another_resource(
    memo: kopf.Memo, database: Database
) -> None:
    first = a_resource()
    apply(first, memo)
    delete(first, memo)
    second = a_resource(first["spec"]["templateId"], body="New {{order_id}} {{locker}}")
    assert apply(second, memo)["status"]["phase"] == "Ready"
    row = template_row(database, first["spec"]["templateId"])
    assert row is not None
    assert (row["enabled"], row["source"], row["body"]) == (
        True,
        owner(second),
        "New {{order_id}} {{locker}}",
    )


def test_an_invalid_spec_is_refused_for_good_and_writes_nothing(
    memo: kopf.Memo, database: Database, posted_events: PostedEvents
) -> None:
    resource = a_resource(body="Order {{order_id}} at {{locker}} by {{courier}}", category="news")
    patch = kopf.Patch()
    with pytest.raises(kopf.PermanentError) as caught:
        apply(resource, memo, patch)
    expected = (
        "spec.category: 'news' must be one of utility, marketing, authentication; "
        "spec.body: uses {{courier}} but spec.parameters does not declare 'courier'; "
        "declare it or remove it from the body"
    )
    assert str(caught.value) == expected
    status = patch["status"]
    assert (status["phase"], status["message"], status["observedGeneration"]) == (
        "Invalid",
        expected,
        1,
    )
    (condition,) = status["conditions"]
    assert (condition["status"], condition["reason"]) == ("False", "InvalidSpec")
    assert template_row(database, resource["spec"]["templateId"]) is None
    assert posted_events.drain() == [("Warning", "InvalidSpec", expected)]


def test_a_second_resource_cannot_take_a_template_id_another_one_owns(
    memo: kopf.Memo, database: Database, posted_events: PostedEvents
) -> None:
    first = a_resource()
    apply(first, memo)
    row = template_row(database, first["spec"]["templateId"])
    second = a_resource(first["spec"]["templateId"], body="Hijack {{order_id}} {{locker}}")
    with pytest.raises(
        kopf.PermanentError, match=f"already defined by MessageTemplate {owner(first)}"
    ):
        apply(second, memo)
    assert template_row(database, first["spec"]["templateId"]) == row
    assert posted_events.drain()[-1][:2] == ("Warning", "DuplicateTemplateId")
    # Deleting the loser must not disable the winner's template.
    delete(second, memo)
    assert template_row(database, first["spec"]["templateId"]) == row


def test_a_changed_template_id_releases_the_old_one(memo: kopf.Memo, database: Database) -> None:
    # The CRD forbids this (CEL); the operator stays right where that rule is not enforced.
    first = a_resource()
    status = apply(first, memo)["status"]
    renamed = changed(first, status, templateId=f"{first['spec']['templateId']}_v2")
    apply(renamed, memo)
    old = template_row(database, first["spec"]["templateId"])
    new = template_row(database, renamed["spec"]["templateId"])
    assert old is not None and new is not None
    assert (old["enabled"], old["source"]) == (False, f"released:{owner(first)}")
    assert (new["enabled"], new["source"]) == (True, owner(first))


def test_the_sample_resources_adopt_the_seeded_rows_unchanged(
    fresh_database_url: Callable[[], str], posted_events: PostedEvents
) -> None:
    url = fresh_database_url()
    apply_migrations(url, MIGRATIONS_DIR)
    db = Database(url, "operator-tests")
    try:
        seeded = {path: _row_of(db, path) for path in EXAMPLES}
        assert {row["source"] for row in seeded.values()} == {"migration"}
        for path in EXAMPLES:
            resource = yaml.safe_load(path.read_text())
            resource["metadata"].update(namespace="notifier", uid="u", generation=1)
            assert (
                apply(resource, kopf.Memo(db=db, retry_delay=RETRY_DELAY))["status"]["phase"]
                == "Ready"
            )
            adopted = _row_of(db, path)
            assert adopted == {**seeded[path], "source": f"notifier/{resource['metadata']['name']}"}
    finally:
        db.close()


def _row_of(db: Database, path: Path) -> dict[str, object]:
    row = template_row(db, yaml.safe_load(path.read_text())["spec"]["templateId"])
    assert row is not None
    return row


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_database_outage_is_retried_with_the_configured_delay(
    posted_events: PostedEvents,
) -> None:
    down = Database(f"postgresql://op:s3cret@127.0.0.1:{_closed_port()}/notifier", "operator-tests")
    memo = kopf.Memo(db=down, retry_delay=RETRY_DELAY)
    resource = a_resource()
    patch = kopf.Patch()
    with pytest.raises(kopf.TemporaryError) as caught:
        apply(resource, memo, patch)
    assert caught.value.delay == RETRY_DELAY
    status = patch["status"]
    assert status["phase"] == "Pending"
    assert status["conditions"][0]["reason"] == "DatabaseUnavailable"
    assert status["message"].startswith("waiting for PostgreSQL, retrying in 7s: ")
    assert "s3cret" not in json.dumps(status) and "s3cret" not in str(caught.value)
    assert posted_events.drain() == []
    with pytest.raises(kopf.TemporaryError):
        delete(resource, memo)  # the finalizer stays until the template is really disabled

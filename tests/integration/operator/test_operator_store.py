"""TemplateStore's ownership rules hold when resources race for one template id."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from notifier.common.db import Database
from notifier.common.domain.templates import Template, TemplateParameter
from notifier.operator.store import TemplateOwnedElsewhere, TemplateStore, Upserted
from tests.fixtures.waiting import random_suffix
from tests.integration.operator.operator_calls import SID, template_row

pytestmark = pytest.mark.integration


def a_template(name: str, body: str = "Hello {{who}}") -> Template:
    return Template(name, SID, body, (TemplateParameter("who", True, 32),))


def test_two_resources_racing_for_a_new_template_id_cannot_both_win(database: Database) -> None:
    store = TemplateStore(database)
    for _ in range(10):
        name = f"race_{random_suffix()}"
        start = threading.Barrier(2)

        def upsert(owner: str, name: str = name, start: threading.Barrier = start) -> str:
            start.wait(timeout=10)
            try:
                store.upsert(a_template(name, f"{owner} {{{{who}}}}"), owner)
            except TemplateOwnedElsewhere as exc:
                return f"lost to {exc.owner}"
            return "won"

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(upsert, ["ns/a", "ns/b"]))
        assert sorted(results) in (["lost to ns/a", "won"], ["lost to ns/b", "won"]), results
        winner = "ns/a" if results[0] == "won" else "ns/b"
        row = template_row(database, name)
        assert row is not None
        assert (row["source"], row["body"]) == (winner, f"{winner} {{{{who}}}}")


def test_upsert_reports_creation_adoption_and_release(database: Database) -> None:
    store = TemplateStore(database)
    name = f"store_{random_suffix()}"
    assert store.upsert(a_template(name), "ns/x") == Upserted(name, True, None, ())
    assert store.upsert(a_template(name), "ns/x") == Upserted(name, False, None, ())
    assert store.retire("ns/x") == (name,)
    assert store.retire("ns/x") == ()
    assert store.upsert(a_template(name), "ns/y") == Upserted(name, False, "released:ns/x", ())
    renamed = f"{name}_2"
    assert store.upsert(a_template(renamed), "ns/y") == Upserted(renamed, True, None, (name,))

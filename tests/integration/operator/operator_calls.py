"""Calling the operator's kopf handlers as kopf would: keyword arguments, a Patch, a Memo.

Also collects the Kubernetes events kopf.info/kopf.warn queue, which need a running operator's
context otherwise.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import kopf
from kopf._core.engines import posting

from notifier.common.db import Database
from notifier.operator import handlers
from tests.fixtures.waiting import random_suffix

SID = "HX" + "0123456789abcdef" * 2
RETRY_DELAY = 7.0


@dataclass
class PostedEvents:
    """What kopf.info/kopf.warn queued for the API server, outside a running operator."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[posting.K8sEvent]
    seen: list[tuple[str, str, str]] = field(default_factory=list)

    def drain(self) -> list[tuple[str, str, str]]:
        """(type, reason, message) of each event posted since the last drain."""
        self.loop.run_until_complete(asyncio.sleep(0))  # runs the thread-safe put_nowait calls
        posted = []
        while not self.queue.empty():
            event = self.queue.get_nowait()
            posted.append((event.type, event.reason, event.message))
        self.seen += posted
        return posted


def a_resource(template_id: str | None = None, **spec: Any) -> dict[str, Any]:
    """A MessageTemplate as the API server would hand it over, with a unique name."""
    suffix = random_suffix()
    template_id = template_id or f"op_test_{suffix}"
    return {
        "apiVersion": f"{handlers.GROUP}/{handlers.VERSION}",
        "kind": "MessageTemplate",
        "metadata": {
            "name": f"mt-{suffix}",
            "namespace": "notifier-test",
            "uid": f"uid-{suffix}",
            "generation": 1,
        },
        "spec": {
            "templateId": template_id,
            "contentSid": SID,
            "language": "en",
            "category": "utility",
            "body": "Order {{order_id}} is at locker {{locker}}.",
            "parameters": [
                {"name": "order_id", "required": True, "maxLength": 64},
                {"name": "locker", "required": False, "maxLength": 16},
            ],
            "enabled": True,
            **spec,
        },
    }


def changed(resource: dict[str, Any], status: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """The resource after a spec edit: generation + 1, carrying the status written so far."""
    new = copy.deepcopy(resource)
    new["metadata"]["generation"] += 1
    new["spec"].update(spec)
    new["status"] = status
    return new


def kopf_kwargs(
    resource: dict[str, Any], memo: kopf.Memo, reason: str, patch: kopf.Patch
) -> dict[str, Any]:
    """The keyword arguments kopf passes to a resource-changing handler."""
    body = kopf.Body(cast(kopf.RawBody, resource))
    now = datetime.now(UTC)
    return {
        "retry": 0,
        "started": now,
        "runtime": timedelta(0),
        "annotations": body.metadata.annotations,
        "labels": body.metadata.labels,
        "body": body,
        "meta": body.metadata,
        "spec": body.spec,
        "status": body.status,
        "resource": kopf.Resource(handlers.GROUP, handlers.VERSION, handlers.PLURAL),
        "uid": body.metadata.uid,
        "name": body.metadata.name,
        "namespace": body.metadata.namespace,
        "patch": patch,
        "reason": reason,
        "diff": kopf.Diff([]),
        "old": None,
        "new": None,
        "logger": kopf.LocalObjectLogger(body=body, settings=kopf.OperatorSettings()),
        "memo": memo,
    }


def apply(resource: dict[str, Any], memo: kopf.Memo, patch: kopf.Patch | None = None) -> kopf.Patch:
    """Calls the create/update/resume handler as kopf would; returns the patch it filled.

    Pass your own `patch` to look at it after the handler raised: kopf applies it then too.
    """
    patch = kopf.Patch() if patch is None else patch
    handlers.apply_template(**kopf_kwargs(resource, memo, "create", patch))
    return patch


def delete(resource: dict[str, Any], memo: kopf.Memo) -> None:
    handlers.retire_template(**kopf_kwargs(resource, memo, "delete", kopf.Patch()))


def owner(resource: dict[str, Any]) -> str:
    return f"{resource['metadata']['namespace']}/{resource['metadata']['name']}"


def template_row(db: Database, template_id: str) -> dict[str, Any] | None:
    with db.transaction() as cur:
        cur.execute(
            "SELECT name, language, content_sid, category, body, parameters, enabled, source"
            "  FROM templates WHERE name = %s",
            (template_id,),
        )
        row = cur.fetchone()
        if row is None:
            return None
        columns = [column.name for column in cur.description]
    return dict(zip(columns, row, strict=True))

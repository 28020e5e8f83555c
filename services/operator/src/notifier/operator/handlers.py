"""kopf's entry points for MessageTemplate resources: translate to reconcile and the store, no more.

Handlers are synchronous, so kopf runs them on its thread pool where psycopg2 may block. Run with
`notifier-operator` (main.py) or `kopf run -m notifier.operator.handlers --standalone ...`.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any, NoReturn

import kopf

from notifier.common.db import Database
from notifier.common.errors import PermanentError, TransientError
from notifier.operator.reconcile import Rejected, template_from_spec
from notifier.operator.settings import DEFAULT_RETRY_DELAY_SECONDS, OperatorSettings
from notifier.operator.status import Outcome, invalid, status_patch, stored, waiting
from notifier.operator.store import TemplateOwnedElsewhere, TemplateStore, owner_of

GROUP = "whatsapp.notifier.dev"
VERSION = "v1alpha1"
PLURAL = "messagetemplates"
FINALIZER = f"{GROUP}/finalizer"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Keeps kopf's bookkeeping in our own annotations and opens the pool into `memo`."""
    config = memo.get("config")
    if not isinstance(config, OperatorSettings):  # started by `kopf run`, not by main()
        config = OperatorSettings.from_env(os.environ)
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    # Events come from our explicit kopf.info/kopf.warn calls, not from every log line.
    settings.posting.enabled = True
    settings.posting.loggers = False
    settings.posting.level = logging.INFO
    memo["db"] = Database(config.database.url, "notifier-operator", max_connections=4)
    memo["retry_delay"] = config.retry_delay_seconds


@kopf.on.cleanup()
def close_database(memo: kopf.Memo, **_: Any) -> None:
    db = memo.get("db")
    if isinstance(db, Database):
        db.close()


@kopf.on.probe(id="database_pool")
def report_pool(memo: kopf.Memo, **_: Any) -> str:
    """Liveness means the operator's loop answers; PostgreSQL outages are retried, not fatal."""
    return "open" if isinstance(memo.get("db"), Database) else "not opened"


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def apply_template(
    *,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    body: kopf.Body,
    name: str,
    namespace: str | None,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """Validates the spec and upserts its template; safe to repeat for the same spec."""
    generation = meta.get("generation")
    record = template_from_spec(spec)
    if isinstance(record, Rejected):
        _reject(body, patch, status, generation, "InvalidSpec", record.message)
    owner = owner_of(namespace, name)
    try:
        result = TemplateStore(_database(memo)).upsert(record, owner)
    except TemplateOwnedElsewhere as exc:
        _reject(body, patch, status, generation, "DuplicateTemplateId", exc.message)
    except PermanentError as exc:
        _reject(body, patch, status, generation, "Rejected", exc.message)
    except TransientError as exc:
        _retry(patch, status, generation, str(exc), memo)
    outcome = stored(record.name, record.enabled)
    _set_status(patch, status, generation, outcome)
    kopf.info(body, reason=outcome.reason, message=outcome.message)
    logger.info(
        "template stored",
        extra={
            "template": record.name,
            "parameters": len(record.parameters),
            "enabled": record.enabled,
            "created": result.created,
            "adopted_from": result.adopted_from,
            "released": list(result.released),
        },
    )


@kopf.on.delete(GROUP, VERSION, PLURAL)
def retire_template(
    *, name: str, namespace: str | None, memo: kopf.Memo, logger: kopf.Logger, **_: Any
) -> None:
    """Disables what this resource owns and keeps the row: message history points at it.

    kopf holds the resource with its finalizer until this succeeds, so a template is never
    left enabled because PostgreSQL was down at the moment of deletion.
    """
    try:
        retired = TemplateStore(_database(memo)).retire(owner_of(namespace, name))
    except TransientError as exc:
        raise kopf.TemporaryError(f"{exc}; retrying", delay=_retry_delay(memo)) from exc
    logger.info("template disabled", extra={"templates": list(retired)})


def _reject(
    body: kopf.Body,
    patch: kopf.Patch,
    status: kopf.Status,
    generation: int | None,
    reason: str,
    message: str,
) -> NoReturn:
    """Shows what to fix on the resource and in an event; kopf will not retry this spec."""
    _set_status(patch, status, generation, invalid(reason, message))
    kopf.warn(body, reason=reason, message=message)
    raise kopf.PermanentError(message)


def _retry(
    patch: kopf.Patch, status: kopf.Status, generation: int | None, error: str, memo: kopf.Memo
) -> NoReturn:
    delay = _retry_delay(memo)
    message = f"waiting for PostgreSQL, retrying in {delay:g}s: {error}"
    _set_status(patch, status, generation, waiting(message))
    raise kopf.TemporaryError(message, delay=delay)


def _set_status(
    patch: kopf.Patch, status: kopf.Status, generation: int | None, outcome: Outcome
) -> None:
    patch.status.update(status_patch(outcome, generation, status, datetime.now(UTC)))


def _database(memo: kopf.Memo) -> Database:
    db = memo.get("db")
    if not isinstance(db, Database):
        raise TypeError("memo has no Database: the startup handler did not run")
    return db


def _retry_delay(memo: kopf.Memo) -> float:
    return float(memo.get("retry_delay", DEFAULT_RETRY_DELAY_SECONDS))

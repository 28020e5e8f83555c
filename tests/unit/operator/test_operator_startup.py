"""The startup handler configures kopf's bookkeeping under our group and opens the pool lazily."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import pytest

from notifier.common.config import DatabaseSettings
from notifier.common.db import Database
from notifier.operator import handlers
from notifier.operator.settings import OperatorSettings

URL = "postgresql://op:secret@127.0.0.1:1/notifier"


def activity(memo: kopf.Memo, settings: kopf.OperatorSettings | None = None) -> dict[str, Any]:
    """The keyword arguments kopf passes to startup, cleanup and probe handlers."""
    return {
        "memo": memo,
        "settings": settings or kopf.OperatorSettings(),
        "retry": 0,
        "started": datetime.now(UTC),
        "runtime": timedelta(0),
        "logger": logging.getLogger("kopf.activities"),
    }


def test_startup_keeps_kopf_state_in_our_annotations_and_the_pool_in_memo() -> None:
    settings = kopf.OperatorSettings()
    config = OperatorSettings(DatabaseSettings(URL), retry_delay_seconds=3.0)
    memo = kopf.Memo(config=config)
    handlers.configure(**activity(memo, settings))
    assert settings.persistence.finalizer == "whatsapp.notifier.dev/finalizer"
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert settings.persistence.progress_storage.prefix == "whatsapp.notifier.dev"
    assert isinstance(settings.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)
    assert settings.persistence.diffbase_storage.prefix == "whatsapp.notifier.dev"
    assert settings.posting.enabled and not settings.posting.loggers
    assert isinstance(memo["db"], Database) and memo["retry_delay"] == 3.0
    assert handlers.report_pool(**activity(memo)) == "open"
    handlers.close_database(**activity(memo))


def test_under_kopf_run_the_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", URL)
    monkeypatch.setenv("OPERATOR_RETRY_DELAY_SECONDS", "4")
    memo = kopf.Memo()
    handlers.configure(**activity(memo))
    assert memo["retry_delay"] == 4.0
    handlers.close_database(**activity(memo))


def test_the_probe_reports_a_pool_that_was_never_opened() -> None:
    assert handlers.report_pool(**activity(kopf.Memo())) == "not opened"

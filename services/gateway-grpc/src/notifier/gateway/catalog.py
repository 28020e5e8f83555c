"""The template catalog: every template in PostgreSQL, held in memory.

Loaded at start and refreshed every TEMPLATE_REFRESH_SECONDS on a background
thread, so validation never waits on the database. A name it does not know
triggers one early reload (rate-limited), so a template the operator just
created is usable at once. It reads the templates table; the operator owns it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from notifier.common.db import Database
from notifier.common.domain.templates import DEFAULT_MAX_LENGTH, Template, TemplateParameter
from notifier.common.errors import FailedPrecondition, NotFound, NotifierError
from notifier.common.lifecycle import StopFlag
from notifier.gateway import metrics

log = logging.getLogger(__name__)

_SELECT = """
    SELECT name, content_sid, body, parameters, language, category, enabled
      FROM templates
"""
# A burst of requests naming unknown templates costs at most one query per second.
_MISS_RELOAD_SECONDS = 1.0


class TemplateCatalog:
    """Thread-safe lookups; `get` raises NotFound or FailedPrecondition."""

    def __init__(self, db: Database, refresh_seconds: float) -> None:
        self._db = db
        self._refresh_seconds = refresh_seconds
        self._templates: Mapping[str, Template] = {}
        self._loaded_at = 0.0
        self._reload_lock = threading.Lock()
        self._stop = StopFlag()
        self._thread = threading.Thread(target=self._run, name="template-refresh", daemon=True)

    def get(self, name: str) -> Template:
        template = self._templates.get(name)
        if template is None and self._reload_if_older_than(_MISS_RELOAD_SECONDS):
            template = self._templates.get(name)
        if template is None:
            raise NotFound(f"template_id: no template named {name!r}")
        if not template.enabled:
            raise FailedPrecondition(f"template_id: template {name!r} is disabled")
        return template

    def reload(self) -> int:
        """Reads all templates and swaps them in at once; returns how many were read."""
        with self._reload_lock:
            return self._reload_locked()

    def _reload_if_older_than(self, seconds: float) -> bool:
        """Reloads unless a reload finished in the last `seconds`; True if it reloaded."""
        with self._reload_lock:
            if time.monotonic() - self._loaded_at < seconds:
                return False
            try:
                self._reload_locked()
            except NotifierError as exc:
                # The request gets NOT_FOUND from the catalog it has; the refresh
                # thread reports the database problem.
                log.debug("template reload on miss failed", extra={"error": str(exc)})
                return False
            return True

    def _reload_locked(self) -> int:
        with self._db.transaction() as cur:
            cur.execute(_SELECT)
            rows = cur.fetchall()
        templates = {row[0]: _template_from_row(row) for row in rows}
        self._templates = templates
        self._loaded_at = time.monotonic()
        metrics.TEMPLATES.set(sum(1 for t in templates.values() if t.enabled))
        return len(templates)

    def start(self) -> TemplateCatalog:
        """Loads the templates (errors propagate), then refreshes in the background."""
        count = self.reload()
        log.info("templates loaded", extra={"templates": count})
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._refresh_seconds):
            try:
                self.reload()
            except NotifierError as exc:
                # Keep serving the last good catalog; the next refresh may succeed.
                metrics.TEMPLATE_REFRESH_ERRORS.inc()
                log.warning("template refresh failed", extra={"error": str(exc)})
            except Exception:
                # A row this code cannot read is a bug; keep the last good catalog.
                metrics.TEMPLATE_REFRESH_ERRORS.inc()
                log.exception("template refresh failed unexpectedly")


def _template_from_row(row: tuple[Any, ...]) -> Template:
    name, content_sid, body, parameters, language, category, enabled = row
    return Template(
        name=name,
        content_sid=content_sid,
        body=body,
        parameters=tuple(
            TemplateParameter(
                name=str(p["name"]),
                required=bool(p.get("required", True)),
                max_length=int(p.get("max_length", DEFAULT_MAX_LENGTH)),
            )
            for p in parameters
        ),
        language=language,
        category=category,
        enabled=bool(enabled),
    )

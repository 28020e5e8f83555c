"""The templates table as the operator writes it: upsert by template id, retire by owner.

`source` records who owns a row: 'migration' (seeded), 'namespace/name' of the MessageTemplate
that owns it, or 'released:namespace/name' once that resource is deleted. A row is taken over
only from the migration, a released owner or itself, decided in the upsert's own SQL so two
resources racing for one template id cannot both win. Rows are never deleted: messages keep
pointing at their template.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg2.errors

from notifier.common.db import Database
from notifier.common.errors import PermanentError
from notifier.operator.reconcile import TemplateRecord

_UPSERT = """
    WITH previous AS (SELECT source FROM templates WHERE name = %(name)s)
    INSERT INTO templates AS t
           (name, language, content_sid, category, body, parameters, enabled, source)
    VALUES (%(name)s, %(language)s, %(content_sid)s, %(category)s, %(body)s,
            %(parameters)s::jsonb, %(enabled)s, %(owner)s)
    ON CONFLICT (name) DO UPDATE
       SET language = EXCLUDED.language,
           content_sid = EXCLUDED.content_sid,
           category = EXCLUDED.category,
           body = EXCLUDED.body,
           parameters = EXCLUDED.parameters,
           enabled = EXCLUDED.enabled,
           source = EXCLUDED.source,
           updated_at = now()
     -- Evaluated on the latest committed row, under its lock: the ownership check is atomic.
     WHERE t.source IN (EXCLUDED.source, 'migration') OR t.source LIKE 'released:%%'
    RETURNING (xmax = 0) AS created, (SELECT source FROM previous) AS previous_source
"""
_OWNER_OF = "SELECT source FROM templates WHERE name = %(name)s"
# Disables what `owner` holds (all of it, or all but `keep`) and marks the rows released.
_RELEASE = """
    UPDATE templates
       SET enabled = false, source = 'released:' || source, updated_at = now()
     WHERE source = %(owner)s AND name <> %(keep)s
    RETURNING name
"""


def owner_of(namespace: str | None, name: str) -> str:
    """The `source` value naming a MessageTemplate resource ("namespace/name")."""
    return f"{namespace}/{name}" if namespace else name


class TemplateOwnedElsewhere(PermanentError):
    """Another MessageTemplate resource already owns this template id."""

    def __init__(self, template_id: str, owner: str) -> None:
        super().__init__(
            f"spec.templateId: template {template_id!r} is already defined by MessageTemplate "
            f"{owner}; choose another templateId or delete that resource first"
        )
        self.template_id = template_id
        self.owner = owner


@dataclass(frozen=True, slots=True)
class Upserted:
    template_id: str
    created: bool
    # Whom the row belonged to before, when it was taken over ('migration', 'released:...').
    adopted_from: str | None
    # Template ids this owner held under an earlier templateId, now disabled.
    released: tuple[str, ...]


class TemplateStore:
    """Writes the templates table; every method is one transaction and safe to repeat."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def upsert(self, record: TemplateRecord, owner: str) -> Upserted:
        """Inserts or updates the row; raises TemplateOwnedElsewhere if someone else owns it."""
        values = {
            "name": record.name,
            "language": record.language,
            "content_sid": record.content_sid,
            "category": record.category,
            "body": record.body,
            "parameters": json.dumps(
                [
                    {"name": p.name, "required": p.required, "max_length": p.max_length}
                    for p in record.parameters
                ]
            ),
            "enabled": record.enabled,
            "owner": owner,
        }
        try:
            with self._db.transaction() as cur:
                cur.execute(_UPSERT, values)
                row = cur.fetchone()
                if row is None:
                    cur.execute(_OWNER_OF, values)
                    holder = cur.fetchone()
                    raise TemplateOwnedElsewhere(record.name, holder[0] if holder else "?")
                cur.execute(_RELEASE, {"owner": owner, "keep": record.name})
                released = tuple(sorted(name for (name,) in cur.fetchall()))
        except psycopg2.errors.CheckViolation as exc:
            # reconcile mirrors the table's CHECKs, so this means they drifted apart.
            raise PermanentError(f"PostgreSQL refused template {record.name!r}: {exc}") from exc
        created, previous = bool(row[0]), row[1]
        adopted = previous if previous not in (None, owner) else None
        return Upserted(record.name, created, adopted, released)

    def retire(self, owner: str) -> tuple[str, ...]:
        """Disables every template `owner` holds and releases it; returns their ids.

        Keyed by owner, not by the spec's templateId, so it is right even when the spec is
        invalid or its templateId changed, and it never touches a row someone else owns.
        """
        with self._db.transaction() as cur:
            cur.execute(_RELEASE, {"owner": owner, "keep": ""})
            return tuple(sorted(name for (name,) in cur.fetchall()))

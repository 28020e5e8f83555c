"""The operator's log lines: common's JSON lines, with kopf's per-object context made readable.

kopf's object loggers attach the resource reference and its whole OperatorSettings to every
record; we keep the reference as `resource` ("namespace/name") and drop the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from notifier.common.logging import setup_logging

_DROPPED = ("settings", "k8s_skip", "k8s_ref")


class KopfContextFilter(logging.Filter):
    """Turns kopf's `k8s_ref` into `resource` and removes what would bloat each line."""

    def filter(self, record: logging.LogRecord) -> bool:
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, Mapping) and ref.get("name"):
            namespace = ref.get("namespace")
            record.resource = f"{namespace}/{ref['name']}" if namespace else str(ref["name"])
        for key in _DROPPED:
            record.__dict__.pop(key, None)
        return True


def setup_operator_logging(level: str) -> None:
    """JSON lines on stdout for ours and kopf's loggers alike."""
    setup_logging("operator", level)
    for handler in logging.getLogger().handlers:
        handler.addFilter(KopfContextFilter())

"""Structured audit events named ``<subject>.<verb>`` (DESIGN: every security event is logged).

Events go to the ``ostiary.audit`` logger as one JSON object per line. Values that could be
secrets never reach this module: callers pass ids, hashes prefixes and outcomes only.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

audit_log = logging.getLogger("ostiary.audit")

AuditSink = Callable[[str, dict[str, Any]], None]


class Audit:
    """Emits audit events; extra sinks (tests, metrics) can listen."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self._sinks: list[AuditSink] = []

    def subscribe(self, sink: AuditSink) -> None:
        self._sinks.append(sink)

    def __call__(self, event: str, **fields: Any) -> None:
        record = {"event": event, "tenant": self.tenant_id, "ts": round(time.time(), 3), **fields}
        if audit_log.isEnabledFor(logging.INFO):
            audit_log.info(json.dumps(record, sort_keys=True, default=str))
        for sink in self._sinks:
            sink(event, record)


def configure_logging() -> None:
    """Send ostiary's own logs, audit events included, to stderr at INFO (once per process)."""
    logger = logging.getLogger("ostiary")
    if any(getattr(h, "ostiary", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler()
    handler.ostiary = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

"""Structured audit events named ``<subject>.<verb>`` (DESIGN: every security event is logged).

Events go to the ``ostiary.audit`` logger as one JSON object per line. Values that could be
secrets never reach this module: callers pass ids, hashes prefixes and outcomes only.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
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


#: The id of the HTTP request being handled (set by ``server.request_ids``), for log records.
request_id: ContextVar[str | None] = ContextVar("ostiary_request_id", default=None)


class _RequestId(logging.Filter):
    """Put the current request id on every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request id, message or audit event.

    An audit record's message is already a JSON object; it is embedded as ``audit`` rather
    than as a string, so a log pipeline can index its fields.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", None) or request_id.get(),
        }
        message = record.getMessage()
        if record.name == audit_log.name and message.startswith("{"):
            entry["audit"] = json.loads(message)
        else:
            entry["message"] = message
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


_TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(json_format: bool = False) -> None:
    """Send ostiary's own logs, audit events included, to stderr at INFO (once per process).

    With ``json_format`` (``server.log_format = "json"``) uvicorn's access and error logs go
    through the same JSON formatter, each line carrying the request id.
    """
    names = ["ostiary", *(["uvicorn", "uvicorn.access", "uvicorn.error"] if json_format else [])]
    for name in names:
        logger = logging.getLogger(name)
        if any(getattr(h, "ostiary", False) for h in logger.handlers):
            continue
        if json_format:
            for existing in list(logger.handlers):
                logger.removeHandler(existing)
        handler = logging.StreamHandler()
        handler.ostiary = True  # type: ignore[attr-defined]
        handler.addFilter(_RequestId())
        handler.setFormatter(JsonFormatter() if json_format else logging.Formatter(_TEXT))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False

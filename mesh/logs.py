"""Structured logging: one JSON object a line on stderr, with the service and request id."""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

from mesh.tracing import trace_id

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="")
# Request ids only need to be unique, not secret: a random prefix per process and a counter
# cost no system call per request, unlike uuid4.
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """Return an id no other request of any process gets: 32 lowercase hex digits."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


# A JWT (whole, or the head of one cut short) and the credentials of an authorization header.
_SECRETS = re.compile(r"eyJ[A-Za-z0-9_-]{6,}(?:\.+[A-Za-z0-9_-]+)*|(?<=Bearer )[^\s\"'\\]+")
REDACTED = "[redacted]"
# Loggers that write what crosses the wire at DEBUG: WebSocket frames (a client's auth frame
# carries its access token) and the SQLite driver's statement parameters (hashes and tokens).
_WIRE_LOGGERS = ("uvicorn.error", "websockets", "aiosqlite")


def redact(text: str) -> str:
    """Return the text with every access token and bearer credential replaced."""
    return _SECRETS.sub(REDACTED, text)


class JsonFormatter(logging.Formatter):
    """Format records as JSON lines."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        current_trace = trace_id()
        if current_trace:
            entry["trace_id"] = current_trace
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # The last line of defence: whatever a library put in a record, no token leaves.
        return redact(json.dumps(entry, default=str))


def setup_logging(service: str, level: str = "INFO") -> None:
    """Send every log record of the process to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _WIRE_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))

"""JSON log lines: no access token or bearer credential leaves a process, at any level."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from mesh.logs import REDACTED, JsonFormatter, redact, setup_logging

TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1c2VyLTEiLCJqdGkiOiJ4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.parametrize(
    "text",
    [
        f'{{"op":"auth","token":"{TOKEN}"}}',
        # websockets cuts long frames as head...tail
        f'< TEXT \'{{"op": "auth", "token": "{TOKEN[:24]}...{TOKEN[-20:]}"}}\' [420 bytes]',
        f"authorization: Bearer {TOKEN}",
        "authorization: Bearer opaque-credential",
    ],
)
def test_tokens_and_bearer_credentials_are_redacted(text: str) -> None:
    cleaned = redact(text)
    assert REDACTED in cleaned
    for part in (TOKEN[3:15], TOKEN[-12:], "opaque-credential"):
        assert part not in cleaned


def test_ordinary_text_is_left_alone() -> None:
    text = "call failed: wrong email or password; a sentence. eyJ alone is not a token"
    assert redact(text) == text


def test_the_formatter_redacts_messages_fields_and_exceptions() -> None:
    try:
        raise ValueError(f"bad token {TOKEN}")
    except ValueError as exc:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "frame %s", (TOKEN,), None)
        record.exc_info = (type(exc), exc, exc.__traceback__)
    record.fields = {"authorization": f"Bearer {TOKEN}", "quoted": '{"h": "Bearer opaque"}'}
    line = JsonFormatter("edge").format(record)
    assert TOKEN[-12:] not in line
    assert TOKEN[20:32] not in line
    # Still one JSON object: redaction keeps the escapes around what it replaces.
    entry = json.loads(line)
    assert entry["quoted"] == '{"h": "Bearer [redacted]"}'
    assert entry["authorization"] == "Bearer [redacted]"


@pytest.mark.usefixtures("root_logging")
def test_wire_loggers_stay_above_debug() -> None:
    setup_logging("edge", "DEBUG")
    assert logging.getLogger("edge").isEnabledFor(logging.DEBUG)
    for name in ("uvicorn.error", "websockets", "aiosqlite"):
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name

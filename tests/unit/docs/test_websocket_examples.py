"""The data frames shown in docs/api/websocket.md are valid messages of their channels."""

from __future__ import annotations

import json
import re

from google.protobuf import json_format

from edge.channels import CHANNEL_DATA
from edge.descriptors import load
from support import REPO

PAGE = REPO / "docs" / "api" / "websocket.md"


def test_every_channel_has_an_example_that_parses_as_its_message() -> None:
    contracts = load()
    blocks = re.findall(r"```json\n(.*?)```", PAGE.read_text(), re.S)
    shown: set[str] = set()
    for block in blocks:
        frame = json.loads(block)
        channel = frame["channel"]
        message = contracts.message_class(CHANNEL_DATA[channel])()
        # Unknown fields and wrongly typed values fail the parse.
        json_format.ParseDict(frame["data"], message)
        assert json_format.MessageToDict(message) == frame["data"], block
        shown.add(channel)
    assert shown == set(CHANNEL_DATA)

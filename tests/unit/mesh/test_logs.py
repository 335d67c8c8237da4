"""Request ids made by a process: unique within it and across processes, 32 hex digits."""

from __future__ import annotations

import re
import subprocess
import sys

from mesh.logs import new_request_id

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def test_request_ids_are_32_hex_digits_and_never_repeat() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert all(HEX32.match(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_another_process_makes_other_request_ids() -> None:
    command = "from mesh.logs import new_request_id; print(new_request_id())"
    others = {
        subprocess.run(
            [sys.executable, "-c", command], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(others) == 2
    assert new_request_id() not in others

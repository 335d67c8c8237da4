"""Schemathesis against `/openapi.json` of `cfd edge` with the real mesh: no 5xx, no crash.

Every unary operation is fuzzed (examples, coverage, fuzzing and stateful phases) with
positive and negative data, authenticated as a real user; responses must also match the
documented status codes, content types and schemas. Streaming operations never end by design,
so they are left to the dedicated tests.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from integration.test_edge_support import LiveMesh, live_mesh, signup

SCHEMATHESIS = Path(sys.executable).parent / "st"
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    )
)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveMesh]:
    # The run publishes prices only at its start: a feed this quiet for long is not stale here.
    with live_mesh(tmp_path_factory.mktemp("fuzz"), CFD_FEED_STALE_MS="3600000") as running:
        yield running


def test_no_operation_answers_5xx_to_generated_requests(mesh: LiveMesh, tmp_path: Path) -> None:
    if not SCHEMATHESIS.is_file():
        pytest.fail("schemathesis is not installed in the venv: pip install schemathesis")
    with httpx.Client(base_url=mesh.url, timeout=10) as http:
        token = signup(http, "fuzzer@example.com")
    mesh.publish(("ETHUSD", "3000.00", "3001.00"))
    mesh.publish_and_wait("BTCUSD", "60000.00", "60010.00", token)
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{mesh.url}/openapi.json",
            "--checks",
            CHECKS,
            "--header",
            f"Authorization: Bearer {token}",
            "--exclude-path-regex",
            ":stream$",
            "--max-examples",
            "40",
            "--workers",
            "2",
            "--seed",
            "20261122",
            "--request-timeout",
            "15",
            "--no-color",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    edge_log = mesh.processes["edge"].output()
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert "Test cases:" in result.stdout
    assert '"status": 5' not in edge_log, "the edge logged a 5xx response"
    assert "Traceback" not in edge_log
    # The edge is still healthy and serving after the run.
    assert httpx.get(f"{mesh.url}/readyz", timeout=5).status_code == 200

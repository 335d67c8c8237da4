"""`cfd envoy`: runs the packaged Envoy until SIGTERM, and explains a missing binary."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx

from envoy_front.runner import envoy_ready
from envoy_support import FakeMesh
from mesh.config import Settings
from mesh.tokens import TokenConfig, load_signing_key
from support import ServiceProcess, mesh_env, wait_for


def test_cfd_envoy_serves_until_sigterm(tmp_path: Path) -> None:
    env = mesh_env(tmp_path / "data")
    settings = Settings.from_env(env)
    with FakeMesh(settings):
        process = ServiceProcess(["envoy"], env, tmp_path / "envoy.log")
        try:
            wait_for(lambda: process.process.poll() is not None or envoy_ready(settings), 20)
            assert process.process.poll() is None, process.output()
            reply = httpx.get(f"http://127.0.0.1:{settings.envoy_port}/v1/instruments")
            assert reply.status_code == 200
            assert len(reply.json()["instruments"]) == 3
        finally:
            output = process.output()
            code = process.stop(signal.SIGTERM)
    assert code == 0, output
    assert (settings.data_dir / "envoy" / "envoy.yaml").is_file()


def test_cfd_envoy_without_the_binary_fails_with_a_clear_message(tmp_path: Path) -> None:
    env = mesh_env(tmp_path / "data", CFD_ENVOY_BIN=str(tmp_path / "no-such-envoy"))
    process = ServiceProcess(["envoy"], env, tmp_path / "envoy.log")

    try:
        code = process.process.wait(timeout=30)
        output = process.output()
    finally:
        process.stop()
    assert code == 1
    assert "cfd envoy: CFD_ENVOY_BIN=" in output
    assert "not an executable file" in output


def test_cfd_envoy_refuses_bad_envoy_settings(tmp_path: Path) -> None:
    env = mesh_env(tmp_path / "data", CFD_RATE_LIMIT_IP="lots")
    process = ServiceProcess(["envoy"], env, tmp_path / "envoy.log")

    try:
        code = process.process.wait(timeout=30)
        output = process.output()
    finally:
        process.stop()
    assert code == 1
    assert "CFD_RATE_LIMIT_IP='lots'" in output


def test_cfd_up_envoy_without_the_binary_stops_with_a_clear_message(tmp_path: Path) -> None:
    env = mesh_env(
        tmp_path / "data",
        CFD_FEED="manual",
        CFD_BACKFILL_DAYS="0",
        CFD_ENVOY_BIN=str(tmp_path / "no-such-envoy"),
    )
    up = ServiceProcess(["up", "--envoy"], env, tmp_path / "up.log")
    try:
        code = up.process.wait(timeout=90)
        output = up.output()
    finally:
        up.stop()

    assert code != 0
    assert "cfd envoy: CFD_ENVOY_BIN=" in output
    assert "CFD Mesh is up" not in output


def test_cfd_envoy_reports_envoys_own_failure(tmp_path: Path) -> None:
    env = mesh_env(tmp_path / "data")
    settings = Settings.from_env(env)
    load_signing_key(settings, TokenConfig())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", settings.envoy_port))
        taken.listen()
        process = ServiceProcess(["envoy"], env, tmp_path / "envoy.log")
        try:
            code = process.process.wait(timeout=30)
            output = process.output()
        finally:
            process.stop()

    assert code == 1
    assert f"cannot bind '127.0.0.1:{settings.envoy_port}'" in output
    assert "cfd envoy: envoy exited with code 1" in output

"""No token, refresh token or password reaches the logs, even at DEBUG.

The whole mesh runs at DEBUG; a user signs up, signs in, refreshes, authenticates a WebSocket
and signs out, on the edge and straight over gRPC; then every line the processes wrote is
searched for any part of those secrets.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import grpc
import httpx
import pyotp
import pytest
from websockets.sync.client import connect

from cfd.v1 import account_pb2, account_pb2_grpc, trading_pb2, trading_pb2_grpc
from support import ServiceProcess, mesh_env, wait_for

PASSWORD = "Secret-Passphrase-4711"
# Any run of this many characters of a secret in the logs counts as a leak.
WINDOW = 12


Mesh = tuple[ServiceProcess, dict[str, str]]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    data_dir = tmp_path_factory.mktemp("debug-mesh")
    env = mesh_env(data_dir, CFD_FEED="manual", CFD_LOG_LEVEL="DEBUG", CFD_BACKFILL_DAYS="1")
    up = ServiceProcess(["up"], env, data_dir / "up.log")
    try:
        wait_for(lambda: "CFD Mesh is up" in up.output() or up.process.poll() is not None, 120)
        assert up.process.poll() is None, up.output()
        yield up, env
    finally:
        up.stop()


def _pieces(secret: str) -> set[str]:
    """Return every run of WINDOW characters of the secret's parts that are secret.

    A JWT's first part (algorithm and key id) is the same for every token: only the claims
    and the signature are searched for.
    """
    parts = secret.split(".")[1:] if secret.count(".") == 2 else [secret]
    return {part[i : i + WINDOW] for part in parts for i in range(max(1, len(part) - WINDOW + 1))}


def test_secrets_stay_out_of_debug_logs(mesh: Mesh) -> None:
    up, env = mesh
    edge = f"http://127.0.0.1:{env['CFD_EDGE_PORT']}"
    email = f"quiet-{uuid.uuid4().hex[:8]}@example.com"
    secrets = [PASSWORD]
    with httpx.Client(base_url=edge, timeout=15) as http:
        signed_up = http.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
        assert signed_up.status_code == 200, signed_up.text
        signed_in = http.post("/v1/auth/signin", json={"email": email, "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        wrong = http.post("/v1/auth/signin", json={"email": email, "password": PASSWORD + "x"})
        assert wrong.status_code == 401
        refreshed = http.post(
            "/v1/auth/refresh", json={"refreshToken": signed_in.json()["refreshToken"]}
        )
        assert refreshed.status_code == 200, refreshed.text
        for reply in (signed_up, signed_in, refreshed):
            secrets += [reply.json()["accessToken"], reply.json()["refreshToken"]]
        token = refreshed.json()["accessToken"]
        bearer = {"authorization": f"Bearer {token}"}
        assert http.get("/v1/account", headers=bearer).status_code == 200
        # Two-factor authentication: its secret and recovery codes. (The six-digit codes are
        # too short to search for without matching unrelated numbers.)
        enrolment = http.post("/v1/users/me/totp:enrol", json={}, headers=bearer).json()
        totp = pyotp.TOTP(enrolment["secret"])
        confirmed = http.post(
            "/v1/users/me/totp:confirm", json={"totpCode": totp.now()}, headers=bearer
        )
        assert confirmed.status_code == 200, confirmed.text
        codes = confirmed.json()["recoveryCodes"]
        secrets += [enrolment["secret"], enrolment["otpauthUri"].split("secret=")[1], *codes]
        disabled = http.post(
            "/v1/users/me/totp:disable",
            json={"password": PASSWORD, "recoveryCode": codes[0]},
            headers=bearer,
        )
        assert disabled.status_code == 200, disabled.text
        with connect(f"ws://127.0.0.1:{env['CFD_EDGE_PORT']}/v1/ws", proxy=None) as ws:
            ws.send(json.dumps({"op": "auth", "token": token}))
            assert json.loads(ws.recv(timeout=10))["type"] == "ack"
            ws.send(json.dumps({"op": "subscribe", "channel": "positions"}))
            assert json.loads(ws.recv(timeout=10))["type"] == "ack"
        signed_out = http.post(
            "/v1/auth/signout", json={"refreshToken": refreshed.json()["refreshToken"]},
            headers=bearer,
        )  # fmt: skip
        assert signed_out.status_code == 200, signed_out.text
    with grpc.insecure_channel(f"127.0.0.1:{env['CFD_ACCOUNT_PORT']}") as channel:
        grpc_session = account_pb2_grpc.AccountServiceStub(channel).Signin(
            account_pb2.SigninRequest(email=email, password=PASSWORD), timeout=10
        )
        secrets += [grpc_session.access_token, grpc_session.refresh_token]
    with grpc.insecure_channel(f"127.0.0.1:{env['CFD_ENGINE_PORT']}") as channel:
        trading_pb2_grpc.TradingServiceStub(channel).GetAccount(
            trading_pb2.GetAccountRequest(),
            metadata=(("authorization", f"Bearer {grpc_session.access_token}"),),
            timeout=10,
        )
    up.stop()
    output = up.output()
    assert '"level": "DEBUG"' in output  # the mesh did log at DEBUG
    leaks = sorted({piece for s in secrets for piece in _pieces(s) if piece in output})
    assert leaks == [], [line for line in output.splitlines() if any(p in line for p in leaks)][:5]
    assert "Bearer " not in output

"""Signing out revokes the session's access tokens everywhere: the edge, Envoy and gRPC
(straight to the services and through Envoy).

The whole mesh (`cfd up --envoy`) runs with the revocation list in the data dir and in
Redis. Envoy's jwt_authn cannot read the list and lets a revoked but well-signed token
through; the service behind it refuses the token, so the client gets the same 401 from
Envoy as from the edge.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from websockets.asyncio.client import connect

from cfd.v1 import account_pb2, account_pb2_grpc, trading_pb2, trading_pb2_grpc
from envoy_support import RealMesh, running_mesh
from mesh.errors import reason_of

PASSWORD = "correct horse battery"
REVOKED = "access token revoked (signed out); sign in again"


@pytest.fixture(params=["in-process", "redis"])
def shared_state(request: pytest.FixtureRequest) -> dict[str, str]:
    """Return the environment selecting the revocation list: the data dir's file, or Redis."""
    if request.param == "in-process":
        return {}
    return {"CFD_REDIS_URL": request.getfixturevalue("redis_url")}


@pytest.fixture
def mesh(tmp_path: Path, shared_state: dict[str, str]) -> Iterator[RealMesh]:
    with running_mesh(tmp_path, **shared_state) as running:
        yield running


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def error_of(reply: httpx.Response) -> tuple[int, str, str]:
    body: dict[str, Any] = reply.json()
    reasons = [d["reason"] for d in body.get("details", []) if "reason" in d]
    return reply.status_code, reasons[0] if reasons else "", str(body.get("message", ""))


async def engine_account(
    mesh: RealMesh, token: str, port: str = "CFD_ENGINE_PORT"
) -> grpc.StatusCode:
    """Call GetAccount over gRPC, straight to the engine or through Envoy (its port)."""
    async with grpc.aio.insecure_channel(mesh.address(port)) as channel:
        try:
            await trading_pb2_grpc.TradingServiceStub(channel).GetAccount(
                trading_pb2.GetAccountRequest(), metadata=(("authorization", f"Bearer {token}"),)
            )
        except grpc.aio.AioRpcError as exc:
            assert (reason_of(exc), exc.details()) == ("TOKEN_INVALID", REVOKED)
            return exc.code()
    return grpc.StatusCode.OK


async def refused(front: httpx.AsyncClient, path: str, token: str) -> httpx.Response:
    """Poll until ``token`` no longer works on ``path``; return the refusal."""
    deadline = time.monotonic() + 10
    while True:
        reply = await front.get(path, headers=bearer(token))
        if reply.status_code != 200:
            return reply
        assert time.monotonic() < deadline, f"{front.base_url}{path} still takes the token"
        await asyncio.sleep(0.1)


async def ws_auth(mesh: RealMesh, token: str) -> dict[str, Any]:
    url = mesh.edge_url.replace("http", "ws", 1) + "/v1/ws"
    async with connect(url, proxy=None) as ws:
        await ws.send(json.dumps({"op": "auth", "token": token}))
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        return frame


async def test_a_signed_out_token_is_refused_by_every_front(mesh: RealMesh) -> None:
    async with (
        httpx.AsyncClient(base_url=mesh.envoy_url, timeout=10) as envoy,
        httpx.AsyncClient(base_url=mesh.edge_url, timeout=10) as edge,
    ):
        credentials = {"email": "leaver@example.com", "password": PASSWORD}
        signed_up = (await envoy.post("/v1/auth/signup", json=credentials)).json()
        other = (await edge.post("/v1/auth/signin", json=credentials)).json()
        token = signed_up["accessToken"]
        for front in (envoy, edge):
            assert (await front.get("/v1/account", headers=bearer(token))).status_code == 200
        for port in ("CFD_ENGINE_PORT", "CFD_ENVOY_PORT"):
            assert await engine_account(mesh, token, port) == grpc.StatusCode.OK
        assert (await ws_auth(mesh, token))["type"] == "ack"

        signout = await edge.post(
            "/v1/auth/signout", json={"refreshToken": signed_up["refreshToken"]}
        )
        assert signout.status_code == 200

        # Every verifier reloads the list within a second or so; each answers 401 itself.
        for front in (envoy, edge):
            for path in ("/v1/account", "/v1/positions", "/v1/users/me"):
                reply = await refused(front, path, token)
                assert error_of(reply) == (401, "TOKEN_INVALID", REVOKED), (front.base_url, path)
        for port in ("CFD_ENGINE_PORT", "CFD_ENVOY_PORT"):
            assert await engine_account(mesh, token, port) == grpc.StatusCode.UNAUTHENTICATED
        deadline = time.monotonic() + 10
        while (answer := await ws_auth(mesh, token))["type"] == "ack":
            assert time.monotonic() < deadline, "the edge's WebSocket still takes the token"
            await asyncio.sleep(0.1)
        assert answer["error"]["reason"] == "TOKEN_INVALID"
        async with grpc.aio.insecure_channel(mesh.address("CFD_ACCOUNT_PORT")) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await account_pb2_grpc.AccountServiceStub(channel).GetUser(
                    account_pb2.GetUserRequest(), metadata=(("authorization", f"Bearer {token}"),)
                )
            assert (reason_of(info.value), info.value.details()) == ("TOKEN_INVALID", REVOKED)

        # The same user's other session is untouched.
        for front in (envoy, edge):
            reply = await front.get("/v1/account", headers=bearer(other["accessToken"]))
            assert reply.status_code == 200

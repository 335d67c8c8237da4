"""Envoy's jwt_authn in front of gRPC fakes: what it rejects, and how the reply looks.

Envoy answers a rejected token itself with 401, a `www-authenticate` header and the
google.rpc.Status body of the API (reason TOKEN_EXPIRED or TOKEN_INVALID); the message is
Envoy's own wording ("Jwt is missing", "Jwt is expired", "Jwt verification fails", ...).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import jwt
import pytest

from cfd.v1 import trading_pb2, trading_pb2_grpc
from envoy_support import EnvoyProcess, FakeMesh, running_front
from mesh.config import Settings
from mesh.tokens import ALGORITHM, DEFAULT_AUDIENCE, DEFAULT_ISSUER, SigningKey

Front = tuple[Settings, FakeMesh, EnvoyProcess]


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    with running_front(tmp_path_factory.mktemp("envoy-jwt")) as running:
        yield running


@pytest.fixture(scope="module")
def client(front: Front) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=front[2].base_url, timeout=10) as http:
        yield http


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": DEFAULT_ISSUER,
        "aud": DEFAULT_AUDIENCE,
        "sub": "user-1",
        "iat": now,
        "exp": now + 300,
        "jti": "token-id",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(key: SigningKey, claims: dict[str, Any], kid: str | None = None) -> str:
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": kid or key.kid})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _rejection(reply: httpx.Response) -> tuple[str, str]:
    """Check the shape of Envoy's 401 and return its reason and message."""
    assert reply.status_code == 401, reply.text
    assert reply.headers["www-authenticate"].startswith("Bearer")
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert body["code"] == 16
    (info,) = body["details"]
    assert info == {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "domain": "cfd.v1",
                    "reason": info["reason"], "metadata": {}}  # fmt: skip
    return info["reason"], body["message"]


def test_a_valid_token_passes(front: Front, client: httpx.Client) -> None:
    token = _sign(front[1].signing_key, _claims())

    assert (
        client.get("/v1/account", headers={"authorization": f"Bearer {token}"}).status_code == 200
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Basic dXNlcjpwYXNz"}, {"authorization": "Bearer"}],
)
def test_a_missing_token_is_rejected_by_envoy(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    assert _rejection(client.get("/v1/account", headers=headers)) == (
        "TOKEN_INVALID", "Jwt is missing",
    )  # fmt: skip


def test_an_expired_token_is_rejected_as_expired(front: Front, client: httpx.Client) -> None:
    now = int(time.time())
    token = _sign(front[1].signing_key, _claims(iat=now - 120, exp=now - 60))
    reason, message = _rejection(
        client.get("/v1/account", headers={"authorization": f"Bearer {token}"})
    )

    assert (reason, message) == ("TOKEN_EXPIRED", "Jwt is expired")


def _forged_tokens(genuine: SigningKey) -> dict[str, str]:
    other = SigningKey.generate()
    valid = _sign(genuine, _claims())
    header, _payload, signature = valid.split(".")
    tampered_payload = _sign(genuine, _claims(sub="someone-else")).split(".")[1]
    unsigned_header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return {
        "other key, same kid": _sign(other, _claims(), kid=genuine.kid),
        "other key, own kid": _sign(other, _claims()),
        "payload swapped": f"{header}.{tampered_payload[:-2]}xy.{signature}",
        "unsigned": f"{unsigned_header}.{_b64url(json.dumps(_claims()).encode())}.",
        "shared secret": jwt.encode(_claims(), "a-guessable-secret-of-32-bytes!!", "HS256"),
        "wrong audience": _sign(genuine, _claims(aud="another-api")),
        "wrong issuer": _sign(genuine, _claims(iss="someone")),
        "garbage": "not.a.token",
    }


def test_forged_tokens_are_rejected_by_envoy(front: Front, client: httpx.Client) -> None:
    for name, token in _forged_tokens(front[1].signing_key).items():
        reply = client.get("/v1/account", headers={"authorization": f"Bearer {token}"})
        reason, _message = _rejection(reply)
        assert reason == "TOKEN_INVALID", name


def test_the_service_checks_the_token_again(front: Front, client: httpx.Client) -> None:
    # Envoy requires no `jti`; the services do, so this token passes Envoy and is refused
    # behind it, which shows the token is forwarded and verified twice.
    token = _sign(front[1].signing_key, _claims(jti=None))
    reply = client.get("/v1/account", headers={"authorization": f"Bearer {token}"})

    assert reply.status_code == 401
    assert "www-authenticate" not in reply.headers
    body = reply.json()
    assert body["code"] == 16
    assert body["details"][0]["reason"] == "TOKEN_INVALID"


def test_public_routes_need_no_token_even_when_a_bad_one_is_sent(client: httpx.Client) -> None:
    assert client.get("/v1/instruments").status_code == 200
    signup = client.post(
        "/v1/auth/signup",
        json={"email": "jwt@example.com", "password": "s3cret-pass"},
        headers={"authorization": "Bearer not.a.token"},
    )
    assert signup.status_code == 200


def test_grpc_callers_get_unauthenticated_from_envoy(front: Front) -> None:
    expired = _sign(front[1].signing_key, _claims(exp=int(time.time()) - 60))
    elsewhere = _sign(front[1].signing_key, _claims(aud="another-api"))
    with grpc.insecure_channel(f"127.0.0.1:{front[0].envoy_port}") as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        for metadata in (
            (),
            (("authorization", f"Bearer {expired}"),),
            (("authorization", f"Bearer {elsewhere}"),),
        ):
            with pytest.raises(grpc.RpcError) as failure:
                stub.GetAccount(trading_pb2.GetAccountRequest(), metadata=metadata, timeout=5)
            assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "Jwt" in (failure.value.details() or "")
        valid = _sign(front[1].signing_key, _claims())
        account = stub.GetAccount(
            trading_pb2.GetAccountRequest(),
            metadata=(("authorization", f"Bearer {valid}"),),
            timeout=5,
        )
        assert account.currency == "USD"

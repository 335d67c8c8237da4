"""The real `cfd accounts` process on loopback, with a hand-written fake trading engine.

The fake engine is a real gRPC server implementing `cfd.v1.EngineAdminService` (checking
the internal token, idempotent like the real one) that a test can take down or make hang.
Each test runs against every storage combination it is parametrized with: SQLite or
PostgreSQL for users, SQL or Redis for sessions and rate limits.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import jwt
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from account_svc.issuer import TokenIssuer
from cfd.v1 import account_pb2, account_pb2_grpc, engine_admin_pb2, engine_admin_pb2_grpc
from mesh.errors import reason_of, status_of
from mesh.tokens import JWKS_FILE_NAME, KEYS_DIR_NAME, PRIVATE_KEY_FILE_NAME, SigningKey
from support import ServiceProcess, mesh_env, until

PASSWORD = "correct horse battery"
T = TypeVar("T")


class FakeEngineAdmin(engine_admin_pb2_grpc.EngineAdminServiceServicer):
    """The engine's admin API: accounts in a dict, switchable outage, optional hang."""

    def __init__(self, internal_token: str) -> None:
        self.internal_token = internal_token
        self.accounts: dict[str, str] = {}
        self.up = True
        self.hang = False
        self.received = asyncio.Event()
        self.calls = 0

    async def CreateAccount(
        self,
        request: engine_admin_pb2.CreateAccountRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> engine_admin_pb2.CreateAccountResponse:
        presented = dict(context.invocation_metadata() or ()).get("x-cfd-internal-token", "")
        if not hmac.compare_digest(str(presented), self.internal_token):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "internal callers only")
        self.calls += 1
        self.received.set()
        if not self.up:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "engine is down")
        if self.hang:
            await asyncio.Event().wait()
        created = request.user_id not in self.accounts
        self.accounts.setdefault(request.user_id, request.initial_balance)
        return engine_admin_pb2.CreateAccountResponse(
            user_id=request.user_id, balance=self.accounts[request.user_id], created=created
        )

    async def Deposit(
        self,
        request: engine_admin_pb2.DepositRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> engine_admin_pb2.DepositResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the accounts service never deposits")

    async def DepositAsset(
        self,
        request: engine_admin_pb2.DepositAssetRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> engine_admin_pb2.DepositAssetResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the accounts service never deposits")

    async def GetStats(
        self,
        request: engine_admin_pb2.GetStatsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> engine_admin_pb2.GetStatsResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the accounts service never asks")

    async def RunRollover(
        self,
        request: engine_admin_pb2.RunRolloverRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> engine_admin_pb2.RunRolloverResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the accounts service never rolls")

    async def SendTransfer(
        self,
        request: engine_admin_pb2.SendTransferRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> engine_admin_pb2.SendTransferResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the accounts service never transfers")

    async def ReceiveTransfer(
        self,
        request: engine_admin_pb2.ReceiveTransferRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> engine_admin_pb2.ReceiveTransferResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the accounts service never transfers")


@dataclass
class Mesh:
    """A running accounts process, its fake engine and a client."""

    data_dir: Path
    env: dict[str, str]
    engine: FakeEngineAdmin
    process: ServiceProcess | None = None
    channel: grpc.aio.Channel | None = None
    processes: list[ServiceProcess] = field(default_factory=list)

    @property
    def stub(self) -> account_pb2_grpc.AccountServiceAsyncStub:
        assert self.channel is not None
        return account_pb2_grpc.AccountServiceStub(self.channel)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.env['CFD_ACCOUNT_PORT']}"

    async def start(self) -> None:
        """Start (or restart) `cfd accounts` and wait until it serves."""
        log = self.data_dir / f"accounts-{len(self.processes)}.log"
        self.process = ServiceProcess(["accounts"], self.env, log)
        self.processes.append(self.process)
        process = self.process

        async def serving() -> bool:
            if process.process.poll() is not None:
                raise AssertionError(f"cfd accounts exited:\n{process.output()}")
            async with grpc.aio.insecure_channel(self.address) as channel:
                try:
                    reply = await health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(service="cfd.v1.AccountService"), timeout=0.5
                    )
                except grpc.aio.AioRpcError:
                    return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

        await until(serving, within=30)
        if self.channel is None:
            self.channel = grpc.aio.insecure_channel(self.address)

    def logs(self) -> str:
        return "\n".join(p.output() for p in self.processes)

    def signing_key(self) -> SigningKey:
        return SigningKey.from_pem(
            (self.data_dir / KEYS_DIR_NAME / PRIVATE_KEY_FILE_NAME).read_bytes()
        )


@asynccontextmanager
async def start_mesh(data_dir: Path, **env: str) -> AsyncIterator[Mesh]:
    environment = mesh_env(data_dir, **env)
    engine = FakeEngineAdmin(environment["CFD_INTERNAL_TOKEN"])
    server = grpc.aio.server()
    engine_admin_pb2_grpc.add_EngineAdminServiceServicer_to_server(engine, server)
    server.add_insecure_port(f"127.0.0.1:{environment['CFD_ENGINE_PORT']}")
    await server.start()
    mesh = Mesh(data_dir, environment, engine)
    try:
        await mesh.start()
        yield mesh
    finally:
        for process in mesh.processes:
            process.stop()
        if mesh.channel is not None:
            await mesh.channel.close()
        await server.stop(None)


@pytest.fixture(params=["sqlite", "postgres"])
def users_db(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Return the environment selecting the users database: the data dir's SQLite or PostgreSQL."""
    if request.param == "sqlite":
        return {}
    return {"CFD_DATABASE_URL": request.getfixturevalue("postgres_url")}


@pytest.fixture(params=["in-process", "redis"])
def shared_state(request: pytest.FixtureRequest) -> dict[str, str]:
    """Return the environment selecting sessions and limits: SQL + in-memory, or Redis."""
    if request.param == "in-process":
        return {}
    return {"CFD_REDIS_URL": request.getfixturevalue("redis_url")}


@pytest.fixture
async def mesh(tmp_path: Path, users_db: dict[str, str]) -> AsyncIterator[Mesh]:
    """Yield accounts on each users database, sessions in SQL, limits in memory."""
    async with start_mesh(tmp_path, **users_db) as running:
        yield running


async def fails_with(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def b64url(document: dict[str, object]) -> str:
    raw = json.dumps(document).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


async def test_journey_signup_signin_refresh_signout(
    tmp_path: Path, users_db: dict[str, str], shared_state: dict[str, str]
) -> None:
    async with start_mesh(tmp_path, **users_db, **shared_state) as mesh:
        stub = mesh.stub
        signup = await stub.Signup(
            account_pb2.SignupRequest(email=" Trader@Example.com ", password=PASSWORD)
        )
        user_id = signup.user.id
        assert signup.user.email == "trader@example.com"
        assert signup.user.create_time.seconds > 0
        assert signup.expires_in == 900
        # The trading account exists with the demo balance before signup answers.
        assert mesh.engine.accounts == {user_id: "5000"}

        me = await stub.GetUser(account_pb2.GetUserRequest(), metadata=bearer(signup.access_token))
        assert me.user == signup.user

        signin = await stub.Signin(
            account_pb2.SigninRequest(email="TRADER@example.com", password=PASSWORD)
        )
        assert signin.user == signup.user
        assert signin.refresh_token != signup.refresh_token

        rotated = await stub.RefreshToken(
            account_pb2.RefreshTokenRequest(refresh_token=signin.refresh_token)
        )
        assert rotated.user == signup.user
        assert rotated.refresh_token != signin.refresh_token
        me = await stub.GetUser(account_pb2.GetUserRequest(), metadata=bearer(rotated.access_token))
        assert me.user.id == user_id

        # Reusing the spent token revokes its family, the fresh token included.
        reuse = await fails_with(
            stub.RefreshToken(account_pb2.RefreshTokenRequest(refresh_token=signin.refresh_token))
        )
        assert (reuse.code(), reason_of(reuse)) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "TOKEN_INVALID",
        )
        revoked = await fails_with(
            stub.RefreshToken(account_pb2.RefreshTokenRequest(refresh_token=rotated.refresh_token))
        )
        assert reason_of(revoked) == "TOKEN_INVALID"

        # The signup session is another family and is still alive until signed out.
        await stub.Signout(account_pb2.SignoutRequest(refresh_token=signup.refresh_token))
        await stub.Signout(account_pb2.SignoutRequest(refresh_token=signup.refresh_token))
        signed_out = await fails_with(
            stub.RefreshToken(account_pb2.RefreshTokenRequest(refresh_token=signup.refresh_token))
        )
        assert reason_of(signed_out) == "TOKEN_INVALID"

        wrong = await fails_with(
            stub.Signin(account_pb2.SigninRequest(email="trader@example.com", password="nope nope"))
        )
        assert (wrong.code(), reason_of(wrong)) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "INVALID_CREDENTIALS",
        )
        unknown = await fails_with(
            stub.Signin(account_pb2.SigninRequest(email="nobody@example.com", password=PASSWORD))
        )
        assert (unknown.code(), reason_of(unknown), unknown.details()) == (
            wrong.code(),
            "INVALID_CREDENTIALS",
            wrong.details(),
        )

        taken = await fails_with(
            stub.Signup(account_pb2.SignupRequest(email="trader@EXAMPLE.com", password=PASSWORD))
        )
        assert (taken.code(), reason_of(taken)) == (grpc.StatusCode.ALREADY_EXISTS, "EMAIL_TAKEN")
        assert len(mesh.engine.accounts) == 1

        secrets = [PASSWORD, signup.access_token, signin.access_token, rotated.access_token]
        secrets += [signup.refresh_token, signin.refresh_token, rotated.refresh_token]
        if "CFD_DATABASE_URL" not in mesh.env:
            with sqlite3.connect(mesh.data_dir / "accounts.sqlite3") as db:
                (stored_hash,) = db.execute("SELECT password_hash FROM account_users").fetchone()
            assert stored_hash.startswith("$argon2id$")
            secrets.append(stored_hash.rsplit("$", 1)[-1])
        logs = mesh.logs()
        for secret in secrets:
            assert secret not in logs


async def test_validation_errors_name_the_fields(mesh: Mesh) -> None:
    error = await fails_with(
        mesh.stub.Signup(account_pb2.SignupRequest(email="not-an-email", password="short"))
    )
    assert (error.code(), reason_of(error)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "VALIDATION_FAILED",
    )
    status = status_of(error)
    assert status is not None
    fields = set()
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            fields |= {v.field for v in bad_request.field_violations}
    assert fields == {"email", "password"}
    for request in (
        account_pb2.SignupRequest(email="a@example.com", password="x" * 129),
        account_pb2.SignupRequest(email="a" * 300 + "@example.com", password=PASSWORD),
    ):
        assert reason_of(await fails_with(mesh.stub.Signup(request))) == "VALIDATION_FAILED"
    for weak in ("\x01" * 8, "\x00" * 20, "Password123", "A@Example.com"):
        error = await fails_with(
            mesh.stub.Signup(account_pb2.SignupRequest(email="a@example.com", password=weak))
        )
        status = status_of(error)
        assert status is not None
        violations = []
        for detail in status.details:
            bad_request = error_details_pb2.BadRequest()
            if detail.Unpack(bad_request):
                violations += [v.field for v in bad_request.field_violations]
        assert (reason_of(error), violations) == ("VALIDATION_FAILED", ["password"]), weak
    empty = await fails_with(mesh.stub.RefreshToken(account_pb2.RefreshTokenRequest()))
    assert reason_of(empty) == "VALIDATION_FAILED"
    assert mesh.engine.accounts == {}


async def test_bad_access_tokens_are_rejected(mesh: Mesh) -> None:
    signup = await mesh.stub.Signup(
        account_pb2.SignupRequest(email="tokens@example.com", password=PASSWORD)
    )
    key = mesh.signing_key()
    now = time.time()
    claims = {
        "iss": "cfd-mesh",
        "aud": "cfd-mesh-api",
        "sub": signup.user.id,
        "iat": int(now),
        "exp": int(now) + 60,
        "jti": "j",
    }

    def signed(with_key: SigningKey, **changes: object) -> str:
        return jwt.encode(
            {**claims, **changes}, with_key.private_key, algorithm="EdDSA", headers={"kid": key.kid}
        )

    expired = TokenIssuer(key, ttl_s=60, clock=lambda: now - 120).issue(signup.user.id)[0]
    unsigned = ".".join([b64url({"alg": "none", "typ": "JWT", "kid": key.kid}), b64url(claims), ""])
    cases = {
        "expired": (expired, "TOKEN_EXPIRED"),
        "forged": (signed(SigningKey.generate()), "TOKEN_INVALID"),
        "wrong audience": (signed(key, aud="someone-else"), "TOKEN_INVALID"),
        "wrong issuer": (signed(key, iss="someone-else"), "TOKEN_INVALID"),
        "alg none": (unsigned, "TOKEN_INVALID"),
        "garbage": ("not.a.token", "TOKEN_INVALID"),
    }
    for name, (token, expected) in cases.items():
        error = await fails_with(
            mesh.stub.GetUser(account_pb2.GetUserRequest(), metadata=bearer(token))
        )
        assert (error.code(), reason_of(error)) == (grpc.StatusCode.UNAUTHENTICATED, expected), name
    missing = await fails_with(mesh.stub.GetUser(account_pb2.GetUserRequest()))
    assert (missing.code(), reason_of(missing)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_INVALID",
    )
    # The well-formed token of the same key is accepted: the rejections are not an accident.
    good = await mesh.stub.GetUser(account_pb2.GetUserRequest(), metadata=bearer(signed(key)))
    assert good.user.id == signup.user.id


async def test_jwks_is_published_for_envoy(mesh: Mesh) -> None:
    signup = await mesh.stub.Signup(
        account_pb2.SignupRequest(email="jwks@example.com", password=PASSWORD)
    )
    document = json.loads((mesh.data_dir / JWKS_FILE_NAME).read_text())
    keys = jwt.PyJWKSet.from_dict(document)
    kid = jwt.get_unverified_header(signup.access_token)["kid"]
    claims = jwt.decode(
        signup.access_token, keys[kid], algorithms=["EdDSA"], audience="cfd-mesh-api"
    )
    assert claims["sub"] == signup.user.id
    assert all("d" not in jwk for jwk in document["keys"]), "no private key material"


async def test_engine_outage_during_signup_is_repaired(mesh: Mesh) -> None:
    mesh.engine.up = False
    error = await fails_with(
        mesh.stub.Signup(account_pb2.SignupRequest(email="outage@example.com", password=PASSWORD))
    )
    assert (error.code(), reason_of(error)) == (grpc.StatusCode.UNAVAILABLE, "SERVICE_UNAVAILABLE")
    assert mesh.engine.accounts == {}
    mesh.engine.up = True

    async def opened() -> dict[str, str]:
        return dict(mesh.engine.accounts)

    # The outbox sweep opens the account without any help from the user.
    accounts = await until(opened, within=20)
    signin = await mesh.stub.Signin(
        account_pb2.SigninRequest(email="outage@example.com", password=PASSWORD)
    )
    assert accounts == {signin.user.id: "5000"}


async def test_crash_between_user_and_account_is_repaired(mesh: Mesh) -> None:
    mesh.engine.hang = True
    call = asyncio.ensure_future(
        mesh.stub.Signup(account_pb2.SignupRequest(email="crash@example.com", password=PASSWORD))
    )
    await asyncio.wait_for(mesh.engine.received.wait(), timeout=20)
    # The user is committed, the engine has not confirmed: kill the process right here.
    assert mesh.process is not None
    mesh.process.stop(signal.SIGKILL)
    error = await fails_with(call)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert mesh.engine.accounts == {}
    mesh.engine.hang = False
    await mesh.start()

    async def opened() -> dict[str, str]:
        return dict(mesh.engine.accounts)

    accounts = await until(opened, within=20)
    signin = await mesh.stub.Signin(
        account_pb2.SigninRequest(email="crash@example.com", password=PASSWORD)
    )
    assert accounts == {signin.user.id: "5000"}


async def test_signin_repairs_a_missing_account_at_once(tmp_path: Path) -> None:
    async with start_mesh(tmp_path, CFD_DEMO_BALANCE="1234.5") as mesh:
        mesh.engine.up = False
        await fails_with(
            mesh.stub.Signup(
                account_pb2.SignupRequest(email="quick@example.com", password=PASSWORD)
            )
        )
        mesh.engine.up = True
        signin = await mesh.stub.Signin(
            account_pb2.SigninRequest(email="quick@example.com", password=PASSWORD)
        )
        # Confirmed before the sign-in answered, whatever the sweep's schedule.
        assert mesh.engine.accounts == {signin.user.id: "1234.5"}


async def test_rate_limits(tmp_path: Path, shared_state: dict[str, str]) -> None:
    limits = {
        "CFD_LIMIT_SIGNIN_PER_EMAIL_AND_ADDRESS": "3/600",
        "CFD_LIMIT_SIGNIN_PER_ADDRESS": "5/600",
        "CFD_LIMIT_SIGNUP_PER_ADDRESS": "2/600",
    }
    async with start_mesh(tmp_path, **limits, **shared_state) as mesh:
        stub, token = mesh.stub, mesh.env["CFD_INTERNAL_TOKEN"]

        def via_edge(address: str) -> tuple[tuple[str, str], ...]:
            return (("x-cfd-internal-token", token), ("x-forwarded-for", address))

        await stub.Signup(account_pb2.SignupRequest(email="limit@example.com", password=PASSWORD))
        # Per email and address: a guesser's fourth attempt is refused, right password or not,
        # while the owner signs in from their own address.
        for n in range(3):
            request = account_pb2.SigninRequest(email="limit@example.com", password=f"guess {n}xx")
            error = await fails_with(stub.Signin(request, metadata=via_edge("198.51.100.1")))
            assert reason_of(error) == "INVALID_CREDENTIALS"
        right = account_pb2.SigninRequest(email="LIMIT@example.com", password=PASSWORD)
        limited = await fails_with(stub.Signin(right, metadata=via_edge("198.51.100.1")))
        assert (limited.code(), reason_of(limited)) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "RATE_LIMITED",
        )
        owner = await stub.Signin(right, metadata=via_edge("198.51.100.99"))
        assert owner.user.email == "limit@example.com"
        status = status_of(limited)
        assert status is not None
        retry = error_details_pb2.RetryInfo()
        assert any(detail.Unpack(retry) for detail in status.details)
        assert retry.retry_delay.seconds >= 1

        # Per address: the edge's forwarded address counts, a public caller's claim does not.
        for n in range(5):
            request = account_pb2.SigninRequest(email=f"a{n}@example.com", password=PASSWORD)
            await fails_with(stub.Signin(request, metadata=via_edge("203.0.113.7")))
        other = account_pb2.SigninRequest(email="z@example.com", password=PASSWORD)
        assert reason_of(
            await fails_with(stub.Signin(other, metadata=via_edge("203.0.113.7")))
        ) == ("RATE_LIMITED")
        assert reason_of(
            await fails_with(stub.Signin(other, metadata=via_edge("203.0.113.8")))
        ) == ("INVALID_CREDENTIALS")
        spoofed = (("x-forwarded-for", "203.0.113.50"),)
        await stub.Signup(account_pb2.SignupRequest(email="s1@example.com", password=PASSWORD))
        second = account_pb2.SignupRequest(email="s2@example.com", password=PASSWORD)
        error = await fails_with(stub.Signup(second, metadata=spoofed))
        assert reason_of(error) == "RATE_LIMITED"
        assert len(mesh.engine.accounts) == 2


async def test_signin_without_redis_is_limited_and_no_oracle(tmp_path: Path) -> None:
    async with start_mesh(tmp_path, CFD_LIMIT_SIGNIN_PER_ADDRESS="4/600") as mesh:
        await mesh.stub.Signup(
            account_pb2.SignupRequest(email="owner@example.com", password=PASSWORD)
        )
        # Restart with sessions and limits in a Redis that is down (port 1 on loopback refuses).
        assert mesh.process is not None
        mesh.process.stop()
        mesh.env["CFD_REDIS_URL"] = "redis://127.0.0.1:1/0"
        await mesh.start()
        answers = []
        for password in ("not the password", PASSWORD, "another guess", PASSWORD, PASSWORD):
            request = account_pb2.SigninRequest(email="owner@example.com", password=password)
            error = await fails_with(mesh.stub.Signin(request))
            answers.append((error.code(), reason_of(error), error.details()))
        unavailable = (
            grpc.StatusCode.UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "the session store is unavailable; retry shortly",
        )
        assert answers[:4] == [unavailable] * 4
        assert answers[4][:2] == (grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED")

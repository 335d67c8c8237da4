"""The maker's account: signed in, signed up the first time, renewed, and a clear error when the
email belongs to someone else."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from cfd.v1 import account_pb2, account_pb2_grpc
from maker.account import Login, MakerError
from mesh.config import Settings
from mesh.errors import ApiError
from mesh.server import Service, serve
from support import free_port


class FakeAccounts(account_pb2_grpc.AccountServiceServicer):
    """Users in a dict; tokens are numbered; counts what the maker asked for."""

    def __init__(self) -> None:
        self.passwords: dict[str, str] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.calls: list[str] = []
        self._numbers = itertools.count(1)

    def _session(self, email: str) -> dict[str, Any]:
        n = next(self._numbers)
        self.refresh_tokens[f"r{n}"] = email
        user = account_pb2.User(id=f"user-{email}", email=email)
        return {"user": user, "access_token": f"a{n}", "refresh_token": f"r{n}", "expires_in": 100}

    async def Signin(
        self, request: account_pb2.SigninRequest, context: Any
    ) -> account_pb2.SigninResponse:
        self.calls.append("Signin")
        if self.passwords.get(request.email) != request.password:
            raise ApiError("INVALID_CREDENTIALS", "wrong email or password")
        return account_pb2.SigninResponse(**self._session(request.email))

    async def Signup(
        self, request: account_pb2.SignupRequest, context: Any
    ) -> account_pb2.SignupResponse:
        self.calls.append("Signup")
        if request.email in self.passwords:
            raise ApiError("EMAIL_TAKEN", "this email is already registered", [("email", "taken")])
        self.passwords[request.email] = request.password
        return account_pb2.SignupResponse(**self._session(request.email))

    async def RefreshToken(
        self, request: account_pb2.RefreshTokenRequest, context: Any
    ) -> account_pb2.RefreshTokenResponse:
        self.calls.append("RefreshToken")
        email = self.refresh_tokens.pop(request.refresh_token, None)
        if email is None:
            raise ApiError("TOKEN_INVALID", "refresh token not recognized")
        return account_pb2.RefreshTokenResponse(**self._session(email))


@pytest.fixture
async def accounts(tmp_path: Path) -> AsyncIterator[tuple[FakeAccounts, str]]:
    fake = FakeAccounts()  # type: ignore[abstract]
    port = free_port()
    settings = Settings.from_env(
        {"CFD_DATA_DIR": str(tmp_path), "CFD_INTERNAL_TOKEN": "internal-token-0123456789"}
    )
    stop = asyncio.Event()
    service = Service(
        account_pb2_grpc.add_AccountServiceServicer_to_server, fake, "cfd.v1.AccountService"
    )
    task = asyncio.create_task(
        serve("fake-accounts", port, [service], settings=settings, verifier=None, stop=stop)
    )
    address = f"127.0.0.1:{port}"
    async with grpc.aio.insecure_channel(address) as channel:
        await asyncio.wait_for(channel.channel_ready(), 10)
    try:
        yield fake, address
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_first_start_signs_up_and_a_restart_signs_in(
    accounts: tuple[FakeAccounts, str],
) -> None:
    fake, address = accounts
    async with grpc.aio.insecure_channel(address) as channel:
        stub = account_pb2_grpc.AccountServiceStub(channel)
        first = Login("maker@example.com", "a long secret")
        await first.ensure(stub)
        again = Login("maker@example.com", "a long secret")
        await again.ensure(stub)

    assert fake.calls == ["Signin", "Signup", "Signin"]
    assert first.user_id == again.user_id == "user-maker@example.com"
    assert again.metadata() == (("authorization", "Bearer a2"),)


async def test_the_token_is_renewed_before_it_expires_and_after_a_refusal(
    accounts: tuple[FakeAccounts, str],
) -> None:
    fake, address = accounts
    fake.passwords["maker@example.com"] = "a long secret"
    clock = Clock()
    async with grpc.aio.insecure_channel(address) as channel:
        stub = account_pb2_grpc.AccountServiceStub(channel)
        login = Login("maker@example.com", "a long secret", clock=clock)
        await login.ensure(stub)
        clock.now = 59.0
        await login.ensure(stub)
        clock.now = 61.0
        await login.ensure(stub)
        renewed = login.metadata()
        fake.refresh_tokens.clear()
        clock.now = 200.0
        await login.ensure(stub)
        login.forget()
        await login.ensure(stub)

    assert renewed == (("authorization", "Bearer a2"),)
    assert fake.calls == ["Signin", "RefreshToken", "RefreshToken", "Signin", "Signin"]


async def test_an_email_taken_with_another_password_stops_the_maker(
    accounts: tuple[FakeAccounts, str],
) -> None:
    fake, address = accounts
    fake.passwords["maker@example.com"] = "someone else's"
    async with grpc.aio.insecure_channel(address) as channel:
        with pytest.raises(MakerError, match="another password"):
            await Login("maker@example.com", "a long secret").ensure(
                account_pb2_grpc.AccountServiceStub(channel)
            )

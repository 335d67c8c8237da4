"""The maker's own account: signed in (or up, the first time) through AccountService.

The maker is an ordinary user. It signs in with its credentials; when no such user exists it
signs up, which opens its trading account. Its access token is renewed with the refresh token
before it expires, and by signing in again when the refresh token is no longer good.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import grpc

from cfd.v1 import account_pb2, account_pb2_grpc
from mesh.errors import reason_of

# Renew the access token once this share of its lifetime has passed.
RENEW_AT = 0.6


class MakerError(RuntimeError):
    """The maker cannot work with its settings (for example: a wrong password)."""


class _Signed(Protocol):
    """What Signin, Signup and RefreshToken answer alike."""

    @property
    def user(self) -> account_pb2.User: ...
    @property
    def access_token(self) -> str: ...
    @property
    def refresh_token(self) -> str: ...
    @property
    def expires_in(self) -> int: ...


class Login:
    """The maker's session with the accounts service."""

    def __init__(
        self,
        email: str,
        password: str,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._email = email
        self._password = password
        self._timeout_s = timeout_s
        self._clock = clock
        self.user_id = ""
        self._access = ""
        self._refresh = ""
        self._renew_at = 0.0

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Return the call metadata that authenticates the maker."""
        return (("authorization", f"Bearer {self._access}"),)

    def forget(self) -> None:
        """Drop the access token (it was refused), so the next `ensure` signs in again."""
        self._access = ""

    async def ensure(self, stub: account_pb2_grpc.AccountServiceAsyncStub) -> None:
        """Sign in if not signed in, or renew the token if it is due."""
        if not self._access:
            await self._sign_in(stub)
        elif self._clock() >= self._renew_at:
            try:
                reply = await stub.RefreshToken(
                    account_pb2.RefreshTokenRequest(refresh_token=self._refresh),
                    timeout=self._timeout_s,
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAUTHENTICATED:
                    raise
                await self._sign_in(stub)
            else:
                self._take(reply)

    async def _sign_in(self, stub: account_pb2_grpc.AccountServiceAsyncStub) -> None:
        try:
            reply: _Signed = await stub.Signin(
                account_pb2.SigninRequest(email=self._email, password=self._password),
                timeout=self._timeout_s,
            )
        except grpc.aio.AioRpcError as exc:
            if reason_of(exc) != "INVALID_CREDENTIALS":
                raise
            reply = await self._sign_up(stub)
        self._take(reply)

    async def _sign_up(self, stub: account_pb2_grpc.AccountServiceAsyncStub) -> _Signed:
        try:
            return await stub.Signup(
                account_pb2.SignupRequest(email=self._email, password=self._password),
                timeout=self._timeout_s,
            )
        except grpc.aio.AioRpcError as exc:
            reason = reason_of(exc)
            if reason == "EMAIL_TAKEN":
                raise MakerError(
                    f"{self._email} is registered with another password than CFD_MAKER_PASSWORD"
                ) from None
            if reason == "VALIDATION_FAILED":
                raise MakerError(f"the maker cannot sign up: {exc.details()}") from None
            raise

    def _take(self, reply: _Signed) -> None:
        self.user_id = reply.user.id
        self._access = reply.access_token
        self._refresh = reply.refresh_token
        self._renew_at = self._clock() + reply.expires_in * RENEW_AT

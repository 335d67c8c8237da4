"""Open each user's trading account in the engine, at least once, whatever fails.

Signup writes the user and an outbox row (``account_provisioning``) in one transaction,
then asks the engine to create the account and deletes the row once the engine confirms.
``EngineAdminService.CreateAccount`` is idempotent, so any step may be repeated: if the
process dies or the engine is down in between, the row stays and the account is created
on the user's next sign-in (or signup retry) or by the background sweep, whichever comes
first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final, Protocol

import grpc

from account_svc.users import PendingAccount, UserStore
from cfd.v1 import common_pb2, engine_admin_pb2, engine_admin_pb2_grpc
from mesh.errors import ApiError

_log = logging.getLogger(__name__)

INTERNAL_TOKEN_METADATA: Final = "x-cfd-internal-token"
_MAX_BACKOFF_S: Final = 300.0


class EngineUnavailableError(Exception):
    """The engine did not confirm the account (unreachable, timed out or refused)."""


class EngineAccounts(Protocol):
    """The part of the engine's admin API the accounts service uses."""

    async def create_account(
        self,
        user_id: str,
        initial_balance: str,
        margin_mode: str,
        position_mode: str,
        shard: int = 0,
    ) -> None:
        """Open the account (idempotent) on CFD engine shard `shard` in `margin_mode` and
        `position_mode` (a cfd.v1.MarginMode and a cfd.v1.PositionMode name, "" for the
        engine's defaults); raise ``EngineUnavailableError`` on failure."""
        ...


class GrpcEngineAccounts:
    """``EngineAccounts`` over ``cfd.v1.EngineAdminService`` with the internal token.

    `channels` holds one channel per CFD engine shard, shard 0 first. Shard 0 also runs the
    spot exchange, so a user of another shard gets an account there too, without money: it
    holds their spot wallet.
    """

    def __init__(
        self,
        channels: Sequence[grpc.aio.Channel],
        internal_token: str,
        *,
        timeout_s: float = 5.0,
    ):
        self._stubs = [engine_admin_pb2_grpc.EngineAdminServiceStub(c) for c in channels]
        self._metadata = ((INTERNAL_TOKEN_METADATA, internal_token),)
        self._timeout_s = timeout_s

    async def create_account(
        self,
        user_id: str,
        initial_balance: str,
        margin_mode: str,
        position_mode: str,
        shard: int = 0,
    ) -> None:
        """Open the account (idempotent); raise ``EngineUnavailableError`` on failure."""
        if not 0 <= shard < len(self._stubs):
            raise EngineUnavailableError(f"shard {shard} is not one of the engine shards")
        if shard != 0:
            await self._create(0, user_id, "0", margin_mode, position_mode)
        await self._create(shard, user_id, initial_balance, margin_mode, position_mode)

    async def _create(
        self, shard: int, user_id: str, initial_balance: str, margin_mode: str, position_mode: str
    ) -> None:
        request = engine_admin_pb2.CreateAccountRequest(
            user_id=user_id,
            initial_balance=initial_balance,
            margin_mode=(
                common_pb2.MarginMode.Value(margin_mode)
                if margin_mode
                else common_pb2.MARGIN_MODE_UNSPECIFIED
            ),
            position_mode=(
                common_pb2.PositionMode.Value(position_mode)
                if position_mode
                else common_pb2.POSITION_MODE_UNSPECIFIED
            ),
        )
        try:
            await self._stubs[shard].CreateAccount(
                request, metadata=self._metadata, timeout=self._timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            raise EngineUnavailableError(
                f"CreateAccount on shard {shard} failed: {exc.code().name}"
            ) from None


def backoff_s(attempts: int) -> float:
    """Return the delay before retry number ``attempts + 1``: 1 s doubling, capped at 5 min."""
    return min(_MAX_BACKOFF_S, 2.0 ** min(attempts, 16))


class Provisioner:
    """Drive the signup outbox: confirm trading accounts with the engine."""

    def __init__(self, users: UserStore, engine: EngineAccounts) -> None:
        self._users = users
        self._engine = engine

    async def ensure(self, user_id: str) -> None:
        """Make sure the user's trading account exists; UNAVAILABLE if it cannot be confirmed."""
        pending = await self._users.pending_account(user_id)
        if pending is not None and not await self._attempt(pending):
            raise ApiError(
                "SERVICE_UNAVAILABLE",
                "the trading engine is unavailable; the account will be opened, retry shortly",
            )

    async def run_due(self, limit: int = 100) -> int:
        """Attempt every due outbox entry once; return how many were confirmed."""
        confirmed = 0
        for pending in await self._users.due_accounts(limit):
            if await self._attempt(pending):
                confirmed += 1
        return confirmed

    async def _attempt(self, pending: PendingAccount) -> bool:
        try:
            await self._engine.create_account(
                pending.user_id,
                pending.initial_balance,
                pending.margin_mode,
                pending.position_mode,
                pending.shard,
            )
        except EngineUnavailableError as exc:
            delay = backoff_s(pending.attempts)
            _log.warning(
                "trading account not confirmed; retrying in %.0f s: %s",
                delay,
                exc,
                extra={"fields": {"user_id": pending.user_id}},
            )
            await self._users.postpone_account(pending.user_id, str(exc), delay)
            return False
        await self._users.complete_account(pending.user_id)
        _log.info("trading account confirmed", extra={"fields": {"user_id": pending.user_id}})
        return True

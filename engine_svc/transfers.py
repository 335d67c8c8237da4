"""Cross-shard transfers: the driver that credits the other shard and settles.

A transfer between a CFD balance on shard k and the spot wallet on shard 0 is debited on one
shard by a journaled `SendTransfer`, which holds it in flight in the core. The driver of the
debiting engine calls the peer shard's `EngineAdminService.ReceiveTransfer` (idempotent by
transfer id) with retry and backoff until it answers, then submits `SettleTransfer`. It
drives every transfer in flight after recovery and each new one, and runs only in the leading
engine (its loop starts with the sequencer, after a standby took the lead), so a crash of
either side leaves a transfer that is finished exactly once when both are back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Final

import grpc

from cfd.v1 import engine_admin_pb2, engine_admin_pb2_grpc, exchange_pb2
from engine_svc.core import Command, Result, SettleTransfer, TransferView, format_money
from engine_svc.core.spot.enums import TransferDirection
from mesh.auth import INTERNAL_TOKEN_HEADER
from mesh.config import Settings
from mesh.errors import REASON_CODES, ApiError, reason_of

log = logging.getLogger("engine.transfers")

# The backoff between calls of a peer that does not answer: doubling from the first to the last.
FIRST_RETRY_S: Final = 0.05
LAST_RETRY_S: Final = 2.0
# How long one call of a peer may take.
CALL_TIMEOUT_S: Final = 5.0
# How long a caller waits for its transfer to settle before it is told UNAVAILABLE.
SETTLE_WAIT_S: Final = 10.0

WIRE_DIRECTIONS: Final = {
    TransferDirection.TO_SPOT: exchange_pb2.TRANSFER_DIRECTION_TO_SPOT,
    TransferDirection.TO_CFD: exchange_pb2.TRANSFER_DIRECTION_TO_CFD,
}


def transfer_id(account_id: str, client_order_id: str | None) -> str:
    """Return the id of a client's transfer: derived from its idempotency key, so that a
    retry names the same transfer on every shard; random without one."""
    if client_order_id is None:
        return "x-" + uuid.uuid4().hex
    digest = hashlib.sha256(f"{account_id}\n{client_order_id}".encode()).hexdigest()
    return "x-" + digest[:40]


def unavailable(what: str) -> ApiError:
    """Return the error of a transfer whose other side did not answer in time."""
    return ApiError(
        "SERVICE_UNAVAILABLE",
        f"{what}; a transfer already debited completes later, and a retry with the same "
        "clientOrderId answers its result",
    )


class PeerShards:
    """gRPC stubs of the other engine shards' admin services, one channel per shard."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._channels: dict[int, grpc.aio.Channel] = {}
        self.metadata = ((INTERNAL_TOKEN_HEADER, settings.internal_token),)

    def admin(self, shard: int) -> engine_admin_pb2_grpc.EngineAdminServiceAsyncStub:
        """Return the admin stub of shard `shard`."""
        channel = self._channels.get(shard)
        if channel is None:
            channel = grpc.aio.insecure_channel(self._settings.engine_addr_of(shard))
            self._channels[shard] = channel
        return engine_admin_pb2_grpc.EngineAdminServiceStub(channel)

    async def receive(
        self, view: TransferView, own: int
    ) -> engine_admin_pb2.ReceiveTransferResponse:
        """Credit `view` on its peer shard; raise `grpc.aio.AioRpcError` when it fails."""
        request = engine_admin_pb2.ReceiveTransferRequest(
            user_id=view.account_id,
            transfer_id=view.transfer_id,
            amount=format_money(view.amount),
            direction=WIRE_DIRECTIONS[view.direction],
            peer_shard=own,
        )
        reply: engine_admin_pb2.ReceiveTransferResponse = await self.admin(
            view.peer_shard
        ).ReceiveTransfer(request, metadata=self.metadata, timeout=CALL_TIMEOUT_S)
        return reply

    async def send(
        self, shard: int, request: engine_admin_pb2.SendTransferRequest
    ) -> engine_admin_pb2.SendTransferResponse:
        """Start a transfer on shard `shard`; raise `ApiError` with its reason when it fails."""
        try:
            reply: engine_admin_pb2.SendTransferResponse = await self.admin(shard).SendTransfer(
                request, metadata=self.metadata, timeout=SETTLE_WAIT_S + CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            reason = reason_of(exc)
            if reason is None or reason not in REASON_CODES or reason == "SERVICE_UNAVAILABLE":
                raise unavailable(f"shard {shard} cannot be reached or did not answer") from None
            raise ApiError(reason, exc.details() or reason) from None
        return reply

    async def close(self) -> None:
        """Close every channel."""
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()


class TransferDriver:
    """Credit every transfer this shard has in flight on its peer, then settle it.

    `in_flight` reads the core's transfers in flight (between batches), `submit` commits a
    command through the sequencer. `kick` after a new SendTransfer; `settled` waits for one.
    """

    def __init__(
        self,
        shard: int,
        peers: PeerShards,
        in_flight: Callable[[], list[TransferView]],
        submit: Callable[[Command], Awaitable[Result]],
    ) -> None:
        self._shard = shard
        self._peers = peers
        self._in_flight = in_flight
        self._submit = submit
        self._wake = asyncio.Event()
        self._driving: dict[str, asyncio.Task[None]] = {}
        self._waiters: dict[
            str, list[asyncio.Future[engine_admin_pb2.ReceiveTransferResponse]]
        ] = {}

    def kick(self) -> None:
        """Look for transfers to drive now."""
        self._wake.set()

    async def run(self) -> None:
        """Drive each transfer in flight until the engine stops."""
        try:
            while True:
                for view in self._in_flight():
                    if view.transfer_id not in self._driving:
                        self._driving[view.transfer_id] = asyncio.create_task(
                            self._drive(view), name=f"transfer {view.transfer_id}"
                        )
                await self._wake.wait()
                self._wake.clear()
        finally:
            for task in self._driving.values():
                task.cancel()
            for task in list(self._driving.values()):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self._peers.close()

    async def _drive(self, view: TransferView) -> None:
        delay = FIRST_RETRY_S
        try:
            # A refusal (an account the peer does not have yet) is retried like an outage:
            # the debit is journaled, so only the credit can finish the transfer.
            while True:
                try:
                    reply = await self._peers.receive(view, self._shard)
                    break
                except grpc.aio.AioRpcError as exc:
                    log.warning(
                        "transfer %s: shard %d did not credit it (%s: %s); retrying in %.2fs",
                        view.transfer_id,
                        view.peer_shard,
                        exc.code().name,
                        reason_of(exc) or exc.details(),
                        delay,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, LAST_RETRY_S)
            try:
                result = await self._submit(SettleTransfer(0, 0, view.transfer_id))
            except ApiError as exc:
                # Stopping: the transfer stays in flight and is driven again after the restart.
                log.info("transfer %s is left to settle after a restart: %s", view.transfer_id, exc)
                return
            if not result.ok:
                log.error("transfer %s could not be settled: %s", view.transfer_id, result.message)
                return
            for waiter in self._waiters.pop(view.transfer_id, []):
                if not waiter.done():
                    waiter.set_result(reply)
        finally:
            self._driving.pop(view.transfer_id, None)

    async def send_on(
        self, shard: int, request: engine_admin_pb2.SendTransferRequest
    ) -> engine_admin_pb2.SendTransferResponse:
        """Start a transfer whose debit side is shard `shard` (`PeerShards.send`)."""
        return await self._peers.send(shard, request)

    async def settled(
        self, view: TransferView, wait_s: float = SETTLE_WAIT_S
    ) -> engine_admin_pb2.ReceiveTransferResponse:
        """Return the peer's answer once `view` is settled; raise `ApiError` UNAVAILABLE when
        that takes longer than `wait_s` (the driver still finishes it later).

        A transfer settled before asks its peer once more (a repeat credits nothing) for
        the balances after it.
        """
        if any(pending.transfer_id == view.transfer_id for pending in self._in_flight()):
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(view.transfer_id, []).append(waiter)
            self.kick()
            try:
                return await asyncio.wait_for(asyncio.shield(waiter), wait_s)
            except TimeoutError:
                waiters = self._waiters.get(view.transfer_id, [])
                if waiter in waiters:
                    waiters.remove(waiter)
                raise unavailable(
                    f"shard {view.peer_shard} has not confirmed the transfer yet"
                ) from None
        try:
            return await self._peers.receive(view, self._shard)
        except grpc.aio.AioRpcError:
            raise unavailable(f"shard {view.peer_shard} cannot be reached") from None

"""Connections to the gRPC services and generic calls built from the descriptors."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
from google.protobuf import message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from edge.descriptors import Rpc
from mesh.auth import shard_claim
from mesh.config import Settings

CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    # Notice a dead connection of a long stream without waiting for TCP.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    # Reconnect quickly once a restarted service is back.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]

Metadata = tuple[tuple[str, str], ...]
# The service each CFD engine shard serves for its own accounts; shard 0 serves everything else
# of the engine (the spot exchange, public prices).
SHARDED_SERVICE = "cfd.v1.TradingService"


def service_addresses(settings: Settings) -> dict[str, str]:
    """Return the address of each public service from the settings."""
    return {
        "cfd.v1.AccountService": settings.account_addr,
        "cfd.v1.TradingService": settings.engine_addr,
        "cfd.v1.MarketDataService": settings.market_addr,
        # The engine serves the spot exchange beside the CFD trading.
        "cfd.v1.ExchangeService": settings.engine_addr,
    }


def shard_addresses(settings: Settings) -> tuple[str, ...]:
    """Return the address of every CFD engine shard, shard 0 first."""
    return tuple(settings.engine_addr_of(shard) for shard in range(settings.engine_shards))


def shard_of(metadata: Metadata) -> int:
    """Return the shard named by the bearer token among `metadata` (0 without one).

    The claim is read without checking the signature: it only picks the shard to ask, and
    that shard verifies the token and refuses one naming another shard.
    """
    for name, value in metadata:
        if name == "authorization":
            scheme, _, token = value.partition(" ")
            return shard_claim(token.strip()) if scheme.lower() == "bearer" else 0
    return 0


class Upstreams:
    """One channel per service address, shared by every request of the process.

    With several CFD engine shards (`shards`, shard 0 first), a user's trading calls go to
    the shard named by their token's claim (`shard` arguments below).
    """

    def __init__(self, addresses: Mapping[str, str], shards: Sequence[str] = ()) -> None:
        self._addresses = dict(addresses)
        self._shards = tuple(shards)
        self._channels: dict[str, grpc.aio.Channel] = {}

    @property
    def sharded(self) -> bool:
        """Return whether trading calls are spread over several engine shards."""
        return len(self._shards) > 1

    def shard_for(self, metadata: Metadata) -> int:
        """Return the engine shard of the caller whose `metadata` this is (0 unsharded)."""
        return shard_of(metadata) if self.sharded else 0

    def address(self, service: str, shard: int = 0) -> str:
        """Return the address serving `service` (for a user of `shard`); raise KeyError for an
        unknown service."""
        if shard and service == SHARDED_SERVICE and shard < len(self._shards):
            return self._shards[shard]
        return self._addresses[service]

    def channel(self, service: str, shard: int = 0) -> grpc.aio.Channel:
        """Return the channel to the server of `service`, opening it on first use."""
        address = self.address(service, shard)
        channel = self._channels.get(address)
        if channel is None:
            channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
            self._channels[address] = channel
        return channel

    def unary(self, rpc: Rpc, shard: int = 0) -> grpc.aio.UnaryUnaryMultiCallable[Any, Any]:
        """Return a callable for a unary RPC, serialising with the descriptor's classes."""
        return self.channel(rpc.service, shard).unary_unary(
            rpc.path,
            request_serializer=_serialize,
            response_deserializer=rpc.output_class.FromString,
        )

    def stream(self, rpc: Rpc, shard: int = 0) -> grpc.aio.UnaryStreamMultiCallable[Any, Any]:
        """Return a callable for a server-streaming RPC."""
        return self.stream_method(rpc.service, rpc.name, rpc.output_class, shard)

    def stream_method(
        self,
        service: str,
        method: str,
        output_class: type[message.Message],
        shard: int = 0,
    ) -> grpc.aio.UnaryStreamMultiCallable[Any, Any]:
        """Return a callable for a server-streaming method named by service and method."""
        return self.channel(service, shard).unary_stream(
            f"/{service}/{method}",
            request_serializer=_serialize,
            response_deserializer=output_class.FromString,
        )

    async def health(self, timeout_s: float) -> dict[str, str]:
        """Return the health status name of every service (and of each further engine shard,
        as `<service>@shard<n>`), checked concurrently."""
        checks = [(s, 0, s) for s in sorted(self._addresses) if not s.endswith("AdminService")]
        if self.sharded and SHARDED_SERVICE in self._addresses:
            checks += [
                (SHARDED_SERVICE, shard, f"{SHARDED_SERVICE}@shard{shard}")
                for shard in range(1, len(self._shards))
            ]
        results = await asyncio.gather(*(self._check(s, n, timeout_s) for s, n, _ in checks))
        return {name: result for (_, _, name), result in zip(checks, results, strict=True)}

    async def _check(self, service: str, shard: int, timeout_s: float) -> str:
        stub = health_pb2_grpc.HealthStub(self.channel(service, shard))
        try:
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            return "UNREACHABLE" if exc.code() != grpc.StatusCode.NOT_FOUND else "UNKNOWN_SERVICE"
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    async def close(self) -> None:
        """Close every channel."""
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()


def _serialize(msg: message.Message) -> bytes:
    return msg.SerializeToString()

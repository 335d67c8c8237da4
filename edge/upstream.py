"""Connections to the gRPC services and generic calls built from the descriptors."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf import message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from edge.descriptors import Rpc
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


def service_addresses(settings: Settings) -> dict[str, str]:
    """Return the address of each public service from the settings."""
    return {
        "cfd.v1.AccountService": settings.account_addr,
        "cfd.v1.TradingService": settings.engine_addr,
        "cfd.v1.MarketDataService": settings.market_addr,
        # The engine serves the spot exchange beside the CFD trading.
        "cfd.v1.ExchangeService": settings.engine_addr,
    }


class Upstreams:
    """One channel per service address, shared by every request of the process."""

    def __init__(self, addresses: Mapping[str, str]) -> None:
        self._addresses = dict(addresses)
        self._channels: dict[str, grpc.aio.Channel] = {}

    def address(self, service: str) -> str:
        """Return the address serving `service`; raise KeyError for an unknown one."""
        return self._addresses[service]

    def channel(self, service: str) -> grpc.aio.Channel:
        """Return the channel to the server of `service`, opening it on first use."""
        address = self._addresses[service]
        channel = self._channels.get(address)
        if channel is None:
            channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
            self._channels[address] = channel
        return channel

    def unary(self, rpc: Rpc) -> grpc.aio.UnaryUnaryMultiCallable[Any, Any]:
        """Return a callable for a unary RPC, serialising with the descriptor's classes."""
        return self.channel(rpc.service).unary_unary(
            rpc.path,
            request_serializer=_serialize,
            response_deserializer=rpc.output_class.FromString,
        )

    def stream(self, rpc: Rpc) -> grpc.aio.UnaryStreamMultiCallable[Any, Any]:
        """Return a callable for a server-streaming RPC."""
        return self.stream_method(rpc.service, rpc.name, rpc.output_class)

    def stream_method(
        self, service: str, method: str, output_class: type[message.Message]
    ) -> grpc.aio.UnaryStreamMultiCallable[Any, Any]:
        """Return a callable for a server-streaming method named by service and method."""
        return self.channel(service).unary_stream(
            f"/{service}/{method}",
            request_serializer=_serialize,
            response_deserializer=output_class.FromString,
        )

    async def health(self, timeout_s: float) -> dict[str, str]:
        """Return the health status name of every service, checked concurrently."""
        services = sorted(s for s in self._addresses if not s.endswith("AdminService"))
        results = await asyncio.gather(*(self._check(s, timeout_s) for s in services))
        return dict(zip(services, results, strict=True))

    async def _check(self, service: str, timeout_s: float) -> str:
        stub = health_pb2_grpc.HealthStub(self.channel(service))
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

"""gRPC-Web framing (`application/grpc-web+proto` and its base64 text variant) for tests.

A gRPC-Web body is a sequence of frames: one flag byte (0x00 data, 0x80 trailers), a 4-byte
big-endian length, then the payload. Trailers are `name: value` lines separated by CRLF.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass, field

CONTENT_TYPE = "application/grpc-web+proto"
# The base64 variant, which browser clients use for server streams.
TEXT_CONTENT_TYPE = "application/grpc-web-text+proto"
DATA_FLAG = 0x00
TRAILER_FLAG = 0x80
_HEADER = struct.Struct(">BI")


class FramingError(ValueError):
    """A gRPC-Web body is truncated or carries an unknown frame."""


@dataclass
class GrpcWebResponse:
    """The data frames and the status of one gRPC-Web response."""

    messages: list[bytes] = field(default_factory=list)
    trailers: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> int | None:
        """Return the grpc-status from the trailers, or None when there is none."""
        raw = self.trailers.get("grpc-status")
        return None if raw is None else int(raw)


def encode_message(payload: bytes) -> bytes:
    """Return one uncompressed data frame carrying `payload`."""
    return _HEADER.pack(DATA_FLAG, len(payload)) + payload


def decode_body(body: bytes, headers: dict[str, str] | None = None) -> GrpcWebResponse:
    """Split a complete response body into messages and trailers.

    `headers` are the HTTP response headers: a trailers-only reply carries grpc-status there.
    """
    result = GrpcWebResponse()
    for name in ("grpc-status", "grpc-message"):
        if headers and name in headers:
            result.trailers[name] = headers[name]
    offset = 0
    while offset < len(body):
        if len(body) - offset < _HEADER.size:
            raise FramingError(f"truncated frame header at byte {offset}")
        flag, length = _HEADER.unpack_from(body, offset)
        offset += _HEADER.size
        if len(body) - offset < length:
            raise FramingError(f"frame at byte {offset} needs {length} bytes")
        payload = body[offset : offset + length]
        offset += length
        if flag == DATA_FLAG:
            result.messages.append(payload)
        elif flag == TRAILER_FLAG:
            result.trailers.update(_parse_trailers(payload))
        else:
            raise FramingError(f"unknown frame flag {flag:#x}")
    return result


class FrameReader:
    """Decode frames incrementally from a body that arrives in chunks (a server stream)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.trailers: dict[str, str] = {}

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add a chunk and return the data frames it completed."""
        self._buffer += chunk
        messages: list[bytes] = []
        while len(self._buffer) >= _HEADER.size:
            flag, length = _HEADER.unpack_from(self._buffer, 0)
            if len(self._buffer) < _HEADER.size + length:
                break
            payload = bytes(self._buffer[_HEADER.size : _HEADER.size + length])
            del self._buffer[: _HEADER.size + length]
            if flag == DATA_FLAG:
                messages.append(payload)
            elif flag == TRAILER_FLAG:
                self.trailers.update(_parse_trailers(payload))
            else:
                raise FramingError(f"unknown frame flag {flag:#x}")
        return messages


def encode_text_message(payload: bytes) -> bytes:
    """Return one data frame in the base64 text encoding."""
    return base64.b64encode(encode_message(payload))


def decode_text(body: bytes) -> bytes:
    """Return the binary frames of a text-encoded body.

    A server may send each chunk as its own padded base64 run, so the body is decoded four
    characters at a time rather than as one base64 string.
    """
    text = b"".join(body.split())
    if len(text) % 4:
        raise FramingError(f"a base64 body of {len(text)} characters is truncated")
    try:
        return b"".join(
            base64.b64decode(text[i : i + 4], validate=True) for i in range(0, len(text), 4)
        )
    except binascii.Error as exc:
        raise FramingError(f"not base64: {exc}") from None


def _parse_trailers(payload: bytes) -> dict[str, str]:
    trailers: dict[str, str] = {}
    for line in payload.decode("ascii").split("\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise FramingError(f"malformed trailer line {line!r}")
        trailers[name.strip().lower()] = value.strip()
    return trailers

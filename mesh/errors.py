"""API errors: the one table mapping API.md reasons to gRPC codes, and rich status details."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NoReturn

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "cfd.v1"

REASON_CODES: dict[str, grpc.StatusCode] = {
    "VALIDATION_FAILED": grpc.StatusCode.INVALID_ARGUMENT,
    "UNKNOWN_SYMBOL": grpc.StatusCode.INVALID_ARGUMENT,
    "INVALID_LEVERAGE": grpc.StatusCode.INVALID_ARGUMENT,
    "QUANTITY_TOO_SMALL": grpc.StatusCode.INVALID_ARGUMENT,
    "INVALID_STOPS": grpc.StatusCode.INVALID_ARGUMENT,
    "UNKNOWN_MARKET": grpc.StatusCode.INVALID_ARGUMENT,
    "INVALID_PRICE": grpc.StatusCode.INVALID_ARGUMENT,
    "INSUFFICIENT_BALANCE": grpc.StatusCode.FAILED_PRECONDITION,
    "SLIPPAGE_EXCEEDED": grpc.StatusCode.FAILED_PRECONDITION,
    "PRICE_UNAVAILABLE": grpc.StatusCode.FAILED_PRECONDITION,
    "NO_LIQUIDITY": grpc.StatusCode.FAILED_PRECONDITION,
    "POST_ONLY_WOULD_TAKE": grpc.StatusCode.FAILED_PRECONDITION,
    "WRONG_SHARD": grpc.StatusCode.FAILED_PRECONDITION,
    "FEED_NOT_MANUAL": grpc.StatusCode.FAILED_PRECONDITION,
    "TOTP_NOT_ENROLLED": grpc.StatusCode.FAILED_PRECONDITION,
    "TOTP_NOT_ENABLED": grpc.StatusCode.FAILED_PRECONDITION,
    "TOTP_ALREADY_ENABLED": grpc.StatusCode.FAILED_PRECONDITION,
    "EMAIL_TOKEN_INVALID": grpc.StatusCode.INVALID_ARGUMENT,
    "EMAIL_TOKEN_EXPIRED": grpc.StatusCode.FAILED_PRECONDITION,
    "EMAIL_TOKEN_USED": grpc.StatusCode.FAILED_PRECONDITION,
    "EMAIL_ALREADY_VERIFIED": grpc.StatusCode.FAILED_PRECONDITION,
    "EMAIL_NOT_VERIFIED": grpc.StatusCode.PERMISSION_DENIED,
    "PROVIDER_EMAIL_NOT_VERIFIED": grpc.StatusCode.FAILED_PRECONDITION,
    "IDENTITY_LINK_REQUIRED": grpc.StatusCode.FAILED_PRECONDITION,
    "PROVIDER_EMAIL_MISSING": grpc.StatusCode.FAILED_PRECONDITION,
    "LAST_SIGNIN_METHOD": grpc.StatusCode.FAILED_PRECONDITION,
    "OIDC_STATE_INVALID": grpc.StatusCode.INVALID_ARGUMENT,
    "SIGNIN_TICKET_INVALID": grpc.StatusCode.INVALID_ARGUMENT,
    "POSITION_NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "ORDER_NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "ACCOUNT_NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "USER_NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "SESSION_NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "PROVIDER_NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "IDENTITY_NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "IDENTITY_TAKEN": grpc.StatusCode.ALREADY_EXISTS,
    "EMAIL_TAKEN": grpc.StatusCode.ALREADY_EXISTS,
    "IDEMPOTENCY_KEY_REUSED": grpc.StatusCode.ALREADY_EXISTS,
    "INVALID_CREDENTIALS": grpc.StatusCode.UNAUTHENTICATED,
    "TOKEN_INVALID": grpc.StatusCode.UNAUTHENTICATED,
    "TOKEN_EXPIRED": grpc.StatusCode.UNAUTHENTICATED,
    "TOTP_REQUIRED": grpc.StatusCode.UNAUTHENTICATED,
    "OIDC_IDENTITY_INVALID": grpc.StatusCode.UNAUTHENTICATED,
    "RATE_LIMITED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "SERVICE_UNAVAILABLE": grpc.StatusCode.UNAVAILABLE,
    "INTERNAL": grpc.StatusCode.INTERNAL,
}


class ApiError(Exception):
    """An error to return to the caller with a reason from REASON_CODES."""

    def __init__(
        self,
        reason: str,
        message: str,
        violations: Sequence[tuple[str, str]] = (),
        retry_after_s: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        if reason not in REASON_CODES:
            raise ValueError(f"unknown error reason {reason!r}")
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.violations = tuple(violations)
        self.retry_after_s = retry_after_s
        # ErrorInfo.metadata: what a client needs to act on the error (never logged).
        self.metadata = dict(metadata or {})

    @property
    def code(self) -> grpc.StatusCode:
        """Return the gRPC status code of the reason."""
        return REASON_CODES[self.reason]

    def to_status(self) -> status_pb2.Status:
        """Return the google.rpc.Status with ErrorInfo, BadRequest and RetryInfo details."""
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        info = error_details_pb2.ErrorInfo(
            reason=self.reason, domain=DOMAIN, metadata=self.metadata
        )
        status.details.add().Pack(info)
        if self.violations:
            bad_request = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                    for f, d in self.violations
                ]
            )
            status.details.add().Pack(bad_request)
        if self.retry_after_s is not None:
            delay = duration_pb2.Duration(seconds=self.retry_after_s)
            status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        return status


def validation_error(field: str, description: str) -> ApiError:
    """Return a VALIDATION_FAILED error naming one field."""
    return ApiError("VALIDATION_FAILED", f"{field}: {description}", [(field, description)])


async def abort(context: grpc.aio.ServicerContext[object, object], error: ApiError) -> NoReturn:
    """Abort the call with the error's rich status."""
    status = rpc_status.to_status(error.to_status())
    await context.abort(status.code, status.details, status.trailing_metadata)
    raise AssertionError("context.abort returned")  # pragma: no cover


def status_of(exc: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    """Return the rich google.rpc.Status carried by a failed call, if any."""
    for key, value in exc.trailing_metadata() or ():
        if key == rpc_status.GRPC_DETAILS_METADATA_KEY and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None


def error_info_of(exc: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    """Return the ErrorInfo detail of a failed call, if any."""
    status = status_of(exc)
    if status is None:
        return None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    return None


def reason_of(exc: grpc.aio.AioRpcError) -> str | None:
    """Return the ErrorInfo reason of a failed call, if any."""
    info = error_info_of(exc)
    return None if info is None else str(info.reason)

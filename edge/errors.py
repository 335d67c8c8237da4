"""gRPC statuses as HTTP responses: grpc-gateway's status mapping and `google.rpc.Status` body."""

from __future__ import annotations

import json
from typing import Any

import grpc
from google.protobuf import duration_pb2, json_format
from google.rpc import error_details_pb2, status_pb2
from starlette.responses import Response

from mesh.errors import ApiError, status_of

JSON_TYPE = "application/json"

# grpc-gateway's runtime.HTTPStatusFromCode.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def http_status(code: int) -> int:
    """Return the HTTP status of a numeric gRPC code (500 for unknown codes)."""
    status_code = _BY_NUMBER.get(code)
    return 500 if status_code is None else HTTP_STATUS[status_code]


def status_from_rpc_error(exc: grpc.aio.AioRpcError, target: str) -> status_pb2.Status:
    """Return the rich status of a failed upstream call, synthesising one where it has none."""
    rich = status_of(exc)
    if rich is not None:
        return rich
    code = exc.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        return ApiError(
            "SERVICE_UNAVAILABLE", f"{target} is unavailable; try again shortly"
        ).to_status()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return status_pb2.Status(code=code.value[0], message=f"{target} did not answer in time")
    return status_pb2.Status(code=code.value[0], message=exc.details() or code.name)


def status_json(status: status_pb2.Status) -> dict[str, Any]:
    """Return grpc-gateway's JSON error body: code, message and details as Any with @type,
    each detail with its fields printed even at their default value, as REST responses are."""
    body: dict[str, Any] = {"code": status.code, "message": status.message}
    body["details"] = [
        json_format.MessageToDict(
            detail, always_print_fields_with_no_presence=True, preserving_proto_field_name=False
        )
        for detail in status.details
    ]
    return body


def retry_after(status: status_pb2.Status) -> int | None:
    """Return the whole seconds of a RetryInfo detail, rounded up, if the status has one."""
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            delay: duration_pb2.Duration = info.retry_delay
            return max(1, delay.seconds + (1 if delay.nanos > 0 else 0))
    return None


def reason(status: status_pb2.Status) -> str:
    """Return the ErrorInfo reason of a status, or ''."""
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


def error_response(status: status_pb2.Status, headers: dict[str, str] | None = None) -> Response:
    """Return the HTTP response of a failed call."""
    out = dict(headers or {})
    delay = retry_after(status)
    if delay is not None:
        out["retry-after"] = str(delay)
    return Response(
        dumps(status_json(status)),
        status_code=http_status(status.code),
        media_type=JSON_TYPE,
        headers=out,
    )


def api_error_response(error: ApiError, http: int | None = None) -> Response:
    """Return the HTTP response of an error the edge raises itself; `http` overrides the status."""
    response = error_response(error.to_status())
    if http is not None:
        response.status_code = http
    return response


def plain_error(code: grpc.StatusCode, message: str, http: int | None = None) -> Response:
    """Return an error without details (routing errors that have no API reason)."""
    body = status_json(status_pb2.Status(code=code.value[0], message=message))
    return Response(dumps(body), status_code=http or HTTP_STATUS[code], media_type=JSON_TYPE)


def dumps(value: object) -> bytes:
    """Serialize JSON compactly as UTF-8."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()

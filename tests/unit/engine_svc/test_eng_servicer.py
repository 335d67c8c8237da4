"""Core rejections become API errors with the field the core named, never a parsed message."""

from __future__ import annotations

import grpc

from engine_svc.core import Reason
from engine_svc.core.results import rejected
from engine_svc.servicer import rejection
from mesh.errors import REASON_CODES


def test_a_validation_failure_names_the_core_field_in_api_terms() -> None:
    # The message mentions other fields; only `field` decides.
    error = rejection(
        rejected(Reason.VALIDATION_FAILED, "quantity and balance words", "trigger_price")
    )
    assert (error.reason, error.code) == ("VALIDATION_FAILED", grpc.StatusCode.INVALID_ARGUMENT)
    assert error.violations == (("triggerPrice", "quantity and balance words"),)
    whole = rejection(rejected(Reason.VALIDATION_FAILED, "nothing to modify"))
    assert whole.violations == (("request", "nothing to modify"),)


def test_other_reasons_keep_their_status_without_violations() -> None:
    reused = rejection(
        rejected(Reason.IDEMPOTENCY_KEY_REUSED, "already used", "client_order_id")
    )
    assert (reused.code, reused.violations) == (grpc.StatusCode.ALREADY_EXISTS, ())
    missing = rejection(rejected(Reason.ACCOUNT_NOT_FOUND, "no account"), "POSITION_NOT_FOUND")
    assert (missing.reason, missing.code) == ("POSITION_NOT_FOUND", grpc.StatusCode.NOT_FOUND)


def test_every_core_reason_has_a_status() -> None:
    assert {reason.value for reason in Reason} <= set(REASON_CODES)

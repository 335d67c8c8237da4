"""Tests for email normalization and password rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from account_svc.validation import check_password, normalize_email, require_credentials
from mesh.errors import ApiError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  Alice.Smith@Example.COM \t", "alice.smith@example.com"),
        ("bob+trading@mail.example.co.uk", "bob+trading@mail.example.co.uk"),
        ("x_y-z@sub-domain.example.io", "x_y-z@sub-domain.example.io"),
        ("a@b.cd", "a@b.cd"),
    ],
)
def test_valid_emails_are_normalized(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "alice",
        "alice@",
        "@example.com",
        "alice@example",
        "alice@@example.com",
        "al ice@example.com",
        "alice@exa mple.com",
        ".alice@example.com",
        "alice.@example.com",
        "al..ice@example.com",
        "alice@-example.com",
        "alice@example-.com",
        "alice@example..com",
        "alice@example.c",
        "alice@example.123",
        "alice@example.com\x00",
        "ali\nce@example.com",
        "alicé@example.com",
        "a" * 65 + "@example.com",
        "a@" + "b" * 250 + ".com",
        "<alice@example.com>",
    ],
)
def test_invalid_emails_are_refused(raw: str) -> None:
    with pytest.raises(ApiError) as info:
        normalize_email(raw)
    assert info.value.reason == "VALIDATION_FAILED"
    assert [field for field, _ in info.value.violations] == ["email"]


@pytest.mark.parametrize("password", ["12345678", "x" * 128, "pässwörd", "        "])
def test_passwords_of_8_to_128_characters_are_accepted(password: str) -> None:
    check_password(password)


@pytest.mark.parametrize("password", ["", "1234567", "x" * 129, "x" * 10_000])
def test_passwords_outside_8_to_128_characters_are_refused(password: str) -> None:
    with pytest.raises(ApiError) as info:
        check_password(password)
    assert info.value.reason == "VALIDATION_FAILED"
    assert [field for field, _ in info.value.violations] == ["password"]


def test_require_credentials_reports_both_fields() -> None:
    with pytest.raises(ApiError) as info:
        require_credentials("nope", "short")
    assert [field for field, _ in info.value.violations] == ["email", "password"]


def test_require_credentials_returns_the_normalized_email() -> None:
    assert require_credentials(" Bob@Example.com", "secret-pw") == ("bob@example.com", "secret-pw")


@given(
    email=st.from_regex(
        r"\A[a-zA-Z0-9_+-]{1,12}(\.[a-zA-Z0-9]{1,6}){0,2}@[a-zA-Z0-9]{1,12}\.[a-zA-Z]{2,6}\Z"
    ),
    padding=st.sampled_from(["", " ", "\t", "  \n"]),
)
def test_normalization_is_case_and_space_insensitive_and_idempotent(
    email: str, padding: str
) -> None:
    normalized = normalize_email(padding + email.upper() + padding)
    assert normalized == email.lower()
    assert normalize_email(normalized) == normalized
